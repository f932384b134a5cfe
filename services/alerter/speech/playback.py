"""Playing an audio file on the local sound device, when there is one and a player is installed.

The player runs in its own session in the background and is killed after a timeout, so a
stuck player never holds the alerter up.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from pathlib import Path

log = logging.getLogger(__name__)

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
