"""The alerter's spoken alerts as files: the names its speech cache gives them and how they are
served. The alerter writes them (services/alerter/speech/); the API process serves them
(services/api/media.py) from the same folder, by name alone, so nothing here reaches outside it.
"""

from __future__ import annotations

import re
from pathlib import Path

# <engine>-<sha256 of what was spoken and how>.<the engine's format>
SPEECH_FILE_NAME = re.compile(r"^(?P<engine>gtts|espeak-ng)-[0-9a-f]{64}(?P<suffix>\.mp3|\.wav)$")
SPEECH_SUFFIXES = {"gtts": ".mp3", "espeak-ng": ".wav"}
SPEECH_CONTENT_TYPES = {"gtts": "audio/mpeg", "espeak-ng": "audio/wav"}


def cached_speech_file(cache_dir: Path, name: str) -> tuple[Path, str]:
    """The cached audio file named `name` (as on an alert) and its content type.

    Raises ValueError for anything but a cache file name (so a name that arrives over HTTP
    cannot reach outside the cache) and FileNotFoundError when it is not (or no longer) there.
    """
    match = SPEECH_FILE_NAME.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        raise ValueError(f"{name!r} is not a speech cache file name (<engine>-<sha256>.mp3|.wav)")
    engine = match["engine"]
    if SPEECH_SUFFIXES[engine] != match["suffix"]:
        raise ValueError(f"{name!r}: {engine} files end in {SPEECH_SUFFIXES[engine]}")
    path = Path(cache_dir) / name
    if not path.is_file():
        raise FileNotFoundError(f"no audio {name!r} in the speech cache")
    return path, SPEECH_CONTENT_TYPES[engine]
