"""Whether a frame's capture time can be believed, before it touches any state (no I/O).

A camera's pipeline is a state machine over capture time: it refuses every frame that is not
newer than the last one it took, and it keeps that time in its snapshot. So one frame stamped
a day ahead (a camera with a wrong clock, a hand-made record) would make every real frame after
it "already seen", and the restored snapshot would keep the camera blind across restarts. A
frame stamped far in the past by a publisher whose own clock says now is as wrong the other
way: it would count as a day of silence and close the camera's open events.

Two clocks are at hand to judge the stamp by: this machine's (`now_ms`), and the time the
broker took the record (`received_ms`, the Kafka record's timestamp: when the publisher sent it
or the broker appended it, both close to the capture for a live camera). A stamp further than
`max_skew_ms` ahead of now or of the receive time is refused, and so is one further before the
receive time than `max_skew_ms` or `max_behind_ms`, whichever is longer: a detector told to
score frames up to `max_behind_ms` old (its lag bound) accepts a publisher that far behind its
cameras (recorded footage sent with its capture times), and a frame older than that when it
was published could never be scored anyway. The reason names both times. A frame that is old
in both clocks is not refused here: that is a detector behind its input (the lag rule of
pipelines/frame_gate.py, which skips it), not a bad stamp.
"""

from __future__ import annotations


def capture_time_problem(
    ts_ms: int, received_ms: int | None, now_ms: float, max_skew_ms: float, max_behind_ms: float = 0.0
) -> str | None:
    """Why the capture time `ts_ms` cannot be believed, or None when it can (see the module
    docstring). received_ms: the record's broker timestamp, None (or negative: Kafka's "none")
    when there is none to compare with."""
    ahead_of_now = ts_ms - now_ms
    if ahead_of_now > max_skew_ms:
        return (
            f"capture time {ts_ms} is {ahead_of_now / 1000:.1f} s ahead of this machine's clock "
            f"(more than {max_skew_ms / 1000:g} s)"
        )
    if received_ms is not None and received_ms >= 0:
        skew = ts_ms - received_ms
        bound = max_skew_ms if skew > 0 else max(max_skew_ms, max_behind_ms)
        if abs(skew) > bound:
            side = "after" if skew > 0 else "before"
            return (
                f"capture time {ts_ms} is {abs(skew) / 1000:.1f} s {side} the broker received the "
                f"frame at {received_ms} (more than {bound / 1000:g} s)"
            )
    return None


def snapshot_time_problem(last_ts_ms: int | None, now_ms: float, max_skew_ms: float) -> str | None:
    """Why a restored camera snapshot cannot be resumed, or None: a last frame stamped further
    than `max_skew_ms` ahead of now would refuse every real frame until that time comes."""
    if last_ts_ms is None or last_ts_ms - now_ms <= max_skew_ms:
        return None
    return (
        f"its last frame is stamped {last_ts_ms}, {(last_ts_ms - now_ms) / 1000:.1f} s ahead of this "
        f"machine's clock: every real frame would be refused as already seen"
    )
