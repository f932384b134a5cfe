"""The detector's first stage: which polled frames go on to be scored, decoded.

Headers, size and capture time are checked before anything else sees a frame: none of them may
reach a camera's state (pipelines/admission.py). A frame whose headers are broken, that is over
`max_message_bytes` (a broker that does not enforce the topic's limit let it through), whose
capture time cannot be believed, or whose JPEG is unreadable or over the pixel bound goes to the
dead-letter topic, counted by reason. A frame behind by more than `max_lag_s`, or one the
camera's state has already seen (a redelivery after a restart), is skipped and counted
(pipelines/frame_gate.py), before it costs a decode. What is left comes out in each camera's
capture order, once each: a camera's change detector and pipeline are state machines over its
frames, so a duplicate in one batch is dropped.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from vigil.pipelines.admission import capture_time_problem
from vigil.pipelines.frame_gate import FrameGate
from vigil.services.common.contract import MAX_FRAME_PIXELS, BadMessageError, FrameHeaders, Topics
from vigil.services.common.kafka import KafkaRecord, ResilientProducer, send_to_dead_letter
from vigil.services.detector.metrics import DetectorMetrics


@dataclass
class AdmittedFrame:
    record: KafkaRecord
    headers: FrameHeaders
    pixels: np.ndarray


class FrameAdmission:
    """`admit(records)`: the frames to score, see the module docstring."""

    def __init__(
        self,
        producer: ResilientProducer,
        topics: Topics,
        metrics: DetectorMetrics,
        gate: FrameGate,
        max_clock_skew_s: float,
        last_scored_ts_ms: Callable[[str, int], int | None],
    ) -> None:
        """`last_scored_ts_ms(camera_id, partition)`: the capture time of the camera's last
        scored frame (its state, loaded on first sight), None before its first."""
        self.producer = producer
        self.topics = topics
        self.metrics = metrics
        self.gate = gate
        self.max_clock_skew_ms = max_clock_skew_s * 1000
        self.last_scored_ts_ms = last_scored_ts_ms

    def admit(self, records: list[KafkaRecord]) -> list[AdmittedFrame]:
        now_ms = time.time() * 1000
        frames = [frame for frame in (self._admit(record, now_ms) for record in records) if frame]
        done_ms = time.time() * 1000
        for frame in frames:
            self.metrics.stage_seconds.labels("decoded").observe((done_ms - frame.headers.ts_ms) / 1000)
        return in_camera_order(frames)

    def _admit(self, record: KafkaRecord, now_ms: float) -> AdmittedFrame | None:
        try:
            headers = FrameHeaders.from_kafka(record.headers)
        except BadMessageError as error:
            self._dead_letter(record, str(error), "bad_headers")
            return None
        camera_id = headers.camera_id
        size, max_bytes = len(record.value or b""), self.producer.settings.max_message_bytes
        if size > max_bytes:
            reason = f"frame of camera {camera_id} at {headers.ts_ms} is {size} bytes, over "
            self._dead_letter(record, reason + f"max_message_bytes {max_bytes}", "too_large")
            return None
        problem = capture_time_problem(
            headers.ts_ms, record.timestamp, now_ms, self.max_clock_skew_ms, self.gate.max_lag_ms
        )
        if problem is not None:
            self._dead_letter(record, f"frame of camera {camera_id}: {problem}", "clock_skew")
            return None
        self.metrics.stage_seconds.labels("received").observe(max(0.0, now_ms - headers.ts_ms) / 1000)
        # The lag rule first, so that a camera's state is not loaded for a frame skipped anyway.
        skip = self.gate.by_lag(headers.ts_ms, now_ms)
        if skip is None:
            skip = self.gate.by_camera_state(
                headers.ts_ms, self.last_scored_ts_ms(camera_id, record.partition)
            )
        if skip is not None:
            self.metrics.frames_skipped.labels(camera_id, skip.value).inc()
            return None
        try:
            pixels = decode_jpeg(record.value)
        except ValueError as error:
            reason = f"frame of camera {camera_id} at {headers.ts_ms}: {error}"
            self._dead_letter(record, reason, "bad_jpeg")
            return None
        return AdmittedFrame(record, headers, pixels)

    def _dead_letter(self, record: KafkaRecord, reason: str, label: str) -> None:
        send_to_dead_letter(self.producer, self.topics, record, reason)
        self.metrics.bad_frames.labels(label).inc()


def in_camera_order(frames: list[AdmittedFrame]) -> list[AdmittedFrame]:
    """Each camera's frames in capture order, once each."""
    ordered = sorted(frames, key=lambda frame: (frame.headers.camera_id, frame.headers.ts_ms))
    return [
        frame
        for i, frame in enumerate(ordered)
        if i == 0
        or (frame.headers.camera_id, frame.headers.ts_ms)
        != (ordered[i - 1].headers.camera_id, ordered[i - 1].headers.ts_ms)
    ]


def decode_jpeg(jpeg: bytes | None) -> np.ndarray:
    """RGB uint8 pixels of a JPEG; ValueError saying what is wrong with it."""
    if not jpeg:
        raise ValueError("the frame has no image bytes")
    try:
        with Image.open(io.BytesIO(jpeg)) as image:
            if image.format != "JPEG":
                raise ValueError(f"the frame is {image.format or 'an unknown format'}, not a JPEG")
            width, height = image.size  # read from the header: nothing is decoded yet
            if width * height > MAX_FRAME_PIXELS:
                raise ValueError(
                    f"the frame is {width} x {height} pixels, over the {MAX_FRAME_PIXELS} a frame may have"
                )
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
        raise ValueError(f"the frame is not a readable JPEG ({error})") from None
