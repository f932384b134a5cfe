"""Detector bench: the cameras' footage. OpenCV's vtest.avi at 1280x720 with a real photo pasted
in for EVENT_S every PERIOD_S (vigil/fixtures/media.py `event_clip`), each camera's events
shifted so that cameras do not all confirm at the same instant (bench/detector.py's docstring).
"""

from __future__ import annotations

from pathlib import Path

WIDTH, HEIGHT, CAMERA_FPS = 1280, 720, 10
# A photo for EVENT_S every PERIOD_S, in this order, in a CLIP_S clip that loops.
CLIP_S, PERIOD_S, EVENT_S = 60.0, 10.0, 5.0
PHOTO_CYCLE = ("cat", "coffee", "astronaut", "cat", "coffee", "rocket")


def camera_events(shift_s: float) -> tuple[tuple[str, float, float], ...]:
    """A photo of PHOTO_CYCLE for EVENT_S every PERIOD_S from shift_s on, wrapping round the end
    of the looped clip."""
    events = []
    for k in range(round(CLIP_S / PERIOD_S)):
        name = PHOTO_CYCLE[k % len(PHOTO_CYCLE)]
        start, end = k * PERIOD_S + shift_s, k * PERIOD_S + shift_s + EVENT_S
        if end <= CLIP_S:
            events.append((name, round(start, 3), round(end, 3)))
        else:
            if start < CLIP_S:
                events.append((name, round(start, 3), CLIP_S))
            events.insert(0, (name, 0.0, round(end - CLIP_S, 3)))
    return tuple(events)


def camera_clip(index: int, cameras: int) -> Path:
    from vigil.fixtures.media import event_clip

    return event_clip(camera_events((index + 0.5) * PERIOD_S / cameras), seconds=CLIP_S)
