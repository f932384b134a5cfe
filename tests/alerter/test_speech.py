"""Spoken alerts: real espeak-ng audio, gTTS timeouts and fallbacks, the cache, playback.

gTTS is made to fail for real, through its HTTP(S) proxy (requests and gTTS honour
HTTPS_PROXY): a local server that accepts connections and never answers makes it hang, a
closed port makes it fail at once. Nothing here needs the internet; on a machine that has
it, only `test_default_settings_speak_with_or_without_internet` may reach Google.
"""

from __future__ import annotations

import io
import os
import socket
import stat
import threading
import time
import unicodedata
import wave
from pathlib import Path

import numpy as np
import pytest

from vigil.pipelines.phrases import alert_phrase
from vigil.services.alerter.speech import (
    ENGINES,
    SpeechError,
    SpeechSettings,
    SpeechSynthesizer,
    audio_duration,
    mp3_duration,
    play,
    sound_device_available,
    wav_duration,
)

VI = alert_phrase("một chiếc xe máy", "cam-3", "vi", "critical")
EN = alert_phrase("a person climbing the fence", "gate_2", "en", "warning")
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def _use_proxy(monkeypatch, url: str) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.setenv(name, url)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def silent_proxy():
    """A TCP server on loopback that accepts every connection and never sends a byte.

    Yields (proxy URL, accepted connections)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", held
    stop.set()
    thread.join(timeout=2)
    for connection in held:
        connection.close()
    server.close()


@pytest.fixture
def refused_proxy() -> str:
    """A loopback port nobody listens on: connections are refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def mp3_audio() -> bytes:
    """2.0 s of a 440 Hz tone as MPEG-2 layer III, 24 kHz mono (the format gTTS returns)."""
    av = pytest.importorskip("av")
    rate = 24_000
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=rate, layout="mono")
        stream.bit_rate = 32_000
        t = np.arange(2 * rate) / rate
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for start in range(0, len(samples), 1152):
            chunk = samples[start : start + 1152].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def _check_wav(path: Path, min_s: float = 1.0, max_s: float = 15.0) -> float:
    """Read a file with the `wave` module: mono/stereo 16-bit PCM, a sane rate, audible, plausible length."""
    assert path.read_bytes()[:4] == b"RIFF"
    with wave.open(str(path)) as w:
        channels, width, rate, frames = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
        pcm = np.frombuffer(w.readframes(frames), dtype=np.int16)
    assert channels in (1, 2) and width == 2 and 8_000 <= rate <= 48_000
    duration = frames / rate
    assert min_s < duration < max_s
    assert np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) > 300  # speech, not silence
    return duration


def _no_partial_files(folder: Path) -> None:
    for entry in folder.iterdir():
        assert entry.stat().st_size > 0, f"0-byte file left: {entry.name}"
        assert not entry.name.startswith(".tmp-"), f"temporary file left: {entry.name}"


def _recorder():
    calls: list[tuple[str, float, bool]] = []
    return calls, lambda engine, seconds, ok: calls.append((engine, seconds, ok))


# ------------------------------------------------------------------------- espeak-ng


@pytest.mark.parametrize(("text", "language"), [(VI, "vi"), (EN, "en")])
def test_espeak_speaks_a_real_alert(tmp_path, text, language):
    calls, observe = _recorder()
    speech = SpeechSynthesizer(SpeechSettings(cache_dir=tmp_path, engines=["espeak-ng"]), observe=observe)
    result = speech.synthesize(text, language)
    assert result.engine == "espeak-ng" and result.language == language and not result.cached
    assert result.content_type == "audio/wav" and result.path.suffix == ".wav"
    assert result.path.parent == tmp_path
    duration = _check_wav(result.path)
    assert result.duration_s == pytest.approx(duration)
    assert 0 < result.synthesis_s < 5
    assert [(engine, ok) for engine, _, ok in calls] == [("espeak-ng", True)]
    # Readable by others (a player or web server running as another user).
    assert result.path.stat().st_mode & stat.S_IROTH
    _no_partial_files(tmp_path)


def test_vietnamese_voice_is_used_for_vietnamese(tmp_path):
    """The same Vietnamese sentence through the vi and the English voice gives different audio."""
    vi = SpeechSynthesizer(SpeechSettings(cache_dir=tmp_path / "vi", engines=["espeak-ng"]))
    en = SpeechSynthesizer(
        SpeechSettings(cache_dir=tmp_path / "en", engines=["espeak-ng"], espeak_voices={"vi": "en-us"})
    )
    assert vi.synthesize(VI, "vi").path.read_bytes() != en.synthesize(VI, "vi").path.read_bytes()


# ------------------------------------------------------------------------- gTTS fallbacks


def test_unreachable_gtts_falls_back_within_the_timeout(tmp_path, monkeypatch, silent_proxy):
    proxy, held = silent_proxy
    _use_proxy(monkeypatch, proxy)
    calls, observe = _recorder()
    settings = SpeechSettings(cache_dir=tmp_path, gtts_timeout_s=1.0, gtts_retries=1)
    speech = SpeechSynthesizer(settings, observe=observe)
    started = time.perf_counter()
    result = speech.synthesize(EN, "en")
    elapsed = time.perf_counter() - started
    budget = settings.gtts_timeout_s * (settings.gtts_retries + 1)
    assert result.engine == "espeak-ng" and not result.cached
    assert elapsed < budget + 1.0
    # Both gTTS attempts really went to the proxy and waited there (a hang, not a refusal).
    assert elapsed > 0.9 * budget
    assert len(held) >= settings.gtts_retries + 1
    assert [(engine, ok) for engine, _, ok in calls] == [("gtts", False), ("espeak-ng", True)]
    assert 0.9 * budget < calls[0][1] < budget + 0.5
    _check_wav(result.path)
    _no_partial_files(tmp_path)
    assert not any(p.suffix == ".mp3" for p in tmp_path.iterdir())


def test_gtts_failing_fast_falls_back_at_once_then_cools_down(tmp_path, monkeypatch, refused_proxy):
    _use_proxy(monkeypatch, refused_proxy)
    calls, observe = _recorder()
    speech = SpeechSynthesizer(SpeechSettings(cache_dir=tmp_path), observe=observe)  # default 3 s timeout
    started = time.perf_counter()
    result = speech.synthesize(VI, "vi")
    assert time.perf_counter() - started < 1.5
    assert result.engine == "espeak-ng"
    assert [(engine, ok) for engine, _, ok in calls] == [("gtts", False), ("espeak-ng", True)]
    _check_wav(result.path)
    # Within the cool-down, the next phrase does not try gTTS again.
    speech.synthesize(EN, "en")
    assert [engine for engine, _, _ in calls] == ["gtts", "espeak-ng", "espeak-ng"]
    _no_partial_files(tmp_path)


def test_default_settings_speak_with_or_without_internet(tmp_path):
    """No proxy trickery: offline it is espeak-ng, online it may be a real gTTS MP3."""
    settings = SpeechSettings(cache_dir=tmp_path)
    started = time.perf_counter()
    result = SpeechSynthesizer(settings).synthesize(VI, "vi")
    assert time.perf_counter() - started < settings.gtts_timeout_s * (settings.gtts_retries + 1) + 2.0
    assert result.engine in ENGINES
    assert result.duration_s == pytest.approx(audio_duration(result.path))
    assert 1.0 < result.duration_s < 15.0
    _no_partial_files(tmp_path)


def test_gtts_audio_is_checked_written_atomically_and_given_the_timeout(tmp_path, monkeypatch, mp3_audio):
    """gTTS's network call replaced by real MP3 bytes: what our code does with an answer."""
    gtts = pytest.importorskip("gtts")
    seen: dict[str, object] = {}
    original_init = gtts.gTTS.__init__

    def init(self, *args, **kwargs):
        seen.update(kwargs)
        original_init(self, *args, **kwargs)

    half = len(mp3_audio) // 2
    monkeypatch.setattr(gtts.gTTS, "__init__", init)
    monkeypatch.setattr(gtts.gTTS, "stream", lambda self: iter([mp3_audio[:half], mp3_audio[half:]]))
    speech = SpeechSynthesizer(SpeechSettings(cache_dir=tmp_path, gtts_timeout_s=2.5))
    result = speech.synthesize(EN, "en")
    assert result.engine == "gtts" and result.content_type == "audio/mpeg" and result.path.suffix == ".mp3"
    assert result.path.read_bytes() == mp3_audio
    assert result.duration_s == pytest.approx(2.0, abs=0.15)
    assert seen["timeout"] == 2.5 and seen["lang"] == "en"
    again = speech.synthesize(EN, "en")
    assert again.cached and again.path == result.path and again.engine == "gtts"
    assert again.duration_s == result.duration_s
    _no_partial_files(tmp_path)


def test_gtts_returning_nothing_leaves_no_file_and_falls_back(tmp_path, monkeypatch):
    gtts = pytest.importorskip("gtts")
    monkeypatch.setattr(gtts.gTTS, "stream", lambda self: iter(()))
    result = SpeechSynthesizer(SpeechSettings(cache_dir=tmp_path)).synthesize(EN, "en")
    assert result.engine == "espeak-ng"
    assert [p.suffix for p in tmp_path.iterdir()] == [".wav"]
    _no_partial_files(tmp_path)


# ------------------------------------------------------------------------- cache


def test_second_call_is_a_cache_hit(tmp_path):
    calls, observe = _recorder()
    speech = SpeechSynthesizer(SpeechSettings(cache_dir=tmp_path, engines=["espeak-ng"]), observe=observe)
    first = speech.synthesize(VI, "vi")
    written = first.path.stat().st_mtime_ns
    second = speech.synthesize(VI, "vi")
    assert not first.cached and second.cached
    assert second.path == first.path and second.engine == "espeak-ng"
    assert second.duration_s == first.duration_s and second.content_type == "audio/wav"
    assert len(calls) == 1 and first.path.stat().st_mtime_ns == written  # nothing re-synthesised
    # The same words typed decomposed (NFD) or with extra spaces are the same entry...
    assert speech.synthesize(unicodedata.normalize("NFD", "  " + VI), "vi").path == first.path
    # ...another language or text is not; a new synthesizer finds the files on disk.
    assert speech.synthesize(VI, "en").path != first.path
    again = SpeechSynthesizer(SpeechSettings(cache_dir=tmp_path, engines=["espeak-ng"]))
    assert again.synthesize(VI, "vi").cached


def test_cache_names_are_hashes_inside_the_cache_dir(tmp_path):
    speech = SpeechSynthesizer(SpeechSettings(cache_dir=tmp_path, engines=["espeak-ng"]))
    result = speech.synthesize("../../etc/passwd /tmp/x", "en")
    assert result.path.parent == tmp_path
    assert result.path.name.startswith("espeak-ng-") and len(result.path.stem) == len("espeak-ng-") + 64


def test_a_cached_gtts_recording_is_preferred(tmp_path, mp3_audio):
    SpeechSynthesizer(SpeechSettings(cache_dir=tmp_path, engines=["espeak-ng"])).synthesize(EN, "en")
    speech = SpeechSynthesizer(SpeechSettings(cache_dir=tmp_path))
    speech.cache_path(EN, "en", "gtts").write_bytes(mp3_audio)
    result = speech.synthesize(EN, "en")
    assert result.cached and result.engine == "gtts" and result.content_type == "audio/mpeg"
    assert result.synthesis_s < 0.5


def test_a_corrupt_cached_file_is_synthesised_again(tmp_path):
    speech = SpeechSynthesizer(SpeechSettings(cache_dir=tmp_path, engines=["espeak-ng"]))
    path = speech.cache_path(EN, "en", "espeak-ng")
    path.write_bytes(b"")
    result = speech.synthesize(EN, "en")
    assert not result.cached and result.path == path
    _check_wav(path)


def test_stale_temporary_files_are_removed_at_start(tmp_path):
    stale, fresh = tmp_path / ".tmp-dead.wav", tmp_path / ".tmp-live.wav"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    SpeechSynthesizer(SpeechSettings(cache_dir=tmp_path))
    assert not stale.exists() and fresh.exists()


# ------------------------------------------------------------------------- failures


def test_every_engine_failing_names_each_engine(tmp_path, monkeypatch, refused_proxy):
    _use_proxy(monkeypatch, refused_proxy)
    settings = SpeechSettings(cache_dir=tmp_path, espeak_voices={"vi": "nonexistentvoice", "en": "en-us"})
    with pytest.raises(SpeechError) as info:
        SpeechSynthesizer(settings).synthesize(VI, "vi")
    assert set(info.value.failures) == {"gtts", "espeak-ng"}
    message = str(info.value)
    assert "gtts:" in message and "espeak-ng:" in message and "nonexistentvoice" in message
    assert "2 attempt(s) failed" in info.value.failures["gtts"]
    assert list(tmp_path.iterdir()) == []


def test_missing_espeak_binary_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    speech = SpeechSynthesizer(SpeechSettings(cache_dir=tmp_path / "cache", engines=["espeak-ng"]))
    assert speech.available_engines() == []
    with pytest.raises(
        SpeechError, match=r"espeak-ng: 'espeak-ng' not found on PATH.*apt-get install espeak-ng"
    ):
        speech.synthesize(EN, "en")


def test_language_without_a_voice_is_an_engine_failure(tmp_path):
    speech = SpeechSynthesizer(SpeechSettings(cache_dir=tmp_path, engines=["espeak-ng"]))
    with pytest.raises(SpeechError, match="no espeak-ng voice configured for language 'fr'"):
        speech.synthesize("bonjour", "fr")


@pytest.mark.parametrize(
    ("text", "language", "message"),
    [
        ("  ", "en", "empty"),
        ("x" * 2001, "en", "max_chars"),
        ("hello", "e n", "language code"),
        ("hello", "", "language code"),
    ],
)
def test_bad_input_is_a_value_error(tmp_path, text, language, message):
    with pytest.raises(ValueError, match=message):
        SpeechSynthesizer(SpeechSettings(cache_dir=tmp_path)).synthesize(text, language)


@pytest.mark.parametrize(
    "bad",
    [
        {"engines": ["espeak-ng", "espeak-ng"]},
        {"engines": []},
        {"engines": ["festival"]},
        {"espeak_voices": {"vi": "vi; rm -rf /"}},
        {"espeak_voices": {"vi": "-w/tmp/x"}},
        {"gtts_timeout_s": 0},
        {"gtts_retries": -1},
    ],
)
def test_settings_are_validated(tmp_path, bad):
    with pytest.raises(ValueError):
        SpeechSettings(cache_dir=tmp_path, **bad)


def test_settings_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("VIGIL_HOME", str(tmp_path))
    settings = SpeechSettings()
    assert settings.cache_dir == tmp_path / "speech"
    assert settings.engines == ["gtts", "espeak-ng"]
    assert (settings.gtts_timeout_s, settings.gtts_retries) == (3.0, 1)
    assert settings.espeak_voices == {"vi": "vi", "en": "en-us"}


def test_a_failing_metrics_callback_does_not_silence_the_alert(tmp_path):
    def observe(engine, seconds, ok):
        raise RuntimeError("metrics down")

    speech = SpeechSynthesizer(SpeechSettings(cache_dir=tmp_path, engines=["espeak-ng"]), observe=observe)
    assert speech.synthesize(EN, "en").engine == "espeak-ng"


# ------------------------------------------------------------------------- audio checks


def test_mp3_and_wav_durations(tmp_path, mp3_audio):
    assert mp3_duration(mp3_audio) == pytest.approx(2.0, abs=0.15)
    assert mp3_duration(mp3_audio + mp3_audio) == pytest.approx(4.0, abs=0.3)  # gTTS joins streams
    assert mp3_duration(b"") is None and mp3_duration(b"<html>not audio</html>" * 50) is None
    not_wav = tmp_path / "x.wav"
    not_wav.write_bytes(mp3_audio)
    assert wav_duration(not_wav) is None and wav_duration(tmp_path / "missing.wav") is None


# ------------------------------------------------------------------------- playback


def _fake_player(folder: Path, name: str, body: str) -> None:
    folder.mkdir(exist_ok=True)
    script = folder / name
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)


def test_play_is_a_no_op_without_a_sound_device(tmp_path):
    wav = (
        SpeechSynthesizer(SpeechSettings(cache_dir=tmp_path, engines=["espeak-ng"])).synthesize(EN, "en").path
    )
    _fake_player(tmp_path / "bin", "aplay", f"touch {tmp_path}/played")
    assert not sound_device_available(tmp_path / "no-snd")
    assert play(wav, snd_dir=tmp_path / "no-snd", path_env=str(tmp_path / "bin")) is False
    snd = tmp_path / "snd"
    snd.mkdir()
    (snd / "controlC0").touch()
    (snd / "pcmC0D0c").touch()  # a capture device only
    assert play(wav, snd_dir=snd, path_env=str(tmp_path / "bin")) is False
    (snd / "pcmC0D0p").touch()
    assert play(wav, snd_dir=snd, path_env=str(tmp_path / "empty")) is False  # no player
    assert not (tmp_path / "played").exists()


def test_play_runs_in_the_background_and_is_bounded(tmp_path):
    wav = (
        SpeechSynthesizer(SpeechSettings(cache_dir=tmp_path, engines=["espeak-ng"])).synthesize(EN, "en").path
    )
    snd, bin_dir = tmp_path / "snd", tmp_path / "bin"
    snd.mkdir()
    (snd / "pcmC0D0p").touch()
    _fake_player(bin_dir, "aplay", f'sleep 1; echo "$@" > {tmp_path}/played')
    started = time.perf_counter()
    assert play(wav, snd_dir=snd, path_env=str(bin_dir)) is True
    assert time.perf_counter() - started < 0.5  # the caller is not blocked
    deadline = time.monotonic() + 5
    while not (tmp_path / "played").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (tmp_path / "played").read_text().split() == ["-q", str(wav)]
    # A player that never ends is killed at the timeout.
    _fake_player(bin_dir, "aplay", "exec sleep 30")
    started = time.perf_counter()
    assert play(wav, snd_dir=snd, path_env=str(bin_dir), timeout_s=0.5, wait=True) is True
    assert time.perf_counter() - started < 3
