"""One thread per camera: connect, read, sample, encode, hand frames to the publisher.

A camera's thread only ever blocks on its own camera, so one slow, frozen or unreachable
camera never slows another. Its states (connecting, streaming, stalled, down, disabled), their
transitions and what is reported are pipelines/camera_status.py's; the thread tells that state
machine what happened and reports its changes (the "camera-status" message, the state metric,
the log line).

A lost camera is retried with exponential backoff and jitter (tenacity), capped at
reconnect.max_delay_s, forever: cameras come back. A connection that streamed for a while
before it dropped is retried at once, and its backoff starts again from the beginning.
A camera that sends frames over the size bound or bytes that do not decode (reader.py) is
lost like any other, its reason saying so, and retried the same way: it may be fixed.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable

import av.error
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential, wait_random

from vigil.pipelines.camera_status import CameraStatus, CameraStatusMachine, StatusChange
from vigil.pipelines.sampling import FrameSampler, KeyframeOnlyPolicy
from vigil.services.ingest.buffers import DropOldestQueue
from vigil.services.ingest.config import CameraSettings
from vigil.services.ingest.metrics import IngestMetrics
from vigil.services.ingest.reader import (
    CameraSourceError,
    EncodedFrame,
    FrameReader,
    encode_jpeg,
    open_source,
)

logger = logging.getLogger(__name__)

# A connection that streamed at least this long before it dropped was healthy: reconnect at
# once and start the backoff over, instead of waiting as if every attempt had failed.
HEALTHY_SESSION_S = 10.0


class CameraLost(Exception):
    """The connection failed or ended; the message is redacted and says why."""


class CameraWorker:
    """Reads `camera` on a thread of its own, pushing sampled JPEG frames into `queue`."""

    def __init__(
        self,
        camera: CameraSettings,
        queue: DropOldestQueue[EncodedFrame],
        metrics: IngestMetrics,
        on_status: Callable[[CameraStatus], None] = lambda status: None,
    ) -> None:
        self.camera = camera
        self.queue = queue
        self.metrics = metrics
        self.on_status = on_status
        self.sampler = FrameSampler(fps=camera.fps)
        self.keyframes = KeyframeOnlyPolicy(mode=camera.keyframes_only, sample_interval=1.0 / camera.fps)
        self._stop = threading.Event()
        self._deleted = False  # stopped for good: its last status says "camera deleted"
        self._silenced = False  # replaced by a reader with new settings: it reports no more
        # The camera's thread and the service's stall check both move the status.
        self._state_lock = threading.Lock()
        self._status_machine = CameraStatusMachine(camera.id, camera.stall_after_s, time.time())
        self._reader: FrameReader | None = None
        self._last_capture_time: float | None = None  # a looped file's clock continues from here
        self._thread = threading.Thread(target=self._run, name=f"camera-{camera.id}", daemon=True)
        metrics.register_camera(camera.id, camera.redacted_url)

    @property
    def status(self) -> CameraStatus:
        return self._status_machine.status

    def start(self) -> None:
        self._thread.start()

    def request_stop(self, *, deleted: bool = False, replaced: bool = False) -> None:
        """Stop reading. `deleted`: the camera is gone, its last status says so; `replaced`: a
        reader with new settings takes over, so this one reports nothing more (a late "ingest
        stopped" from it must not overwrite its successor's status)."""
        self._deleted = self._deleted or deleted
        self._silenced = self._silenced or replaced
        self._stop.set()
        if deleted and not self.camera.enabled:  # its thread ended at "disabled": say it here
            self._change(self._status_machine.deleted)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; False if it is still inside a blocking read after `timeout`."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def check_stall(self) -> None:
        """Called periodically by the service: a streaming camera silent for stall_after_s is
        stalled (its read times out after read_timeout_s and it goes down)."""
        reader = self._reader
        if reader is None:
            return
        silent_s = time.monotonic() - reader.last_activity
        self._change(lambda now: self._status_machine.check_stall(silent_s, now))

    # -- the camera's thread ------------------------------------------------------------

    def _run(self) -> None:
        if not self.camera.enabled:
            self._change(self._status_machine.disabled)
            return
        reconnect = self.camera.reconnect
        retrying = Retrying(
            retry=retry_if_exception_type(CameraLost),
            wait=wait_exponential(
                multiplier=reconnect.initial_delay_s, max=reconnect.max_delay_s - reconnect.jitter_s
            )
            + wait_random(0, reconnect.jitter_s),
            stop=lambda _: self._stop.is_set(),
            sleep=self._stop.wait,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            while not self._stop.is_set():
                finished = retrying(self._connect_and_stream)
                if finished:
                    break
            if self._stop.is_set():  # consumers of camera-status must not think it still streams
                self._change(self._stopped_event())
        except CameraLost:  # stop was requested while the camera was down
            self._change(self._stopped_event())
        except Exception as error:  # the last resort: never leave a dead camera unexplained
            details = self.camera.redact("".join(traceback.format_exception(error)))
            logger.error("camera %s: thread ended:\n%s", self.camera.id, details, extra=self._log_fields())
            self._down(f"internal error: {self.camera.redact(str(error))}")

    def _connect_and_stream(self) -> bool:
        """One connection. Returns True when the camera is finished (stop, file ended), False
        to reconnect at once; raises CameraLost to reconnect after a backoff."""
        if self._stop.is_set():
            return True
        if self._status_machine.connections:
            self.metrics.reconnects.labels(self.camera.id).inc()
        self._change(self._status_machine.connecting)
        started = time.monotonic()
        try:
            container = open_source(self.camera)
        except CameraSourceError as error:  # it answered, with something unusable: says what
            raise CameraLost(self.camera.redact(str(error))) from None
        except (av.error.FFmpegError, OSError) as error:
            waited = time.monotonic() - started
            if waited >= self.camera.open_timeout_s * 0.9:
                # FFmpeg reports a camera that never answered as whatever it failed to parse last.
                raise CameraLost(f"no answer within {waited:.0f} s") from None
            # Bytes FFmpeg cannot make sense of (random data, not a video at all).
            garbage = isinstance(error, av.error.InvalidDataError)
            what = "undecodable stream: cannot open" if garbage else "cannot open"
            raise CameraLost(self._describe(error, what)) from None
        try:
            ended_cleanly = self._stream(container)
        except (av.error.ExitError, TimeoutError):
            # PyAV's read timeout interrupts FFmpeg, which then says "Immediate exit requested".
            raise CameraLost(f"lost: no data for {self.camera.read_timeout_s:g} s") from None
        except CameraSourceError as error:  # frames over the size bound, bytes that never decode
            raise CameraLost(self.camera.redact(str(error))) from None
        except (av.error.FFmpegError, OSError) as error:
            garbage = isinstance(error, av.error.InvalidDataError)  # the demuxer could not read it
            raise CameraLost(self._describe(error, "undecodable stream" if garbage else "lost")) from None
        except Exception as error:  # a bug (or a frame PIL cannot take) must not end the camera
            details = self.camera.redact("".join(traceback.format_exception(error)))
            logger.error("camera %s: reader failed:\n%s", self.camera.id, details, extra=self._log_fields())
            raise CameraLost(f"internal error: {self.camera.redact(str(error))}") from None
        finally:
            self._reader = None
            container.close()
        if self._stop.is_set():
            return True
        if not self.camera.is_live:
            if self.camera.loop:
                return False
            self._down("the file ended (set loop: true to play it again)")
            return True
        if time.monotonic() - started >= HEALTHY_SESSION_S:
            self._down("stream ended")
            logger.warning("camera %s: stream ended, reconnecting", self.camera.id, extra=self._log_fields())
            return False
        raise CameraLost("stream ended" if ended_cleanly else "no frames")

    def _stream(self, container) -> bool:
        # The sampler is not reset: it copes with the gap (and a looped file continues its
        # clock), so a reconnect cannot publish two frames closer than a slot.
        self.keyframes.reset()
        reader = FrameReader(
            self.camera,
            container,
            keyframes=self.keyframes,
            wanted=self.sampler.peek,
            stop=self._stop,
            metrics=self.metrics,
            not_before=None
            if self.camera.is_live or self._last_capture_time is None
            else self._last_capture_time,
        )
        self._reader = reader
        try:
            return self._publish_samples(reader)
        finally:
            if reader.last_capture_time is not None:
                self._last_capture_time = reader.last_capture_time

    def _publish_samples(self, reader: FrameReader) -> bool:
        decoded_counter = self.metrics.frames_decoded.labels(self.camera.id)
        for decoded in reader.frames():
            decoded_counter.inc()
            if self._status_machine.status.state != "streaming":  # no lock, no clock read per frame
                self._change(self._status_machine.streaming)
            if not self.sampler.offer(decoded.capture_time):
                continue
            started = time.perf_counter()
            jpeg, width, height = encode_jpeg(decoded.frame, self.camera.resize, self.camera.jpeg_quality)
            self.metrics.encode_seconds.observe(time.perf_counter() - started)
            self.metrics.frames_sampled.labels(self.camera.id).inc()
            dropped = self.queue.put(EncodedFrame(self.camera.id, decoded.capture_time, jpeg, width, height))
            if dropped is not None:
                self.metrics.frames_dropped.labels(self.camera.id, "queue_full").inc()
            self.metrics.queue_depth.labels(self.camera.id).set(len(self.queue))
        return reader.decoded > 0

    # -- state, logs ----------------------------------------------------------------------

    def _change(self, event: Callable[[float], StatusChange | None]) -> None:
        """Apply one event to the camera's status machine, now; report the change, if any."""
        with self._state_lock:
            change = event(time.time())
        if change is None or self._silenced:
            return
        status = change.status
        self.metrics.set_state(self.camera.id, status.state)
        if change.news:
            log = logger.warning if change.trouble else logger.info
            log(
                "camera %s (%s): %s%s",
                self.camera.id,
                self.camera.redacted_url,
                status.state,
                f" ({status.reason})" if status.reason else "",
                extra=self._log_fields(state=status.state),
            )
        self.on_status(status)

    def _stopped_event(self) -> Callable[[float], StatusChange | None]:
        return self._status_machine.deleted if self._deleted else self._status_machine.stopped

    def _down(self, reason: str | None) -> None:
        self._change(lambda now: self._status_machine.down(reason, now))

    def _describe(self, error: BaseException, what: str) -> str:
        """`what`: the error's kind and message, with the camera's secrets hidden."""
        # strerror, not str(error): FFmpeg errors repeat the URL, which the status shows apart.
        message = getattr(error, "strerror", None) or str(error)
        return self.camera.redact(f"{what}: {type(error).__name__}: {message}")

    def _log_retry(self, retry_state: RetryCallState) -> None:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        delay = retry_state.next_action.sleep if retry_state.next_action else 0.0
        self._down(str(error) if error else None)
        logger.debug(
            "camera %s: retrying in %.1f s (attempt %d)",
            self.camera.id,
            delay,
            retry_state.attempt_number + 1,
            extra=self._log_fields(),
        )

    def _log_fields(self, **more) -> dict:
        return {"camera_id": self.camera.id, "camera_url": self.camera.redacted_url, **more}
