"""`vigil demo` (`make demo`): the embedded default, live, on real footage, offline.

A real RTSP camera (gst-rtsp-server) streams OpenCV's vtest.avi (a real hall with people
walking) in which real photographs were pasted for known spans: a cat from 12 s to 20 s and a
motorcycle from 34 s to 42 s of the stream. `vigil up` runs on it (local broker, ingest over
RTSP, detector, alerter, Milvus lite) with two standing queries, one English and one
Vietnamese, and prints each hit and each spoken alert as it happens; at the end, every hit with
its time into the stream next to the truth, and every alert with its audio file, checked to be
playable (decoded with PyAV) and spoken in its query's language.

The demo succeeds (`vigil demo` exits 0) when every inserted event was found, no false alert
was raised, each query that found its event raised an alert, and every alert has playable
audio in its query's language: the spoken file is the demo's product as much as the hit, so an
alert without it is a failure, not a footnote. (Which hits become alerts is the alert policy's
call: a hit held back by the cooldown is reported, not failed.)

The stream's clock: the camera plays its clip from ingest's first connection, which comes when
the services have started (seconds, more on a cold machine). So times into the stream count
from the camera's first "streaming" status (ingest's `since_ts_ms` on "camera-status"), and the
run lasts `DEMO_SECONDS` from then.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import typer
import yaml

from vigil.fixtures.media import DEMO_EVENTS, event_clip
from vigil.paths import var_dir

DEMO_QUERIES = (
    {"id": "cat", "text": "a cat"},
    {"id": "xe-may", "text": "một chiếc xe máy", "severity": "critical"},  # "a motorcycle"
)
EXPECTED = {"cat": "cat", "xe-may": "motorcycle"}
# The language each query's alert must be spoken in (the queries say "auto": detected from the text).
EXPECTED_LANGUAGE = {"cat": "en", "xe-may": "vi"}
# How the alerts name the camera, in each alert's language.
CAMERA_NAMES = {"vi": "sảnh chính", "en": "main hall"}
# espeak-ng only: the demo is offline by promise. Measured here without internet, gTTS fails
# in under 0.1 s (no DNS), but where DNS answers and the traffic is dropped, each new phrase
# waits out gtts_timeout_s x (gtts_retries + 1) = 6 s before espeak-ng speaks it, and gTTS is
# tried again after every 60 s cool-down; online, it would send the alerts' text to Google.
# For the natural voices: VIGIL_ALERTER_SPEECH__ENGINES='["gtts", "espeak-ng"]' (the
# environment wins over the file).
DEMO_SPEECH_ENGINES = ["espeak-ng"]
DEMO_COOLDOWN_S = 10
# From the camera's first frame: long enough for the last event (34-42 s) to end and close,
# and for a detector that is still starting (encoder, Milvus lite, group join) to catch up on
# the frames waiting for it (max_lag_s below).
DEMO_SECONDS = 62.0
# A camera that never streams ends the run this long after the services started.
CAMERA_GRACE_S = 60.0


def write_demo_config(directory: Path, rtsp_url: str, api_port: int = 0) -> Path:
    config = {
        "metrics_port": 0,
        "defaults": {"fps": 2, "resize": {"max_width": 768, "max_height": 576}},
        # The camera's first answer can take seconds while every service starts on the same
        # cores; a 5 s timeout would add a reconnect's backoff to the wait.
        "cameras": [{"id": "hall", "url": rtsp_url, "open_timeout_s": 20}],
        "detector": {"metrics_port": 0, "max_lag_s": 30},
        "alerter": {
            "metrics_port": 0,
            "cameras": {"hall": CAMERA_NAMES},
            # The inserted events are 22 s apart: the default 60 s (per camera and query) would
            # keep a query quiet for the rest of the demo after its first alert, false or not.
            "policy": {"cooldown_s": DEMO_COOLDOWN_S},
            "speech": {"cache_dir": str(directory / "speech"), "engines": DEMO_SPEECH_ENGINES},
        },
        # `vigil api`, a child of `vigil up` beside the alerter (0: none).
        "api": {"port": api_port, "metrics_port": 0},
        "queries": list(DEMO_QUERIES),
    }
    path = directory / "vigil.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class DemoOutcome:
    found: int  # inserted events found by their query
    alerts: int
    problems: list[str] = field(default_factory=list)  # each a reason the demo failed

    @property
    def ok(self) -> bool:
        return not self.problems


def run_demo(seconds: float = DEMO_SECONDS) -> DemoOutcome:
    """Run the demo; returns what it found, and why it failed if it did (see the module doc)."""
    from vigil.fixtures.rtsp import RtspCamera
    from vigil.services.alerter.config import load_alerter_config
    from vigil.services.broker.local import free_loopback_port
    from vigil.services.common.api_settings import ApiSettings
    from vigil.services.embedded import alert_audio_path, run_embedded
    from vigil.terminal import describe_alert, describe_hit

    directory = var_dir() / "demo"
    directory.mkdir(parents=True, exist_ok=True)
    # The demo's own hit store, so it never mixes with (or locks) the default one.
    os.environ.setdefault("VIGIL_MILVUS_URI", str(directory / "milvus"))
    os.environ.setdefault("VIGIL_MILVUS_THUMBNAILS_DIR", str(directory / "thumbnails"))
    # And its own broker log, started empty: a demo reports what one fresh run finds, which
    # state kept from an earlier run (an event left open, the alerter's cooldowns) would change.
    broker_dir = directory / "broker"
    shutil.rmtree(broker_dir, ignore_errors=True)
    os.environ.setdefault("VIGIL_BROKER_DIR", str(broker_dir))
    clip = event_clip()
    truth = ", ".join(f"a {name} from {start:g} s to {end:g} s" for name, start, end in DEMO_EVENTS)
    typer.echo(f"footage: {clip.name}: vtest.avi (real hall) with real photos pasted in: {truth}")
    camera = RtspCamera(media=clip, port=free_loopback_port(), mount="/hall", width=768, height=576, fps=10)
    hits = {}
    alerts = {}
    alerter_config = None
    api_config = None

    def on_hit(hit) -> None:
        hits[hit.hit_id] = hit
        typer.echo(describe_hit(hit))

    def on_alert(alert) -> None:
        alerts[alert.alert_id] = alert
        typer.echo(describe_alert(alert, alert_audio_path(alert, alerter_config)))

    def on_ready(bootstrap: str) -> None:
        typer.echo(
            f"running: broker {bootstrap}, camera {camera.url}, queries: "
            + "; ".join(f"{q['id']} = {q['text']!r}" for q in DEMO_QUERIES)
        )
        typer.echo(api_config.describe() or "alerts API off")
        if admin_token is not None:
            typer.echo(
                f"operators' console: {api_config.base_url()}/console/  (sign in with the admin "
                f"token {admin_token}; browsable while the demo runs, `vigil demo --seconds 600` for longer)"
            )

    streaming_since: dict[str, float] = {}
    stop = threading.Event()
    timers: list[threading.Timer] = []

    def on_status(status) -> None:
        if status.state == "streaming" and status.camera_id not in streaming_since:
            streaming_since[status.camera_id] = status.since_ts_ms / 1000
            timers.append(threading.Timer(seconds, stop.set))  # DEMO_SECONDS of stream from now
            timers[-1].start()

    def started(bootstrap: str) -> None:
        on_ready(bootstrap)
        timers.append(threading.Timer(CAMERA_GRACE_S + seconds, stop.set))  # a camera that never streams
        timers[-1].start()

    camera.start()
    fallback_start_s = time.time()
    try:
        config = write_demo_config(directory, camera.url, api_port=free_loopback_port())
        alerter_config = load_alerter_config(config)
        api_config = ApiSettings.load(config)
        admin_token = demo_admin_token(api_config)
        run_embedded(
            config, on_hit=on_hit, on_alert=on_alert, stop=stop, on_ready=started, on_status=on_status
        )
    finally:
        for timer in timers:
            timer.cancel()
        camera.stop()
    stream_start_s = streaming_since.get("hall", fallback_start_s)
    alerted = {alert.hit_id for alert in alerts.values()}
    found, false_hits = summarise(hits, stream_start_s, alerted)
    problems = summarise_alerts(alerts, hits, found, alerter_config)
    # The demo's promise: every inserted event found, and no false alert.
    missed = [f"the {name} ({query}) was not found" for query, name in EXPECTED.items() if query not in found]
    false_alerts = [
        f"false alert: {hits[h].query_id} at {hits[h].event_start_ts_ms / 1000 - stream_start_s:.0f} s"
        for h in false_hits
        if h in alerted
    ]
    problems[:0] = missed + false_alerts
    outcome = DemoOutcome(found=len(found), alerts=len(alerts), problems=problems)
    if outcome.ok:
        typer.echo(f"OK: {len(found)} event(s) found, {len(alerts)} alert(s), each spoken in its language")
    else:
        typer.echo(f"FAILED: {'; '.join(problems)}")
    return outcome


def demo_admin_token(api) -> str | None:
    """The admin token to paste into the console: the one the API service generates in its token
    file (var/api-token) when no tokens are configured, made here first (the same file, the same
    function) so that it can be printed before the API is up. None with configured tokens."""
    from vigil.services.common.auth import load_or_create_secret

    if api.tokens or not api.port:
        return None
    return load_or_create_secret(api.token_file, "alerter API admin token")


def summarise(
    hits: dict, stream_start_s: float, alerted: set[str] = frozenset()
) -> tuple[set[str], list[str]]:
    """Every event (its latest version: the closing one replaces the confirmation) with its
    times into the stream, against the truth, and whether it was alerted (`alerted`: hit ids);
    returns the queries whose inserted event was found, and the ids of the hits that were not
    an inserted event.

    The stream's clock starts when the camera first streams (the module docstring), so an event
    counts as found when it starts between 2 s before and the end of the span its query
    describes."""
    spans = {name: (start, end) for name, start, end in DEMO_EVENTS}
    typer.echo(f"\n{len(hits)} event(s):")
    found: set[str] = set()
    false_hits: list[str] = []
    for hit in sorted(hits.values(), key=lambda h: h.event_start_ts_ms):
        start = hit.event_start_ts_ms / 1000 - stream_start_s
        end = "still on" if hit.end_ts_ms is None else f"to {hit.end_ts_ms / 1000 - stream_start_s:.0f} s"
        name = EXPECTED.get(hit.query_id)
        truth_start, truth_end = spans.get(name, (None, None))
        if truth_start is not None and truth_start - 2 <= start <= truth_end:
            found.add(hit.query_id)
            verdict = f"the {name} shown {truth_start:g}-{truth_end:g} s"
        else:
            verdict = "NOT an inserted event"
            false_hits.append(hit.hit_id)
        spoken = "alerted" if hit.hit_id in alerted else "no alert (the alert policy held it back)"
        typer.echo(
            f"  {hit.query_id:>7}: from {start:.0f} s {end}, score {hit.peak_score:.2f}: {verdict}; {spoken}"
        )
        typer.echo(f"           thumbnail: {thumbnails_dir() / hit.thumbnail}")
    typer.echo(f"{len(found)}/{len(DEMO_QUERIES)} inserted events found by their query")
    return found, false_hits


def summarise_alerts(alerts: dict, hits: dict, found: set[str], alerter_config) -> list[str]:
    """Every alert (each hit that passed the alert policy) with what was said and its audio
    file, decoded to prove it plays; returns the problems: an alert without playable audio,
    or spoken in another language than its query's, or a found event that raised no alert."""
    from vigil.services.alerter.speech import SpeechSynthesizer
    from vigil.services.embedded import alert_audio_path

    # The cache names a file by the SHA-256 of (engine, language, text, voice): the name the
    # alerter put on the alert must be the one for this text in this language.
    speech = SpeechSynthesizer(alerter_config.speech)
    problems: list[str] = []
    typer.echo(f"\n{len(alerts)} alert(s):")
    for alert in sorted(alerts.values(), key=lambda a: a.raised_ts_ms):
        expected_language = EXPECTED_LANGUAGE.get(alert.query_id)
        typer.echo(
            f"  {alert.query_id:>7}: [{alert.language}] {alert.severity}"
            f'{", muted" if alert.muted else ""}: "{alert.text}"'
        )
        if expected_language is not None and alert.language != expected_language:
            problems.append(
                f"alert {alert.alert_id} is in {alert.language!r}, its query in {expected_language!r}"
            )
        path = alert_audio_path(alert, alerter_config)
        if path is None:
            typer.echo("           audio: NONE")
            problems.append(f"alert {alert.alert_id} has no audio")
            continue
        typer.echo(f"           audio: {path} ({alert.speech_engine})")
        try:
            duration_s, audio_format = probe_audio(path)
        except Exception as error:  # whatever PyAV or the file system says: not playable
            typer.echo(f"           NOT playable: {error}")
            problems.append(f"alert {alert.alert_id}: audio {path.name} does not play ({error})")
            continue
        typer.echo(f"           {duration_s:.2f} s of {audio_format}")
        try:
            expected_path = speech.cache_path(alert.text, alert.language, alert.speech_engine).resolve()
        except ValueError as error:  # an engine this version does not know
            expected_path = error
        if expected_path != path:
            problems.append(
                f"alert {alert.alert_id}: audio {path.name} is not this text in {alert.language!r}"
            )
    alerted = {alert.hit_id for alert in alerts.values()}
    for query_id in sorted(found):
        if not any(hit.query_id == query_id and hit.hit_id in alerted for hit in hits.values()):
            problems.append(f"the {EXPECTED[query_id]} ({query_id}) was found but raised no alert")
    return problems


def probe_audio(path: Path) -> tuple[float, str]:
    """(seconds, "container codec rate layout") of an audio file, by decoding all of it."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        rate = stream.sample_rate
        if not samples or not rate:
            raise ValueError("no audio samples")
        description = f"{container.format.name} {stream.codec_context.name} {rate} Hz {stream.layout.name}"
    return samples / rate, description


def thumbnails_dir() -> Path:
    return Path(os.environ["VIGIL_MILVUS_THUMBNAILS_DIR"])
