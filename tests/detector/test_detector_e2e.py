"""The detector end to end through real parts: a real RTSP camera (gst-rtsp-server) streaming real
footage with real photos pasted in for known spans -> ingest -> the tansu broker -> the detector
(the real offline encoder, onnxruntime) -> Milvus lite and "hits"."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from kafka import KafkaAdminClient
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).parents[1] / "ingest"))
from ingest_helpers import wait_for  # noqa: E402

from vigil.fixtures.media import MediaUnavailableError, event_clip  # noqa: E402
from vigil.fixtures.rtsp import RtspCamera  # noqa: E402
from vigil.services.broker.local import free_loopback_port  # noqa: E402
from vigil.services.common.contract import FrameHeaders, HitMessage, QueryMessage  # noqa: E402
from vigil.services.common.kafka import (  # noqa: E402
    ResilientProducer,
    assign_all_partitions,
    delete_query,
    make_consumer,
    publish_query,
)
from vigil.services.detector.config import DetectorServiceSettings, DetectorSettings  # noqa: E402
from vigil.services.detector.service import DetectorService  # noqa: E402
from vigil.services.detector.store import HitStore, StoreSettings  # noqa: E402
from vigil.services.ingest.config import IngestServiceSettings, parse_config  # noqa: E402
from vigil.services.ingest.service import IngestService  # noqa: E402

VIGIL = str(Path(sys.executable).with_name("vigil"))
# The stream of the live test: the cat twice, the motorcycle once in between.
LIVE_EVENTS = (("cat", 8.0, 13.0), ("motorcycle", 17.0, 22.0), ("cat", 26.0, 31.0))


def query(query_id: str, text: str) -> QueryMessage:
    return QueryMessage(
        query_id=query_id, text=text, created_by="test", updated_ts_ms=int(time.time() * 1000)
    )


class HitsReader:
    """Every hit on "hits" from the first record, without joining a group."""

    def __init__(self, settings) -> None:
        self.consumer = make_consumer(settings, group_id=None)
        assign_all_partitions(self.consumer, settings.topics.hits)
        self.consumer.seek_to_beginning()
        self.hits: list[HitMessage] = []

    def poll(self) -> list[HitMessage]:
        for records in self.consumer.poll(timeout_ms=100).values():
            self.hits.extend(HitMessage.model_validate_json(record.value) for record in records)
        return self.hits

    def close(self) -> None:
        self.consumer.close(autocommit=False)


def first_frame_capture_s(settings, timeout_s: float = 60) -> float:
    """The capture time (s) of the first frame on "frames", waiting for it to arrive."""
    consumer = make_consumer(settings, group_id=None)
    try:
        assign_all_partitions(consumer, settings.topics.frames)
        consumer.seek_to_beginning()
        first: list[float] = []

        def arrived() -> bool:
            for records in consumer.poll(timeout_ms=100).values():
                first.extend(FrameHeaders.from_kafka(r.headers).ts_ms / 1000 for r in records)
            return bool(first)

        wait_for(arrived, timeout_s=timeout_s, interval_s=0, what="the camera's first frame")
        return min(first)
    finally:
        consumer.close(autocommit=False)


@pytest.fixture(scope="module")
def offline_encoder():
    from vigil.models.offline.encoder import OfflineEncoder

    return OfflineEncoder.load()


@pytest.fixture(scope="module")
def live_clip() -> Path:
    try:
        return event_clip(LIVE_EVENTS, seconds=36)
    except MediaUnavailableError as error:
        pytest.skip(str(error))


def test_queries_registered_and_deleted_mid_stream_start_and_stop_hits(
    kafka_settings, tmp_path, offline_encoder, live_clip
):
    camera = RtspCamera(media=live_clip, port=free_loopback_port(), mount="/hall", width=768, height=576)
    store_settings = StoreSettings(uri=str(tmp_path / "milvus"), thumbnails_dir=tmp_path / "thumbnails")
    config = DetectorSettings(group_id="e2e-live", metrics_port=0, batch_max_wait_ms=10)
    detector = DetectorService(
        DetectorServiceSettings(detector=config, kafka=kafka_settings, store=store_settings),
        encoder=offline_encoder,
        metrics_registry=CollectorRegistry(),
    )
    stop = threading.Event()
    runner = threading.Thread(target=detector.run, args=(stop,), daemon=True)
    runner.start()
    hits = HitsReader(kafka_settings)
    producer = ResilientProducer(kafka_settings)
    try:
        camera.start()
        # A loaded machine may answer the first RTSP request slowly; a retry would restart the clip.
        ingest_config = parse_config(
            {
                "metrics_port": 0,
                "cameras": [{"id": "hall", "url": camera.url, "fps": 2, "open_timeout_s": 20}],
            }
        )
        ingest = IngestServiceSettings(ingest=ingest_config, kafka=kafka_settings)
        with IngestService(ingest, metrics_registry=CollectorRegistry()):
            # The detector is running, frames are about to flow, nobody is asking for anything yet.
            publish_query(producer, kafka_settings.topics, query("motorcycle", "a motorcycle"))
            # The clip's time 0 is its first frame's capture time, however long the camera took.
            started = first_frame_capture_s(kafka_settings)
            time.sleep(max(0.0, started + 3 - time.time()))
            publish_query(producer, kafka_settings.topics, query("cat", "một con mèo"))  # Vietnamese

            def first_cat_closed() -> bool:
                return any(h.query_id == "cat" and h.end_ts_ms is not None for h in hits.poll())

            wait_for(first_cat_closed, timeout_s=30, interval_s=0.2, what="the first cat event to close")
            deleted_at = time.time()
            delete_query(producer, kafka_settings.topics, "cat")
            # Past the second cat and the end of the clip.
            wait_for(lambda: time.time() - started > 34, timeout_s=60, interval_s=0.2)
            hits.poll()
    finally:
        stop.set()
        runner.join(timeout=30)
        detector.close()
        producer.close()
        camera.stop()
    events = {(h.query_id, h.event_start_ts_ms): h for h in hits.hits}  # closing replaces confirming
    cats = [h for (q, _), h in events.items() if q == "cat"]
    motorcycles = [h for (q, _), h in events.items() if q == "motorcycle"]
    # Times into the stream, from its first frame.
    offsets = [(h.query_id, h.event_start_ts_ms / 1000 - started) for h in cats + motorcycles]
    print(f"events (query, start s into the stream): {offsets}")
    assert len(cats) == 1, offsets  # the first cat; the second came after the delete
    assert 8.0 - 1 <= cats[0].event_start_ts_ms / 1000 - started <= 8.0 + 2.5, offsets
    assert all(h.event_start_ts_ms / 1000 < deleted_at for h in cats)
    assert len(motorcycles) == 1 and 17.0 - 1 <= motorcycles[0].event_start_ts_ms / 1000 - started <= 19.5
    with HitStore(store_settings.model_copy(update={"dim": offline_encoder.info.dim})) as store:
        stored = {hit.hit_id for hit in store.hits()}
    assert stored == {h.hit_id for h in events.values()}


# --- a killed and restarted detector -------------------------------------------------------------


def publish_clip(settings, clip: Path, fps: float = 2.0) -> int:
    """Every 1/fps s of the clip as a frame of camera "hall", capture times ending now."""
    import av
    from PIL import Image

    jpegs = []
    with av.open(str(clip)) as container:
        step = round(10 / fps)  # the clip is 10 frames/s
        for index, frame in enumerate(container.decode(video=0)):
            if index % step == 0:
                buffer = io.BytesIO()
                Image.fromarray(frame.to_ndarray(format="rgb24")).save(buffer, format="JPEG", quality=85)
                jpegs.append(buffer.getvalue())
    first_ms = int(time.time() * 1000) - round(len(jpegs) * 1000 / fps)
    with ResilientProducer(settings) as producer:
        for seq, jpeg in enumerate(jpegs):
            headers = FrameHeaders(
                camera_id="hall", ts_ms=first_ms + round(seq * 1000 / fps), seq=seq, width=768, height=576
            )
            producer.send_frame(headers, jpeg)
        producer.flush()
    return len(jpegs)


class DetectorProcess:
    """`vigil detector` in a subprocess, on its own consumer group and Milvus directory."""

    def __init__(self, settings, tmp_path: Path, name: str, **detector_settings) -> None:
        self.directory = tmp_path / name
        self.directory.mkdir()
        self.config = self.directory / "vigil.yaml"
        self.detector_settings = {
            "group_id": f"group-{name}",
            "max_lag_s": 3600,
            "latency_budget_s": 3600,
            "metrics_port": 0,
        }
        self.reconfigure(**detector_settings)
        self.group_id = f"group-{name}"
        self.settings = settings
        self.environment = {
            **os.environ,
            "VIGIL_KAFKA_BOOTSTRAP": settings.bootstrap,
            "VIGIL_KAFKA_TOPIC_PREFIX": settings.topic_prefix,
            "VIGIL_KAFKA_FRAME_PARTITIONS": str(settings.frame_partitions),
            "VIGIL_KAFKA_EVENT_PARTITIONS": str(settings.event_partitions),
            "VIGIL_MILVUS_URI": str(self.directory / "milvus"),
            "VIGIL_MILVUS_THUMBNAILS_DIR": str(self.directory / "thumbnails"),
            "VIGIL_LOG_LEVEL": "WARNING",
        }
        self.process: subprocess.Popen | None = None

    def reconfigure(self, **detector_settings) -> None:
        """Change its detector settings (for its next start)."""
        self.detector_settings.update(detector_settings)
        self.config.write_text(yaml.safe_dump({"detector": self.detector_settings}))

    def start(self) -> DetectorProcess:
        self.process = subprocess.Popen(
            [VIGIL, "detector", "--config", str(self.config)], env=self.environment
        )
        return self

    def committed(self) -> int:
        """Frames of "frames" the group has committed (summed over partitions)."""
        admin = KafkaAdminClient(bootstrap_servers=self.settings.bootstrap)
        try:
            offsets = admin.list_group_offsets(self.group_id).get(self.group_id, {})
        finally:
            admin.close()
        return sum(
            o.offset for tp, o in offsets.items() if tp.topic == self.settings.topics.frames and o.offset > 0
        )

    def wait_until_committed(self, count: int, timeout_s: float = 120) -> None:
        def done() -> bool:
            assert self.process.poll() is None, f"the detector exited with {self.process.returncode}"
            return self.committed() >= count

        wait_for(done, timeout_s, interval_s=0.5, what=f"{self.group_id} to commit {count} frames")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def stored_hits(self, dim: int) -> dict[str, tuple]:
        settings = StoreSettings(
            uri=str(self.directory / "milvus"), thumbnails_dir=self.directory / "thumbnails"
        )
        with HitStore(settings.model_copy(update={"dim": dim})) as store:
            return {hit.hit_id: (hit.end_ts_ms, round(hit.peak_score, 4)) for hit in store.hits()}


def test_a_killed_and_restarted_detector_neither_loses_nor_duplicates_hits(
    kafka_settings, tmp_path, offline_encoder
):
    try:
        clip = event_clip()  # the demo's: a cat at 12-20 s, a motorcycle at 34-42 s, 60 s
    except MediaUnavailableError as error:
        pytest.skip(str(error))
    with ResilientProducer(kafka_settings) as producer:
        publish_query(producer, kafka_settings.topics, query("cat", "a cat"))
        publish_query(producer, kafka_settings.topics, query("xe-may", "một chiếc xe máy"))
    frames = publish_clip(kafka_settings, clip)
    dim = offline_encoder.info.dim

    # The victim checkpoints often and in small batches, and is killed (SIGKILL: no last
    # checkpoint) the moment its first hit is out: it has scored frames past its last commit,
    # and written a hit that the snapshot it will resume from has not seen.
    victim = DetectorProcess(kafka_settings, tmp_path, "victim", batch_max_frames=4, commit_interval_s=0.3)
    reader = HitsReader(kafka_settings)
    try:
        victim.start()
        wait_for(lambda: reader.poll(), timeout_s=120, interval_s=0, what="the victim's first hit")
        victim.kill()
        killed_at = victim.committed()
        # It restarts on a backlog far over a tight latency budget. Every frame it resumes on was
        # published before it started, so it is replayed in full all the same: a shed frame
        # would move the open event's end, or the start (and so the id) of one it had confirmed.
        victim.reconfigure(latency_budget_s=0.05)
        victim.start().wait_until_committed(frames)
        victim.stop()
        wait_for(lambda: len(reader.poll()) >= 4, timeout_s=10)  # both events confirmed and closed
        # The reference: the same frames in one go, on another group and Milvus directory.
        reference = DetectorProcess(kafka_settings, tmp_path, "reference").start()
        reference.wait_until_committed(frames)
        reference.stop()
    finally:
        victim.stop()
        reader.close()
    print(f"killed after committing {killed_at} of {frames} frames")
    assert killed_at < frames
    expected = reference.stored_hits(dim)
    assert {hit_id.split(":")[1] for hit_id in expected} == {"cat", "xe-may"}, expected
    assert victim.stored_hits(dim) == expected  # same events, same ids, same ends and scores
    # "hits" carried nothing but those ids (a replay may repeat one, never invent one)
    victim_hits = reader.hits
    assert {h.hit_id for h in victim_hits} == set(expected)
