"""Alerter bench, speech part: `SpeechSynthesizer.synthesize` times in one process (bench/alerter.py
`--role speech`; its docstring says what is timed).

espeak-ng on distinct alert sentences (each a cache miss), the same sentences again (cache hits),
and the default engines' gTTS fallback as the network is here and with a network that never
answers (a local proxy that accepts and stays silent).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import random
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

LANGUAGES = ("vi", "en")
# Sentences of the speech part: query texts and camera display names per language.
SPEECH_QUERIES = {
    "vi": (
        "một chiếc xe máy",
        "một người đàn ông mặc áo đỏ",
        "một con chó",
        "người trèo qua hàng rào",
        "một chiếc ô tô màu trắng",
        "khói hoặc lửa",
        "một người đội mũ bảo hiểm",
        "một chiếc ba lô bị bỏ lại",
    ),
    "en": (
        "a motorcycle",
        "a man wearing a red shirt",
        "a dog",
        "a person climbing the fence",
        "a white car",
        "smoke or fire",
        "a person wearing a helmet",
        "an abandoned backpack",
    ),
}
SPEECH_CAMERAS = {
    "vi": ("cổng chính", "bãi xe B", "kho 2", "sảnh tầng 1", "cam-3", "cam-12", "hành lang phía đông"),
    "en": ("Gate north", "Parking B", "Warehouse 2", "Lobby", "cam-3", "cam-12", "East corridor"),
}
PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY")


def sentences(language: str, count: int, seed: int) -> list[str]:
    """`count` distinct alert sentences in `language` (query x camera x severity, shuffled)."""
    from vigil.pipelines.phrases import SEVERITIES, alert_phrase

    combos = list(itertools.product(SPEECH_QUERIES[language], SPEECH_CAMERAS[language], SEVERITIES))
    random.Random(seed).shuffle(combos)
    if count > len(combos):
        raise ValueError(f"at most {len(combos)} distinct {language} sentences")
    return [alert_phrase(what, camera, language, severity) for what, camera, severity in combos[:count]]


class _Failures(logging.Handler):
    """Keeps the speech module's "speech engine gtts failed: ..." lines."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("speech engine gtts failed"):
            self.lines.append(message)


class _SilentProxy:
    """A TCP server on loopback that accepts connections, reads, and never answers."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.held.append(connection)  # kept open, never read from or written to

    def close(self) -> None:
        self.server.close()
        for connection in self.held:
            connection.close()


@contextlib.contextmanager
def _silent_network() -> Iterator[None]:
    """Every HTTPS request of this process goes to a `_SilentProxy` until the block ends."""
    proxy = _SilentProxy()
    saved = {name: os.environ.get(name) for name in PROXY_VARIABLES}
    try:
        os.environ["https_proxy"] = os.environ["HTTPS_PROXY"] = f"http://127.0.0.1:{proxy.port}"
        os.environ.pop("no_proxy", None)
        os.environ.pop("NO_PROXY", None)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        proxy.close()


def _gtts_fallback(cache_dir: Path, texts: list[str], language: str, failures: _Failures) -> dict:
    """The first alert of a fresh synthesizer with the default engines, then the next ones."""
    from vigil.services.alerter.speech import SpeechSettings, SpeechSynthesizer

    attempts: list[tuple[str, float, bool]] = []
    synthesizer = SpeechSynthesizer(
        SpeechSettings(cache_dir=cache_dir), observe=lambda engine, s, ok: attempts.append((engine, s, ok))
    )
    assert synthesizer.settings.engines == ["gtts", "espeak-ng"]
    before = len(failures.lines)
    results = [synthesizer.synthesize(text, language) for text in texts]
    gtts_tries = [s for engine, s, ok in attempts if engine == "gtts"]
    return {
        "first_s": results[0].synthesis_s,
        "next_s": [r.synthesis_s for r in results[1:]],
        "engines": sorted({r.engine for r in results}),
        "gtts_tried": len(gtts_tries),  # the first alert only, if the cool-down works
        "gtts_failed_after_s": gtts_tries[0] if gtts_tries else None,
        "gtts_ok": any(ok for engine, _, ok in attempts if engine == "gtts"),
        "failure": failures.lines[before][:400] if len(failures.lines) > before else None,
    }


def _keep_gtts_failures() -> _Failures:
    """The speech module's log lines go to a `_Failures` (and nowhere else)."""
    failures = _Failures()
    speech_log = logging.getLogger("vigil.services.alerter.speech")
    speech_log.addHandler(failures)
    speech_log.setLevel(logging.INFO)
    speech_log.propagate = False
    return failures


def _espeak_misses(espeak, timed: dict[str, list[str]], count: int) -> dict[str, list[dict]]:
    """Each timed sentence spoken once by espeak-ng (a cache miss), the languages interleaved."""
    rows: dict[str, list[dict]] = {language: [] for language in LANGUAGES}
    for i in range(count):
        for language in LANGUAGES:
            spoken = espeak.synthesize(timed[language][i], language)
            assert not spoken.cached and spoken.engine == "espeak-ng"
            rows[language].append(
                {
                    "synthesis_s": spoken.synthesis_s,
                    "audio_s": spoken.duration_s,
                    "chars": len(timed[language][i]),
                }
            )
    return rows


def _cache_hits(espeak, timed: dict[str, list[str]], count: int) -> list[float]:
    """Each timed sentence again: the file is there, nothing is spoken."""
    hits = []
    for i in range(count):
        for language in LANGUAGES:
            again = espeak.synthesize(timed[language][i], language)
            assert again.cached
            hits.append(again.synthesis_s)
    return hits


def measure_speech(count: int, gtts_next: int, seed: int) -> dict:
    from vigil.services.alerter.speech import SpeechSettings, SpeechSynthesizer

    failures = _keep_gtts_failures()
    texts = {language: sentences(language, count + 1 + 2 * (gtts_next + 1), seed) for language in LANGUAGES}
    result: dict = {"espeak": {}, "cache_hit_s": [], "gtts": {}}
    with tempfile.TemporaryDirectory(prefix="vigil-bench-speech-") as tmp_name:
        tmp = Path(tmp_name)
        espeak = SpeechSynthesizer(SpeechSettings(cache_dir=tmp / "espeak", engines=["espeak-ng"]))
        timed = {language: texts[language][1 : count + 1] for language in LANGUAGES}
        for language in LANGUAGES:  # untimed: espeak-ng's voice data into the page cache
            espeak.synthesize(texts[language][0], language)
        rows = _espeak_misses(espeak, timed, count)
        result["cache_hit_s"] = _cache_hits(espeak, timed, count)
        result["espeak"] = rows
        # gTTS then espeak-ng: as the network is here, then with a network that never answers.
        rest = {language: texts[language][count + 1 :] for language in LANGUAGES}
        half = gtts_next + 1
        result["gtts"]["here"] = _gtts_fallback(tmp / "gtts-here", rest["vi"][:half], "vi", failures)
        with _silent_network():
            result["gtts"]["silent"] = _gtts_fallback(tmp / "gtts-silent", rest["vi"][half:], "vi", failures)
    return result
