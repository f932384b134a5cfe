"""One line per hit and per alert, for a terminal: what `vigil up` and `vigil demo` print.

Both commands print the same lines; here they depend on neither (the demo would otherwise import
the CLI that runs it).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path


def describe_hit(hit) -> str:
    """One line per hit for a terminal: when, where, what, how sure, and the thumbnail."""
    start = datetime.fromtimestamp(hit.event_start_ts_ms / 1000).strftime("%H:%M:%S")
    if hit.end_ts_ms is None:
        what = "HIT  "
        span = f"since {start}"
    else:
        what = "ended"
        span = f"{start}-{datetime.fromtimestamp(hit.end_ts_ms / 1000).strftime('%H:%M:%S')}"
    return (
        f"{what} camera {hit.camera_id}  query {hit.query_id}  score {hit.peak_score:.2f}  {span}  "
        f"thumbnail {hit.thumbnail}"
    )


def describe_alert(alert, audio: Path | None) -> str:
    """One line per alert for a terminal: when, how loud, where, what was said, and the audio."""
    raised = datetime.fromtimestamp(alert.raised_ts_ms / 1000).strftime("%H:%M:%S")
    flags = ", escalated" if alert.escalated else ""
    flags += ", muted" if alert.muted else ""
    spoken = f"audio {audio} ({alert.speech_engine})" if audio is not None else "no audio"
    return (
        f"ALERT {raised} {alert.severity}{flags}  camera {alert.camera_id}  query {alert.query_id}  "
        f'[{alert.language}] "{alert.text}"  {spoken}'
    )
