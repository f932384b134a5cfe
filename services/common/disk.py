"""Refuse to start on a nearly full disk, rather than die later mid-write.

A service that runs out of disk fails where it happens to write: Milvus lite mid-flush, the
broker's object store mid-batch, a thumbnail half written. `vigil up` checks the folders it
will write to before starting anything and refuses, naming each folder, its filesystem's free
space and the floor, when less than VIGIL_MIN_FREE_DISK_MIB (default 2048) is free there.
Retention (the broker's store keeper, the detector's) keeps the disk bounded after that.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from vigil.errors import VigilError

DEFAULT_MIN_FREE_MIB = 2048


class DiskFullError(VigilError):
    """Too little free disk to start; the message names the folders and the figures."""


def min_free_mib() -> int:
    raw = os.environ.get("VIGIL_MIN_FREE_DISK_MIB", str(DEFAULT_MIN_FREE_MIB))
    try:
        value = int(raw)
    except ValueError:
        raise VigilError(f"VIGIL_MIN_FREE_DISK_MIB must be a whole number of MiB, not {raw!r}") from None
    if value < 0:
        raise VigilError(f"VIGIL_MIN_FREE_DISK_MIB must be 0 or more, not {value}")
    return value


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_free_disk(folders: Iterable[Path], floor_mib: int | None = None) -> None:
    """DiskFullError when a filesystem holding one of `folders` has under `floor_mib` free."""
    floor_mib = min_free_mib() if floor_mib is None else floor_mib
    by_device: dict[int, tuple[Path, list[Path]]] = {}
    for folder in folders:
        existing = _existing_ancestor(Path(folder))
        device = existing.stat().st_dev
        by_device.setdefault(device, (existing, []))[1].append(Path(folder))
    short = []
    for existing, named in by_device.values():
        free_mib = shutil.disk_usage(existing).free // 2**20
        if free_mib < floor_mib:
            short.append(f"{free_mib} MiB free for {', '.join(str(f) for f in named)}")
    if short:
        raise DiskFullError(
            f"not starting: the disk is nearly full ({'; '.join(short)}; Vigil needs at least "
            f"{floor_mib} MiB there). Free some space, move VIGIL_HOME (or the broker, Milvus, "
            "thumbnail and speech folders) to a larger disk, or lower the retention "
            "(VIGIL_KAFKA_*_RETENTION_MS, detector retention); VIGIL_MIN_FREE_DISK_MIB sets the floor."
        )
