"""Frames that cannot hurt: a real detector (the offline encoder on onnxruntime, Milvus lite) on
the real tansu broker gets a camera's frames with poison among them (a frame stamped a day
ahead, one stamped a day before the broker took it, one that is not a JPEG, one over the
topic's size limit that the broker let through). Each poison frame is dead-lettered with its
reason and counted, and the camera's later frames are scored. A state snapshot left stamped a
day ahead is discarded on restore, not resumed into a blind camera."""

from __future__ import annotations

import io
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from kafka import KafkaProducer
from PIL import Image
from prometheus_client import CollectorRegistry
from skimage import data as skimage_data

sys.path.insert(0, str(Path(__file__).parents[1] / "ingest"))
from ingest_helpers import wait_for  # noqa: E402

from vigil.pipelines.detector import CameraPipeline, FrameEmbeddings  # noqa: E402
from vigil.services.common.contract import FrameHeaders, QueryMessage  # noqa: E402
from vigil.services.common.kafka import (  # noqa: E402
    ResilientProducer,
    assign_all_partitions,
    make_consumer,
    publish_query,
)
from vigil.services.common.state_log import GroupStateLog  # noqa: E402
from vigil.services.detector.config import DetectorServiceSettings, DetectorSettings  # noqa: E402
from vigil.services.detector.service import DetectorService  # noqa: E402
from vigil.services.detector.store import StoreSettings  # noqa: E402

DAY_MS = 86_400_000
MIB = 1024 * 1024
CAMERA = "gate"


@pytest.fixture(scope="module")
def offline_encoder():
    from vigil.models.offline.encoder import OfflineEncoder

    return OfflineEncoder.load()


@pytest.fixture(scope="module")
def photo_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(skimage_data.astronaut()).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


class RunningDetector:
    """A DetectorService on its own consumer group, run in a thread, with its own metrics."""

    def __init__(self, settings, tmp_path: Path, encoder, group_id: str) -> None:
        self.registry = CollectorRegistry()
        config = DetectorSettings(
            group_id=group_id, metrics_port=0, batch_max_wait_ms=10, max_lag_s=3600, latency_budget_s=3600
        )
        store = StoreSettings(uri=str(tmp_path / "milvus"), thumbnails_dir=tmp_path / "thumbnails")
        self.service = DetectorService(
            DetectorServiceSettings(detector=config, kafka=settings, store=store),
            encoder=encoder,
            metrics_registry=self.registry,
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.service.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def scored(self) -> float:
        return self.metric("vigil_detector_frames_total", camera=CAMERA)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self.service.close()


def dead_letters(settings, count: int, timeout_s: float = 20.0) -> list:
    consumer = make_consumer(settings, group_id=None)
    try:
        assign_all_partitions(consumer, settings.topics.dead_letters)
        records: list = []
        deadline = time.monotonic() + timeout_s
        while len(records) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        return records
    finally:
        consumer.close(autocommit=False)


def frame_headers(ts_ms: int, seq: int) -> FrameHeaders:
    return FrameHeaders(camera_id=CAMERA, ts_ms=ts_ms, seq=seq, width=512, height=512)


def test_poison_frames_are_dead_lettered_with_their_reason_and_the_camera_keeps_being_scored(
    kafka_settings, tmp_path, offline_encoder, photo_jpeg
):
    detector = RunningDetector(kafka_settings, tmp_path, offline_encoder, "poison")
    producer = ResilientProducer(kafka_settings)
    # ResilientProducer refuses an oversized record up front; a plain client with a larger
    # request limit gets it to the broker, which does not enforce the topic's limit.
    unchecked = KafkaProducer(bootstrap_servers=kafka_settings.bootstrap, max_request_size=32 * MIB)
    try:
        publish_query(
            producer,
            kafka_settings.topics,
            QueryMessage(
                query_id="cat", text="a cat", created_by="test", updated_ts_ms=int(time.time() * 1000)
            ),
        )
        now = int(time.time() * 1000)
        for seq in range(3):
            producer.send_frame(frame_headers(now - 3_000 + 500 * seq, seq), photo_jpeg)
        producer.send_frame(frame_headers(now + DAY_MS, 3), photo_jpeg)  # a day ahead
        producer.send_frame(frame_headers(now - DAY_MS, 4), photo_jpeg)  # a day before it was sent
        producer.send_frame(frame_headers(now - 1_400, 5), b"\xff\xd8\xff\xe0 not a picture")
        oversized = b"\xff\xd8" + bytes(kafka_settings.max_message_bytes + MIB)
        unchecked.send(
            kafka_settings.topics.frames,
            value=oversized,
            key=CAMERA.encode(),
            headers=frame_headers(now - 1_300, 6).to_kafka(),
        )
        unchecked.flush()
        for seq in range(3):
            producer.send_frame(frame_headers(now - 900 + 300 * seq, 7 + seq), photo_jpeg)
        producer.flush()

        wait_for(
            lambda: detector.scored() >= 6, timeout_s=90, interval_s=0.2, what="the 6 real frames scored"
        )
        letters = dead_letters(kafka_settings, 4)
        counts = {
            reason: detector.metric("vigil_detector_bad_frames_total", reason=reason)
            for reason in ("clock_skew", "bad_jpeg", "too_large")
        }
        skipped = detector.metric("vigil_detector_frames_skipped_total", camera=CAMERA, reason="replayed")
    finally:
        unchecked.close()
        producer.close()
        detector.close()
    assert detector.scored() == 6 and skipped == 0
    assert counts == {"clock_skew": 2, "bad_jpeg": 1, "too_large": 1}
    reasons = sorted(dict(record.headers)["dlq.reason"].decode() for record in letters)
    assert len(reasons) == 4, reasons
    assert any("ahead of this machine's clock" in reason for reason in reasons)
    assert any("before the broker received the frame" in reason for reason in reasons)
    assert any("not a readable JPEG" in reason for reason in reasons)
    large = [
        record
        for record in letters
        if "over max_message_bytes" in dict(record.headers)["dlq.reason"].decode()
    ]
    assert len(large) == 1
    headers = dict(large[0].headers)
    # Dead-lettered as a reference: where to find it and how big it is, not its bytes.
    assert large[0].value == b"" and int(headers["dlq.payload_bytes"]) > len(oversized)
    assert headers["dlq.source_topic"].decode() == kafka_settings.topics.frames
    assert headers["dlq.offset"].decode().isdigit()


def test_a_snapshot_stamped_ahead_of_the_clock_is_discarded_and_the_camera_is_scored(
    kafka_settings, tmp_path, offline_encoder, photo_jpeg
):
    # What a detector fed a frame stamped a day ahead (before frames were checked) left behind:
    # a camera state whose last frame is a day in the future.
    dim = offline_encoder.info.dim
    poisoned = CameraPipeline(CAMERA, dim)
    vector = np.zeros(dim, np.float32)
    vector[0] = 1.0
    assert poisoned.step(int(time.time() * 1000) + DAY_MS, FrameEmbeddings(full=vector)).accepted
    with ResilientProducer(kafka_settings) as producer:
        GroupStateLog(
            kafka_settings, producer, kafka_settings.topics.detector_state, "healing", "detector state"
        ).save(CAMERA, poisoned.to_state())
        producer.flush()
    detector = RunningDetector(kafka_settings, tmp_path, offline_encoder, "healing")
    try:
        now = int(time.time() * 1000)
        with ResilientProducer(kafka_settings) as producer:
            for seq in range(3):
                producer.send_frame(frame_headers(now - 1_500 + 500 * seq, seq), photo_jpeg)
            producer.flush()
        wait_for(lambda: detector.scored() >= 3, timeout_s=90, interval_s=0.2, what="the 3 frames scored")
        discarded = detector.metric("vigil_detector_snapshots_discarded_total")
        skipped = detector.metric("vigil_detector_frames_skipped_total", camera=CAMERA, reason="replayed")
    finally:
        detector.close()
    assert discarded == 1 and skipped == 0 and detector.scored() == 3


def test_a_jpeg_over_the_pixel_bound_is_refused_before_it_is_decoded():
    from vigil.services.common.contract import MAX_FRAME_PIXELS
    from vigil.services.detector.admission import decode_jpeg

    buffer = io.BytesIO()
    Image.new("RGB", (9000, 4000), (40, 90, 160)).save(buffer, format="JPEG")  # 36 MP, ~0.3 MB
    with pytest.raises(ValueError, match=rf"9000 x 4000 pixels, over the {MAX_FRAME_PIXELS}"):
        decode_jpeg(buffer.getvalue())
    buffer = io.BytesIO()
    Image.new("RGB", (7680, 4320), (40, 90, 160)).save(buffer, format="JPEG")  # the bound itself
    assert decode_jpeg(buffer.getvalue()).shape == (4320, 7680, 3)
