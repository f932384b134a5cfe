"""Spoken alerts: text to an audio file, online (Google TTS) or offline (espeak-ng), cached.

    speech = SpeechSynthesizer(SpeechSettings(cache_dir=Path("var/speech")))
    result = speech.synthesize(alert_phrase("một chiếc xe máy", "cam-3", "vi", "critical"), "vi")
    speech.play(result.path)          # False (and nothing happens) without a sound device

Engines are tried in `engines` order (default gTTS, then espeak-ng):

- gtts: Google Translate's TTS endpoint through the `gTTS` package; natural voices, MP3, needs
  the internet. Every attempt is bounded by `gtts_timeout_s`: the timeout goes to requests
  (gTTS >= 2.3 takes `timeout=`) AND the attempt runs in a worker thread that is abandoned at
  the deadline, because requests' timeout is per socket operation (a slow trickle, a DNS
  lookup or a long text sent in several requests can each outlast it). Failed attempts are
  retried `gtts_retries` times (tenacity, no wait), so gTTS costs at most
  gtts_timeout_s * (gtts_retries + 1) before the next engine speaks. After a failure gTTS is
  skipped for `gtts_cooldown_s`, so that on a site without internet every new phrase does
  not wait out the timeout first. The MP3 is collected in memory, checked (at least one MPEG
  audio frame) and only then written: a temporary file renamed into place, so neither a
  0-byte file nor a half-written one is ever left or returned.
- espeak-ng: the Debian package, offline, Vietnamese (`-v vi`) and English; WAV. Text goes on
  stdin as UTF-8 (`--stdin -b 1`), never through a shell or the argument list. The output is
  checked to be a non-empty RIFF/WAVE before it is renamed into the cache.

Cache: one file per (text, language, engine, engine parameters) named by the SHA-256 of those
(`<engine>-<sha256>.mp3|.wav`), so no text can reach outside `cache_dir`. A look-up returns
the first cached file in `engines` order (a cached gTTS recording is preferred over a cached
espeak-ng one) without synthesising anything; a cached espeak-ng recording is therefore kept
even once gTTS is reachable again (delete the cache to upgrade).

Metrics: pass `observe(engine, seconds, ok)`; it is called once per engine attempt that ran
(not for cache hits, nor for a gTTS skipped during its cool-down).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unicodedata
import wave
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_none

from vigil.errors import VigilError
from vigil.paths import var_dir

__all__ = [
    "ENGINES",
    "SpeechError",
    "SpeechResult",
    "SpeechSettings",
    "SpeechSynthesizer",
    "SpeechWarmer",
    "audio_duration",
    "find_player",
    "mp3_duration",
    "play",
    "sound_device_available",
    "wav_duration",
]

log = logging.getLogger(__name__)

Engine = Literal["gtts", "espeak-ng"]
ENGINES: tuple[Engine, ...] = ("gtts", "espeak-ng")
CONTENT_TYPES: dict[Engine, str] = {"gtts": "audio/mpeg", "espeak-ng": "audio/wav"}
_SUFFIXES: dict[Engine, str] = {"gtts": ".mp3", "espeak-ng": ".wav"}
_CACHE_VERSION = 1
_TMP_PREFIX = ".tmp-"
_STALE_TMP_S = 600.0  # a temporary file this old belongs to a process that died mid-write
_CACHE_NAME = re.compile(r"^(?P<engine>gtts|espeak-ng)-[0-9a-f]{64}(?P<suffix>\.mp3|\.wav)$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})*$")

Observer = Callable[[str, float, bool], None]


class SpeechError(VigilError):
    """No engine could speak a text; `failures` maps each engine tried to why it failed."""

    def __init__(self, language: str, failures: dict[str, str]) -> None:
        self.language = language
        self.failures = dict(failures)
        detail = "; ".join(f"{engine}: {why}" for engine, why in failures.items()) or "no engine configured"
        super().__init__(f"no speech engine could speak the {language!r} text ({detail})")


class _EngineFailure(Exception):
    """One engine failed for a reason worth stating in SpeechError (not retried)."""


class _Transient(_EngineFailure):
    """A failure a retry may cure (network, timeout)."""


class SpeechSettings(BaseModel):
    """How alerts are spoken. Durations are seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cache_dir: Path = Field(
        default_factory=lambda: var_dir() / "speech", description="audio files; default <VIGIL_HOME>/speech"
    )
    engines: list[Engine] = Field(
        default_factory=lambda: ["gtts", "espeak-ng"], min_length=1, description="tried in this order"
    )
    gtts_timeout_s: float = Field(3.0, gt=0, le=60, description="bound on one gTTS attempt")
    gtts_retries: int = Field(1, ge=0, le=5, description="gTTS attempts after the first")
    gtts_cooldown_s: float = Field(
        60.0, ge=0, description="after gTTS fails, skip it for this long (0 = try it every time)"
    )
    gtts_tld: str = Field(
        "com", pattern=r"^[a-z]{2,3}(?:\.[a-z]{2,3})?$", description="Google host: translate.google.<tld>"
    )
    espeak_binary: str = Field("espeak-ng", min_length=1, description="name on PATH or a path")
    espeak_voices: dict[str, str] = Field(
        default_factory=lambda: {"vi": "vi", "en": "en-us"}, description="language -> espeak-ng voice"
    )
    espeak_speed_wpm: int = Field(160, ge=80, le=450, description="espeak-ng -s (its default is 175)")
    espeak_timeout_s: float = Field(10.0, gt=0, le=120)
    max_chars: int = Field(2000, ge=1, description="longer texts are refused (AlertMessage.text's limit)")
    play_timeout_s: float = Field(60.0, gt=0, description="a player still running after this is killed")
    warm_up: bool = Field(
        True,
        description="speak each standing query's alert for each known camera ahead of time, in the "
        "background, so that a raised alert finds its audio cached",
    )

    @field_validator("engines")
    @classmethod
    def _distinct(cls, engines: list[Engine]) -> list[Engine]:
        if len(set(engines)) != len(engines):
            raise ValueError(f"engines must not repeat: {engines}")
        return engines

    @field_validator("espeak_voices")
    @classmethod
    def _voice_names(cls, voices: dict[str, str]) -> dict[str, str]:
        for language, voice in voices.items():
            if not _LANGUAGE.match(language):
                raise ValueError(f"espeak_voices: {language!r} is not a language code such as 'vi'")
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_+.-]*$", voice):
                raise ValueError(f"espeak_voices[{language!r}]: {voice!r} is not an espeak-ng voice name")
        return voices


@dataclass(frozen=True)
class SpeechResult:
    path: Path
    engine: Engine
    language: str
    content_type: str  # audio/mpeg (gtts) or audio/wav (espeak-ng)
    duration_s: float  # length of the audio
    synthesis_s: float  # wall time of this call (engines tried, or the cache look-up)
    cached: bool  # True: the file was already there, nothing was synthesised


# ----------------------------------------------------------------------------- audio checks


def wav_duration(path: Path) -> float | None:
    """Seconds of a valid, non-empty RIFF/WAVE file; None for anything else."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            f.seek(0)
            with wave.open(f) as w:
                frames, rate, channels = w.getnframes(), w.getframerate(), w.getnchannels()
    except (OSError, EOFError, wave.Error):
        return None
    if frames <= 0 or rate <= 0 or channels <= 0:
        return None
    return frames / rate


# MPEG audio layer III: bitrates (kbit/s) by index, sample rates by version.
_MP3_BITRATES = {
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2 and 2.5
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _id3_size(data: bytes, pos: int) -> int:
    if data[pos : pos + 3] != b"ID3" or len(data) < pos + 10:
        return 0
    size = 0
    for byte in data[pos + 6 : pos + 10]:
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if data[pos + 5] & 0x10 else 0
    return 10 + size + footer


def mp3_duration(data: bytes) -> float | None:
    """Seconds of MPEG layer III audio (ID3 tags skipped); None when no audio frame is found.

    Concatenated MP3 streams (gTTS joins one per ~100 characters of text) are summed.
    """
    pos, seconds, frames = 0, 0.0, 0
    while pos + 4 <= len(data):
        tag = _id3_size(data, pos)
        if tag:
            pos += tag
            continue
        b1, b2 = data[pos + 1], data[pos + 2]
        version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
        bitrate_index, rate_index = b2 >> 4, (b2 >> 2) & 3
        if data[pos] != 0xFF or b1 & 0xE0 != 0xE0 or version == 1 or layer != 1:
            if data[pos : pos + 3] == b"TAG":  # ID3v1 at the end
                break
            pos += 1  # resynchronise
            continue
        if bitrate_index in (0, 15) or rate_index == 3:
            pos += 1
            continue
        rate = _MP3_RATES[version][rate_index]
        bitrate = _MP3_BITRATES[1 if version == 3 else 2][bitrate_index] * 1000
        samples = 1152 if version == 3 else 576
        length = samples // 8 * bitrate // rate + ((b2 >> 1) & 1)
        if pos + length > len(data):  # a truncated last frame is not audio
            break
        seconds += samples / rate
        frames += 1
        pos += length
    return seconds if frames else None


def audio_duration(path: Path) -> float | None:
    """Seconds of a valid cached audio file (WAV or MP3, by suffix); None if invalid or missing."""
    if path.suffix == ".wav":
        return wav_duration(path)
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return mp3_duration(data)


# ------------------------------------------------------------------------------- playback

# Players by content type, best first; each entry is the argument list before the path.
_PLAYERS: dict[str, tuple[tuple[str, ...], ...]] = {
    "audio/wav": (("aplay", "-q"), ("paplay",), ("ffplay", "-nodisp", "-autoexit", "-loglevel", "quiet")),
    "audio/mpeg": (("ffplay", "-nodisp", "-autoexit", "-loglevel", "quiet"), ("mpg123", "-q"), ("paplay",)),
}


def sound_device_available(snd_dir: Path = Path("/dev/snd")) -> bool:
    """True when ALSA exposes a playback PCM device (/dev/snd/pcmC*D*p)."""
    try:
        return any(p.name.startswith("pcm") and p.name.endswith("p") for p in snd_dir.iterdir())
    except OSError:
        return False


def find_player(content_type: str, path_env: str | None = None) -> list[str] | None:
    """The command (without the file) of the first installed player for a content type."""
    for player in _PLAYERS.get(content_type, ()):
        executable = shutil.which(player[0], path=path_env)
        if executable:
            return [executable, *player[1:]]
    return None


def _reap(process: subprocess.Popen, timeout_s: float) -> None:
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        log.warning("audio player %s still running after %.0f s: killed", process.args[0], timeout_s)
        process.kill()
        process.wait()


def play(
    path: Path | str,
    *,
    timeout_s: float = 60.0,
    wait: bool = False,
    snd_dir: Path = Path("/dev/snd"),
    path_env: str | None = None,
) -> bool:
    """Play an audio file on the local sound device; False (a no-op) without device or player.

    Returns at once (the player runs in the background and is killed after `timeout_s`)
    unless `wait`, in which case it returns when the player ends, at most `timeout_s` later.
    True means a player was started, not that anyone heard it.
    """
    path = Path(path)
    content_type = "audio/wav" if path.suffix == ".wav" else "audio/mpeg"
    if not path.is_file() or not sound_device_available(snd_dir):
        return False
    command = find_player(content_type, path_env)
    if command is None:
        return False
    try:
        process = subprocess.Popen(
            [*command, str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as error:
        log.warning("could not start audio player %s: %s", command[0], error)
        return False
    if wait:
        _reap(process, timeout_s)
    else:
        threading.Thread(target=_reap, args=(process, timeout_s), name="vigil-play", daemon=True).start()
    return True


# ----------------------------------------------------------------------------- synthesis


def _clean_text(text: str, max_chars: int) -> str:
    cleaned = " ".join(unicodedata.normalize("NFC", text).split())
    if not cleaned:
        raise ValueError("nothing to speak: the text is empty")
    if len(cleaned) > max_chars:
        raise ValueError(f"text of {len(cleaned)} characters is longer than max_chars={max_chars}")
    return cleaned


def _clean_language(language: str) -> str:
    code = language.strip().lower() if isinstance(language, str) else ""
    if not _LANGUAGE.match(code):
        raise ValueError(f"{language!r} is not a language code such as 'vi' or 'en'")
    return code


def _atomic_write(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=_TMP_PREFIX, suffix=target.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class SpeechSynthesizer:
    """Text to a cached audio file through the first engine that works (see the module doc)."""

    def __init__(self, settings: SpeechSettings | None = None, observe: Observer | None = None) -> None:
        self.settings = settings if settings is not None else SpeechSettings()
        self._observe = observe
        self._lock = threading.Lock()
        self._gtts_failed_at: float | None = None
        self._gtts_last_error = ""
        self.settings.cache_dir.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temporaries()

    # -- public ---------------------------------------------------------------------------

    def synthesize(self, text: str, language: str) -> SpeechResult:
        """The audio for `text` in `language` ("vi", "en", ...): from the cache, else synthesised.

        Raises ValueError for an empty/too long text or a malformed language code, and
        SpeechError (naming every engine's failure) when no engine could speak it.
        """
        text = _clean_text(text, self.settings.max_chars)
        language = _clean_language(language)
        started = time.perf_counter()
        for engine in self.settings.engines:
            path = self.cache_path(text, language, engine)
            if not path.exists():
                continue
            duration = audio_duration(path)
            if duration is not None:
                return self._result(path, engine, language, duration, started, cached=True)
            # Corrupt (e.g. written by hand, or a disk that filled up): synthesise it again.
            log.warning("removing invalid cached audio %s", path)
            path.unlink(missing_ok=True)

        failures: dict[str, str] = {}
        for engine in self.settings.engines:
            if engine == "gtts" and (skip := self._gtts_cooling_down()):
                failures[engine] = skip
                continue
            path = self.cache_path(text, language, engine)
            attempt_started = time.perf_counter()
            synthesize = self._synthesize_gtts if engine == "gtts" else self._synthesize_espeak
            try:
                duration = synthesize(text, language, path)
            except (_EngineFailure, OSError) as error:  # OSError: the cache could not be written
                failures[engine] = str(error)
                self._record(engine, time.perf_counter() - attempt_started, False)
                if engine == "gtts":
                    with self._lock:
                        self._gtts_failed_at, self._gtts_last_error = time.monotonic(), str(error)
                log.info("speech engine %s failed: %s", engine, error)
                continue
            self._record(engine, time.perf_counter() - attempt_started, True)
            if engine == "gtts":
                with self._lock:
                    self._gtts_failed_at = None
            return self._result(path, engine, language, duration, started, cached=False)
        raise SpeechError(language, failures)

    def cache_path(self, text: str, language: str, engine: Engine) -> Path:
        """Where (text, language, engine and its parameters) is cached; a SHA-256 file name."""
        if engine == "gtts":
            params: dict[str, object] = {"tld": self.settings.gtts_tld}
        elif engine == "espeak-ng":
            params = {
                "voice": self.settings.espeak_voices.get(language),
                "speed": self.settings.espeak_speed_wpm,
            }
        else:
            raise ValueError(f"unknown speech engine {engine!r}; expected one of {ENGINES}")
        key = json.dumps(
            {"v": _CACHE_VERSION, "engine": engine, "language": language, "text": text, "params": params},
            ensure_ascii=False,
            sort_keys=True,
        )
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return self.settings.cache_dir / f"{engine}-{digest}{_SUFFIXES[engine]}"

    def cached_file(self, name: str) -> tuple[Path, str]:
        """The cached audio file named `name` (as on an alert) and its content type.

        Raises ValueError for anything but a cache file name (so a name that arrives over HTTP
        cannot reach outside the cache) and FileNotFoundError when it is not (or no longer) there.
        """
        match = _CACHE_NAME.fullmatch(name) if isinstance(name, str) else None
        if match is None:
            raise ValueError(f"{name!r} is not a speech cache file name (<engine>-<sha256>.mp3|.wav)")
        engine = match["engine"]
        if _SUFFIXES[engine] != match["suffix"]:
            raise ValueError(f"{name!r}: {engine} files end in {_SUFFIXES[engine]}")
        path = self.settings.cache_dir / name
        if not path.is_file():
            raise FileNotFoundError(f"no audio {name!r} in the speech cache")
        return path, CONTENT_TYPES[engine]

    def play(self, path: Path | str, *, wait: bool = False) -> bool:
        """Play a file on the local sound device if there is one (see `play`); False otherwise."""
        return play(path, timeout_s=self.settings.play_timeout_s, wait=wait)

    def available_engines(self) -> list[Engine]:
        """Configured engines that are installed (gTTS importable, espeak-ng on PATH); says
        nothing about the network."""
        available: list[Engine] = []
        for engine in self.settings.engines:
            if engine == "gtts":
                try:
                    import gtts  # noqa: F401
                except ImportError:
                    continue
            elif shutil.which(self.settings.espeak_binary) is None:
                continue
            available.append(engine)
        return available

    # -- engines --------------------------------------------------------------------------

    def _synthesize_gtts(self, text: str, language: str, target: Path) -> float:
        try:
            from gtts import gTTS
        except ImportError as error:
            raise _EngineFailure(f"gTTS is not installed ({error}); pip install gTTS") from error
        timeout = self.settings.gtts_timeout_s
        tld = self.settings.gtts_tld

        def attempt() -> bytes:
            box: dict[str, object] = {}

            def work() -> None:
                try:
                    buffer = io.BytesIO()
                    gTTS(text, lang=language, tld=tld, timeout=timeout).write_to_fp(buffer)
                    box["audio"] = buffer.getvalue()
                except BaseException as error:  # reported to the caller's thread
                    box["error"] = error

            # A daemon thread: at the deadline it is abandoned (requests' own timeout ends it
            # soon after); what it writes goes to its own buffer, never to the cache.
            worker = threading.Thread(target=work, name="vigil-gtts", daemon=True)
            worker.start()
            worker.join(timeout)
            if worker.is_alive():
                raise _Transient(f"no answer within {timeout:g} s")
            error = box.get("error")
            if isinstance(error, ValueError):  # e.g. a language gTTS does not speak
                raise _EngineFailure(f"{type(error).__name__}: {error}")
            if error is not None:
                # gTTSError says only "Failed to connect"; the requests error it replaced says why.
                cause = error.__cause__ or error.__context__
                why = f" ({type(cause).__name__}: {str(cause)[:200]})" if cause is not None else ""
                raise _Transient(f"{type(error).__name__}: {error}{why}")
            audio = box.get("audio")
            if not isinstance(audio, bytes) or not audio:
                raise _Transient("returned no audio (0 bytes)")
            return audio

        retrying = Retrying(
            stop=stop_after_attempt(self.settings.gtts_retries + 1),
            retry=retry_if_exception_type(_Transient),
            wait=wait_none(),
            reraise=True,
        )
        attempts = self.settings.gtts_retries + 1
        try:
            audio = retrying(attempt)
        except _Transient as error:
            raise _EngineFailure(f"{attempts} attempt(s) failed, the last: {error}") from error
        duration = mp3_duration(audio)
        if duration is None:
            raise _EngineFailure(f"returned {len(audio)} bytes that are not MP3 audio")
        _atomic_write(target, audio)
        return duration

    def _synthesize_espeak(self, text: str, language: str, target: Path) -> float:
        executable = shutil.which(self.settings.espeak_binary)
        if executable is None:
            raise _EngineFailure(
                f"{self.settings.espeak_binary!r} not found on PATH (Debian: apt-get install espeak-ng)"
            )
        voice = self.settings.espeak_voices.get(language)
        if voice is None:
            raise _EngineFailure(f"no espeak-ng voice configured for language {language!r} (espeak_voices)")
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=_TMP_PREFIX, suffix=".wav")
        os.close(fd)
        tmp = Path(tmp_name)
        command = [executable, "-v", voice, "-s", str(self.settings.espeak_speed_wpm), "-b", "1"]
        try:
            try:
                process = subprocess.run(
                    [*command, "-w", str(tmp), "--stdin"],
                    input=(text + "\n").encode("utf-8"),
                    capture_output=True,
                    timeout=self.settings.espeak_timeout_s,
                    check=False,
                )
            except subprocess.TimeoutExpired as error:
                raise _EngineFailure(f"no audio within {self.settings.espeak_timeout_s:g} s") from error
            except OSError as error:
                raise _EngineFailure(f"could not run {executable}: {error}") from error
            if process.returncode != 0:
                stderr = process.stderr.decode("utf-8", "replace").strip()[:300]
                raise _EngineFailure(f"voice {voice!r}: exit status {process.returncode}: {stderr}")
            duration = wav_duration(tmp)
            if duration is None:
                raise _EngineFailure(f"voice {voice!r}: wrote no valid WAV audio")
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
            return duration
        finally:
            tmp.unlink(missing_ok=True)

    # -- helpers --------------------------------------------------------------------------

    def _gtts_cooling_down(self) -> str:
        with self._lock:
            failed_at, last_error = self._gtts_failed_at, self._gtts_last_error
        if failed_at is None:
            return ""
        ago = time.monotonic() - failed_at
        if ago >= self.settings.gtts_cooldown_s:
            return ""
        cooldown = self.settings.gtts_cooldown_s
        return f"skipped: failed {ago:.0f} s ago ({last_error}); tried again {cooldown:g} s after a failure"

    def _record(self, engine: str, seconds: float, ok: bool) -> None:
        if self._observe is None:
            return
        try:
            self._observe(engine, seconds, ok)
        except Exception:  # a metrics bug must not silence an alert
            log.exception("speech metrics callback failed")

    def _result(
        self, path: Path, engine: Engine, language: str, duration: float, started: float, *, cached: bool
    ) -> SpeechResult:
        return SpeechResult(
            path=path,
            engine=engine,
            language=language,
            content_type=CONTENT_TYPES[engine],
            duration_s=duration,
            synthesis_s=time.perf_counter() - started,
            cached=cached,
        )

    def _remove_stale_temporaries(self) -> None:
        now = time.time()
        for leftover in self.settings.cache_dir.glob(f"{_TMP_PREFIX}*"):
            try:
                if now - leftover.stat().st_mtime > _STALE_TMP_S:
                    leftover.unlink()
            except OSError:
                pass


class SpeechWarmer:
    """Synthesises texts ahead of need, one at a time in a background thread, each (text,
    language) once per process; failures are logged and left for the alert itself to retry.

    So the first alert of a query on a camera does not wait for synthesis (a gTTS round trip
    can take a second); the alerter hands it each standing query's phrase for each camera it
    knows."""

    def __init__(self, synthesizer: SpeechSynthesizer) -> None:
        self.synthesizer = synthesizer
        self._wanted: set[tuple[str, str]] = set()
        # (text, language) to speak; an Event to set once everything before it is done; None to stop.
        self._queue: queue.SimpleQueue[tuple[str, str] | threading.Event | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="speech-warm-up", daemon=True)
        self._thread.start()

    def want(self, phrases: Iterable[tuple[str, str]]) -> int:
        """Queue each (text, language) not asked for before; returns how many were new."""
        new = 0
        for phrase in phrases:
            if phrase not in self._wanted:
                self._wanted.add(phrase)
                self._queue.put(phrase)
                new += 1
        return new

    def wait(self, timeout_s: float) -> bool:
        """Block until everything queued so far is done (tests, the benchmark); False on timeout."""
        marker = threading.Event()
        self._queue.put(marker)
        return marker.wait(timeout_s)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            text, language = item
            try:
                self.synthesizer.synthesize(text, language)
            except (SpeechError, ValueError, OSError) as error:
                log.info("could not speak ahead of time (the alert will try again): %s", error)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(30)
