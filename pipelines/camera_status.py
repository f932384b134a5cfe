"""A camera's connection status: its states, their transitions and what is reported (no I/O).

Ingest reads each camera on a thread of its own (services/ingest/camera.py); that thread and the
service's stall check tell a camera's `CameraStatusMachine` what happened, and every change it
returns is published on "camera-status", set on the camera's state metric and, when it is news,
logged:

    connecting -> streaming -> stalled (no data for stall_after_s) -> down -> streaming ...
    disabled (enabled: false); a file that reached its end (loop: false) stays down.

- A transition to the state and reason the camera already has reports nothing; the very first
  report is made even when it repeats the initial status (connecting), so that every camera is
  published once.
- `since` is when the camera entered its state: a new reason in the same state (a camera still
  down, now for another cause) keeps it, so "camera-status" says when the camera went down, not
  when it was last retried.
- A deleted camera (the "cameras" topic) ends down, its reason saying so (DELETED_REASON).
- A camera being retried stays down (its reason updated by each failure) until it streams again:
  a connection attempt does not make it "connecting".
- `reconnects` counts the connection attempts after the first.
- News, for the log: every change, except a camera going down for the reason it was last down
  for (a camera that stays unreachable fails again every few seconds: the log says when it goes
  down or its reason changes, not at every attempt). Streaming again forgets that reason; no
  reason at all counts as the same as "never down yet". Trouble, for a warning rather than an info
  line: stalled, and down for any reason but ingest stopping.

The clock is passed in (`now`, epoch seconds): the caller's reading when the event happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CameraState = Literal["connecting", "streaming", "stalled", "down", "disabled"]

# The reason a camera is down once ingest stops: no trouble, so not a warning.
STOPPED_REASON = "ingest stopped"
# The reason a camera is down for good: an operator deleted it ("cameras" topic). No trouble either.
DELETED_REASON = "camera deleted"


@dataclass(frozen=True)
class CameraStatus:
    camera_id: str
    state: CameraState
    reason: str | None  # why it is not streaming; redacted
    since: float  # epoch seconds when the camera entered this state
    reconnects: int = 0


@dataclass(frozen=True)
class StatusChange:
    """A camera's new status, to report; `news`: worth a log line; `trouble`: as a warning."""

    status: CameraStatus
    news: bool
    trouble: bool


class CameraStatusMachine:
    """One camera's status; see the module docstring. Each event returns the change to report,
    or None when the status stays as it is. Not thread-safe: the caller serialises events."""

    def __init__(self, camera_id: str, stall_after_s: float, now: float) -> None:
        self.stall_after_s = stall_after_s
        self._status = CameraStatus(camera_id, "connecting", None, now)
        self._announced = False  # the first status is reported even if it is the initial one
        self._connections = 0
        self._last_down_reason: str | None = None

    @property
    def status(self) -> CameraStatus:
        return self._status

    @property
    def connections(self) -> int:
        """Connection attempts so far (`connecting` counts them)."""
        return self._connections

    def disabled(self, now: float) -> StatusChange | None:
        """The camera is configured off (enabled: false)."""
        return self._enter("disabled", None, now)

    def connecting(self, now: float) -> StatusChange | None:
        """A connection attempt starts; a camera that is down stays down until it streams."""
        self._connections += 1
        if self._status.state == "down":
            return None
        return self._enter("connecting", None, now)

    def streaming(self, now: float) -> StatusChange | None:
        """A frame was decoded."""
        return self._enter("streaming", None, now)

    def check_stall(self, silent_s: float, now: float) -> StatusChange | None:
        """A streaming camera whose reader has had no data for `silent_s` seconds is stalled once
        that is more than stall_after_s; any other state is left to its own events."""
        if self._status.state != "streaming" or silent_s <= self.stall_after_s:
            return None
        return self._enter("stalled", f"no data for more than {self.stall_after_s:g} s", now)

    def down(self, reason: str | None, now: float) -> StatusChange | None:
        """The camera was lost, or is finished (a file that ended); `reason` says why, redacted."""
        return self._enter("down", reason, now)

    def stopped(self, now: float) -> StatusChange | None:
        """Ingest stops: consumers of "camera-status" must not think the camera still streams."""
        return self._enter("down", STOPPED_REASON, now)

    def deleted(self, now: float) -> StatusChange | None:
        """The camera was deleted: ingest stops reading it, and "camera-status" says why."""
        return self._enter("down", DELETED_REASON, now)

    def _enter(self, state: CameraState, reason: str | None, now: float) -> StatusChange | None:
        previous = self._status
        if self._announced and previous.state == state and previous.reason == reason:
            return None
        since = previous.since if self._announced and previous.state == state else now
        self._announced = True
        self._status = CameraStatus(previous.camera_id, state, reason, since, max(self._connections - 1, 0))
        news = state != "down" or reason != self._last_down_reason
        if state == "down":
            self._last_down_reason = reason
        elif state == "streaming":
            self._last_down_reason = None
        trouble = state == "stalled" or (state == "down" and reason not in (STOPPED_REASON, DELETED_REASON))
        return StatusChange(self._status, news, trouble)
