"""The detector service: frames from Kafka in, hits to Kafka "hits" and Milvus out.

It stands on the consumer-service skeleton (services/common/consumer_service.py: poll,
snapshot, flush, commit, rebalance, run), and its stages are processors of their own: admission
(services/detector/admission.py), the standing queries' vectors (query_vectors.py), shedding
(pipelines/shedding.py), scoring (pipelines/detector.py) and the hits' writer (hit_writer.py).
Over 400 lines because what is left is one thing: the turn that runs those stages over one
micro-batch, and the per-camera state they share (each camera's pipeline, the partition it
came from, its saved snapshot, the replay marks), which a restart or a rebalance must load,
save and drop together.

    run_detector(Path("detector.yaml"))     # `vigil detector`; until SIGINT / SIGTERM

One loop, one thread (onnxruntime uses the cores itself):

1. standing queries: "queries" is loaded whole at start and followed every `query_refresh_ms`;
   a query added, edited or deleted reaches every camera's pipeline within a second (its text
   is embedded once, with its prompt ensemble, and cached by text and language);
2. a micro-batch of frames from the "frames" consumer group: polled until `batch_max_frames`
   or `batch_max_wait_ms` after the first frame, then admitted (admission.py): bad frames
   dead-lettered, frames captured more than `max_lag_s` ago skipped (and counted), so a
   detector that fell behind jumps to each camera's newest frames, and frames the camera's
   state has already seen (a redelivery after a restart) skipped before decoding;
3. each camera's change detector plans its frames (what moved; a still frame costs no model:
   its camera's last embeddings stand); when the detector cannot keep up and the batch would
   come out later than `latency_budget_s` after capture, work is shed (older still frames,
   then whole-frame refreshes, then older frames; never a camera's newest, nor a frame a
   previous owner of its partition may have scored, which is replayed exactly:
   pipelines/shedding.py), counted;
   then one batched encoder pass over every camera's regions and due whole frames
   (services/common/framing.py), and each camera's `CameraPipeline` frame by frame (each
   query judged on its best region, against its competitors: pipelines/discrimination.py);
4. hits: peak-frame thumbnails (with the peak regions drawn) are written as frames become
   peaks, hits (with their region's box) are upserted into
   Milvus (keyed by their deterministic id) and sent to "hits", and both are durable before
   anything is committed; about one frame per camera per `index_interval_s` goes into the
   frame index for retrospective search (pipelines/frame_index_sampling.py);
5. every `commit_interval_s`: the state snapshots of the cameras that moved go to
   "detector-state", and once the broker has them the frame offsets are committed.

So a crash loses nothing (uncommitted frames are redelivered) and duplicates nothing in Milvus
(the restored state refuses frames it has seen; a frame it has not seen yields the same hit id
it would have yielded before the crash, and the frames published before a restart are all
scored, so an event open at the crash ends where its frames say). "hits" itself is
at-least-once: a hit sent between the last commit and a crash is sent again, with the same
hit_id, for consumers to de-duplicate.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Collection
from dataclasses import replace
from pathlib import Path

import numpy as np
from kafka import TopicPartition
from PIL import Image
from prometheus_client import CollectorRegistry

from vigil.models.encoder import Encoder
from vigil.models.registry import create_encoder, resolve_kind
from vigil.pipelines.admission import snapshot_time_problem
from vigil.pipelines.calibration import score_prior_for
from vigil.pipelines.detector import CameraPipeline, FrameEmbeddings, StandingQuery
from vigil.pipelines.discrimination import DiscriminationSettings
from vigil.pipelines.frame_gate import FrameGate, Skip
from vigil.pipelines.frame_index_sampling import FrameIndexSampler
from vigil.pipelines.regions import Box, RegionPlan
from vigil.pipelines.shedding import CostModel, LoadMeter, PlannedFrame, shed_to_budget
from vigil.pipelines.views import FULL_FRAME
from vigil.services.common.consumer_service import ConsumerService, run_service
from vigil.services.common.framing import FrameWork, embed_frames, plan_frames
from vigil.services.common.kafka import (
    KafkaRecord,
    QueryTableReader,
)
from vigil.services.common.memory import keep_large_blocks_out_of_the_heap
from vigil.services.common.state_log import GroupStateLog
from vigil.services.common.thumbnail_store import ThumbnailStore
from vigil.services.common.thumbnails import thumbnail_with_boxes
from vigil.services.detector.admission import AdmittedFrame, FrameAdmission
from vigil.services.detector.config import DetectorServiceSettings
from vigil.services.detector.hit_writer import HitWriter
from vigil.services.detector.metrics import DetectorMetrics
from vigil.services.detector.query_vectors import StandingQueryVectors
from vigil.services.detector.retention import Retention
from vigil.services.detector.store import FrameRecord, HitStore
from vigil.services.detector.temporal import load_temporal_stage

log = logging.getLogger(__name__)

# Frame-index thumbnails are for scrolling through search results: small is plenty.
INDEX_THUMBNAIL_WIDTH = 320
# The longest one idle poll blocks, so stop requests and query changes are seen promptly.
_IDLE_POLL_MS = 100


class DetectorService(ConsumerService):
    """Frames in, hits out, for the partitions of "frames" this member owns (see the module
    docstring); `run(stop)` until `stop` is set, then `close()`."""

    def __init__(
        self,
        settings: DetectorServiceSettings,
        *,
        encoder: Encoder | None = None,
        metrics_registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.config = config = settings.detector
        kafka_settings = settings.kafka
        self.metrics = DetectorMetrics(metrics_registry)
        super().__init__("detector", kafka_settings, self.metrics.registry, config.commit_interval_s)
        if encoder is None:
            kind, why = resolve_kind(config.encoder)
            log.info("encoder: %s", why)
            encoder = create_encoder(config.encoder.model_copy(update={"kind": kind}))
        self.encoder = encoder
        self.encoder_name = encoder.info.name
        self.prior = score_prior_for(encoder.info)
        self.discrimination = DiscriminationSettings.for_encoder(encoder.info, **config.discrimination)
        self.cost_model = CostModel()
        self.load = LoadMeter()
        self.gate = FrameGate(config.max_lag_s)
        self.index_sampler = FrameIndexSampler(config.index_interval_s)
        self.temporal = load_temporal_stage() if config.temporal == "gru" else None
        self.store = HitStore(settings.store.model_copy(update={"dim": encoder.info.dim}))
        self.thumbnails = ThumbnailStore(settings.store.thumbnails_dir)
        self.retention = Retention(config.retention, self.store, self.thumbnails)
        self.on_close(self.store.close)
        with self.opening():
            self.open_kafka()
            self.queries = QueryTableReader(kafka_settings, dead_letters=self.producer)
            self.on_close(self.queries.close)
            self.queries.load()
            self.state_log = GroupStateLog(
                kafka_settings,
                self.producer,
                kafka_settings.topics.detector_state,
                config.group_id,
                "detector state",
            )
            # With every partition assigned it resumes from the group's committed offsets, and
            # the snapshots load on the first poll (_states_stale), as after a group assignment.
            self.open_consumer(
                self.topics.frames,
                config.group_id,
                max_poll_records=config.batch_max_frames,
                all_partitions=config.assignment == "all",
            )
        self.pipelines: dict[str, CameraPipeline] = {}
        self._partition_of: dict[str, int] = {}
        self._saved_states: dict[str, dict] = {}
        self._states_stale = True
        self._replay_until: dict[TopicPartition, int] = {}
        # A few seconds at start: both languages' shared prompts (services/detector/query_vectors.py).
        self.query_vectors = StandingQueryVectors(
            encoder, self.discrimination, lambda camera_id: config.match_for(camera_id).for_threshold
        )
        self.admission = FrameAdmission(
            self.producer,
            self.topics,
            self.metrics,
            self.gate,
            config.max_clock_skew_s,
            lambda camera_id, partition: self._pipeline(camera_id, partition).last_ts_ms,
        )
        self.hit_writer = HitWriter(self.store, self.producer, self.topics, self.metrics, self.encoder_name)
        self._dirty: set[str] = set()
        self._last_refresh = 0.0
        with self.opening():
            self.serve_metrics(config.metrics_port)

    # --- the loop ------------------------------------------------------------------------

    def running_message(self) -> str:
        return (
            f"detector running: group {self.config.group_id}, {len(self.queries.table)} standing "
            f"queries, encoder {self.encoder_name}, temporal {self.config.temporal}"
        )

    def step(self) -> int:
        """One turn of the loop: queries, one micro-batch, expiry, checkpoint. Returns frames read."""
        started = time.monotonic()
        self._refresh_queries()
        records, waited_s = self._poll_batch()
        if self._states_stale:
            self._saved_states = self.state_log.load()
            self._replay_until = self._replay_marks()
            self._states_stale = False
        if records:
            self._process(records)
        self._expire_silent_cameras()
        self.checkpoint()
        self._forget_old()
        ended = time.monotonic()
        self.load.record(ended, busy_s=ended - started - waited_s, waited_s=waited_s)
        self.metrics.utilisation.set(self.load.utilisation())
        return len(records)

    def _replay_marks(self) -> dict[TopicPartition, int]:
        """For each assigned partition the group had committed on, its end offset now: every
        frame below it may have been scored by a previous owner (a detector that crashed after
        its last commit), so it is replayed exactly, never shed (pipelines/shedding.py). A
        partition the group never committed on has no history to repeat."""
        assigned = list(self.consumer.assignment())
        if not assigned:
            return {}
        ends = self.consumer.end_offsets(assigned)
        marks = {tp: ends[tp] for tp in assigned if self.consumer.committed(tp) is not None and tp in ends}
        if marks:
            log.info(
                "resuming: frames below offsets %s were published before this start and are scored "
                "in full, whatever the latency budget",
                {tp.partition: offset for tp, offset in sorted(marks.items())},
            )
        return marks

    def _frame_rows_per_s(self) -> float:
        """The frame index's write rate now (pipelines/frame_index_sampling.py)."""
        return self.index_sampler.rows_per_s(time.time() * 1000)

    def _is_replay(self, record: KafkaRecord) -> bool:
        until = self._replay_until.get(TopicPartition(record.topic, record.partition))
        return until is not None and record.offset < until

    def _forget_old(self) -> None:
        try:
            self.retention.maybe_apply(frame_rows_per_s=self._frame_rows_per_s)
        except Exception as error:  # a full store must not stop scoring: next pass, 10 min on
            log.warning("retention pass failed: %s", error)

    def _poll_batch(self) -> tuple[list[KafkaRecord], float]:
        """A micro-batch, and the seconds spent waiting for its first frame (the loop's idle
        time: `LoadMeter`)."""
        c = self.config
        batch: list[KafkaRecord] = []
        deadline: float | None = None
        started = time.monotonic()
        waited_s: float | None = None
        while len(batch) < c.batch_max_frames:
            if deadline is None:
                timeout_ms = _IDLE_POLL_MS
            else:
                timeout_ms = int((deadline - time.monotonic()) * 1000)
                if timeout_ms <= 0:
                    break
            got = self.poll(timeout_ms, max_records=c.batch_max_frames - len(batch))
            if not got:
                break
            if waited_s is None:
                waited_s = time.monotonic() - started
            batch.extend(got)
            if deadline is None:
                deadline = time.monotonic() + c.batch_max_wait_ms / 1000
        if batch:
            self.metrics.batch_frames.observe(len(batch))
        return batch, time.monotonic() - started if waited_s is None else waited_s

    # --- queries -------------------------------------------------------------------------

    def _refresh_queries(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_refresh < self.config.query_refresh_ms / 1000:
            return
        self._last_refresh = now
        self.queries.poll(timeout_ms=0)
        standing = self.query_vectors.refresh(self.queries.table)
        if standing is None:
            return
        self.metrics.standing_queries.set(len(standing))
        log.info("standing queries: %s", ", ".join(standing) or "none")
        for camera_id, pipeline in self.pipelines.items():
            self.hit_writer.write(
                camera_id, pipeline.set_queries(self._specs_for(camera_id)), confirmed_at=None
            )
            self._dirty.add(camera_id)

    def _specs_for(self, camera_id: str) -> list[StandingQuery]:
        return self.query_vectors.specs_for(self.queries.table, camera_id)

    # --- frames --------------------------------------------------------------------------

    def _new_pipeline(self, camera_id: str) -> CameraPipeline:
        return self.config.camera_pipeline(
            camera_id,
            self.encoder.info.dim,
            prior=self.prior,
            discrimination=self.discrimination,
            temporal=self.temporal,
        )

    def _pipeline(self, camera_id: str, partition: int) -> CameraPipeline:
        pipeline = self.pipelines.get(camera_id)
        if pipeline is None:
            pipeline = self._new_pipeline(camera_id)
            specs = self._specs_for(camera_id)
            saved = self._saved_states.get(camera_id)
            problem = None
            if saved is not None:
                try:
                    pipeline.restore(saved, specs)
                    problem = snapshot_time_problem(
                        pipeline.last_ts_ms, time.time() * 1000, self.config.max_clock_skew_s * 1000
                    )
                except (ValueError, KeyError, TypeError) as error:
                    problem = f"it is unusable: {error}"
                if problem is not None:
                    # Heal: the snapshot is dropped for this camera (its open events with it),
                    # rather than resumed into a state that would refuse or misjudge its frames.
                    log.warning(
                        "camera %s: starting afresh, its state snapshot is inconsistent: %s",
                        camera_id,
                        problem,
                    )
                    self.metrics.snapshots_discarded.inc()
                    pipeline = self._new_pipeline(camera_id)
            if saved is None or problem is not None:
                pipeline.set_queries(specs)
            self.pipelines[camera_id] = pipeline
        self._partition_of[camera_id] = partition
        return pipeline

    def on_revoked(self, revoked: Collection[TopicPartition]) -> None:
        """Forget the cameras of partitions another member now owns (checkpointed just before)."""
        partitions = {tp.partition for tp in revoked}
        for camera_id in [cam for cam, part in self._partition_of.items() if part in partitions]:
            self.pipelines.pop(camera_id, None)
            self._partition_of.pop(camera_id, None)
        self._replay_until = {
            tp: end for tp, end in self._replay_until.items() if tp.partition not in partitions
        }

    def on_assigned(self, assigned: Collection[TopicPartition]) -> None:
        self._states_stale = True  # the snapshots load again on the next poll

    def _process(self, records: list[KafkaRecord]) -> None:
        frames = self.admission.admit(records)
        if frames:
            work = []
            for frame in frames:
                pipeline = self.pipelines[frame.headers.camera_id]
                work.append(FrameWork(pipeline.changes, frame.headers.ts_ms, frame.pixels, pipeline.views))
            frames, work, plans = self._shed(frames, work, plan_frames(work))
            started = time.perf_counter()
            embedded, cost = embed_frames(
                self.encoder,
                work,
                self.config.regions,
                use_proposals=self.config.detector_boxes,
                plans=plans,
                regions=self.config.embed == "regions",
            )
            self.cost_model.observe(cost.crops, cost.full_views, time.perf_counter() - started)
            now_ms = time.time() * 1000
            for frame, embeddings in zip(frames, embedded, strict=True):
                camera_id = frame.headers.camera_id
                self.metrics.stage_seconds.labels("embedded").observe((now_ms - frame.headers.ts_ms) / 1000)
                kind = "full" if embeddings.full is not None else "regions" if embeddings.regions else "still"
                self.metrics.frames_embedded.labels(camera_id, kind).inc()
                if embeddings.regions:
                    self.metrics.regions_embedded.labels(camera_id).inc(len(embeddings.regions))
                if embeddings.global_change:
                    self.metrics.global_changes.labels(camera_id).inc()
            index_rows: list[FrameRecord] = []
            for frame, embeddings in zip(frames, embedded, strict=True):
                self._score_frame(frame, embeddings, index_rows)
            self.store.add_frames(index_rows)
        self.consumed(records)

    def _shed(
        self, frames: list[AdmittedFrame], work: list[FrameWork], plans: list[RegionPlan]
    ) -> tuple[list[AdmittedFrame], list[FrameWork], list[RegionPlan]]:
        """Leave out what the latency budget cannot afford (pipelines/shedding.py), counted."""
        max_regions = self.config.regions.max_regions
        whole = self.config.embed == "frames"  # every frame that is not still is embedded whole
        planned = [
            PlannedFrame(
                frame.headers.camera_id,
                frame.headers.ts_ms,
                plan.still,
                plan.embed_full and not whole,
                plan.global_change,
                0 if whole else min(len(plan.motion), max_regions),
                whole=whole and not plan.still,
                replay=self._is_replay(frame.record),
            )
            for frame, plan in zip(frames, plans, strict=True)
        ]
        budget_ms = self.config.latency_budget_s * 1000
        decision = shed_to_budget(
            planned, time.time() * 1000, budget_ms, self.cost_model, overloaded=self.load.overloaded()
        )
        if not decision.shed:
            return frames, work, plans
        kept_frames, kept_work, kept_plans = [], [], []
        for i, frame in enumerate(frames):
            camera_id = frame.headers.camera_id
            if not decision.keep[i]:
                reason = "still" if plans[i].still else "frame"
                self.metrics.frames_shed.labels(camera_id, reason).inc()
                continue
            plan = plans[i]
            if decision.drop_full[i]:
                plan = replace(plan, embed_full=False)
                self.metrics.frames_shed.labels(camera_id, "full_frame").inc()
            kept_frames.append(frame)
            kept_work.append(work[i])
            kept_plans.append(plan)
        return kept_frames, kept_work, kept_plans

    def _score_frame(
        self, frame: AdmittedFrame, embeddings: FrameEmbeddings, index_rows: list[FrameRecord]
    ) -> None:
        headers = frame.headers
        camera_id, ts_ms = headers.camera_id, headers.ts_ms
        pipeline = self.pipelines[camera_id]
        outcome = pipeline.step(ts_ms, embeddings, ts_ms)
        if not outcome.accepted:
            self.metrics.frames_skipped.labels(camera_id, Skip.REPLAYED.value).inc()
            return
        self._dirty.add(camera_id)
        self.metrics.frames.labels(camera_id).inc()
        now_ms = time.time() * 1000
        self.metrics.stage_seconds.labels("scored").observe((now_ms - ts_ms) / 1000)
        self.metrics.lag_seconds.labels(camera_id).set((now_ms - ts_ms) / 1000)
        if outcome.is_peak:
            # Written before the hit that may name it, so a hit never points at nothing; the
            # regions the peaks are about are drawn on it.
            self.thumbnails.save(camera_id, ts_ms, self._thumbnail(frame, outcome.peak_boxes))
        full_view = pipeline.views.full
        # Until the camera has a whole-frame view there is no scene embedding to index.
        if full_view is not None and self.index_sampler.offer(camera_id, ts_ms):
            reference = self.thumbnails.save(camera_id, ts_ms, small_jpeg(frame.pixels, frame.record.value))
            index_rows.append(FrameRecord(camera_id, ts_ms, full_view.embedding, reference))
        if outcome.hits:
            self.hit_writer.write(camera_id, outcome.hits, confirmed_at=ts_ms)

    @staticmethod
    def _thumbnail(frame: AdmittedFrame, boxes: list[Box]) -> bytes:
        regions = [(box.x0, box.y0, box.x1, box.y1) for box in boxes if box != FULL_FRAME]
        return thumbnail_with_boxes(frame.record.value, regions) if regions else frame.record.value

    def _expire_silent_cameras(self) -> None:
        # Open events of cameras silent for longer than max_lag + max_gap close
        # (pipelines/frame_gate.py: the silence clock).
        silence_clock_ms = self.gate.silence_clock_ms(int(time.time() * 1000))
        open_events = 0
        for camera_id, pipeline in self.pipelines.items():
            hits = pipeline.expire(silence_clock_ms)
            if hits:
                self.hit_writer.write(camera_id, hits, confirmed_at=None)
                self._dirty.add(camera_id)
            open_events += pipeline.open_events()
        self.metrics.open_events.set(open_events)

    # --- checkpoints ---------------------------------------------------------------------

    def has_state_to_save(self) -> bool:
        return bool(self._dirty)  # e.g. events closed on a camera gone silent: no new offsets

    def save_state(self) -> None:
        """The snapshots of the cameras that moved, with each checkpoint
        (services/common/consumer_service.py)."""
        for camera_id in sorted(self._dirty):
            pipeline = self.pipelines.get(camera_id)
            if pipeline is not None:
                self.state_log.save(camera_id, pipeline.to_state())
        self._dirty.clear()
        # The frame index is committed past too: seal it, or a crash now would leave those
        # frames out of it for good (one fsync a commit interval, not one per batch).
        self.store.flush_frames()


def small_jpeg(pixels: np.ndarray, original: bytes, width: int = INDEX_THUMBNAIL_WIDTH) -> bytes:
    """A JPEG at most `width` wide for the frame index (the original when it is that small)."""
    height, current = pixels.shape[:2]
    if current <= width:
        return original
    image = Image.fromarray(pixels).resize((width, max(1, round(height * width / current))), Image.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def run_detector(config_path: Path | None = None, metrics_port: int | None = None) -> None:
    """`vigil detector`: run until SIGINT or SIGTERM, then checkpoint and stop."""
    keep_large_blocks_out_of_the_heap()  # before the first frame: services/common/memory.py
    settings = DetectorServiceSettings.load(config_path)
    if metrics_port is not None:
        detector = settings.detector.model_copy(update={"metrics_port": metrics_port})
        settings = settings.model_copy(update={"detector": detector})
    run_service(lambda: DetectorService(settings))
