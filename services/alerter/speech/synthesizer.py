"""Text to a cached audio file: the engines tried in order, the cache, gTTS's cool-down.

See the package's docstring (services/alerter/speech/__init__.py) for how each engine is
bounded and checked, and how the cache is named and looked up.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_none

from vigil.errors import VigilError
from vigil.services.alerter.speech.audio import audio_duration, mp3_duration, wav_duration
from vigil.services.alerter.speech.playback import play
from vigil.services.alerter.speech.settings import CONTENT_TYPES, ENGINES, LANGUAGE_RE, Engine, SpeechSettings
from vigil.services.common.speech_files import SPEECH_SUFFIXES, cached_speech_file

log = logging.getLogger(__name__)

_SUFFIXES: dict[str, str] = SPEECH_SUFFIXES
_CACHE_VERSION = 1
_TMP_PREFIX = ".tmp-"
_STALE_TMP_S = 600.0  # a temporary file this old belongs to a process that died mid-write

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


@dataclass(frozen=True)
class SpeechResult:
    path: Path
    engine: Engine
    language: str
    content_type: str  # audio/mpeg (gtts) or audio/wav (espeak-ng)
    duration_s: float  # length of the audio
    synthesis_s: float  # wall time of this call (engines tried, or the cache look-up)
    cached: bool  # True: the file was already there, nothing was synthesised


def _clean_text(text: str, max_chars: int) -> str:
    cleaned = " ".join(unicodedata.normalize("NFC", text).split())
    if not cleaned:
        raise ValueError("nothing to speak: the text is empty")
    if len(cleaned) > max_chars:
        raise ValueError(f"text of {len(cleaned)} characters is longer than max_chars={max_chars}")
    return cleaned


def _clean_language(language: str) -> str:
    code = language.strip().lower() if isinstance(language, str) else ""
    if not LANGUAGE_RE.match(code):
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
    """Text to a cached audio file through the first engine that works (see the package doc)."""

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
        return cached_speech_file(self.settings.cache_dir, name)

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
