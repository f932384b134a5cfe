"""The thumbnail folder: JPEG files on disk that the detector writes and the alerter serves.

Thumbnails are JPEG files under root/<camera_id>/<yyyy-mm-dd (UTC)>/<ts_ms>.jpg, referenced
from the detector's hits and frame index (services/detector/store/) by that relative path,
which `ThumbnailStore.path_for` resolves without ever leaving its root: a reference arrives
over HTTP by the API process (services/api/media.py), so it is checked before any file is touched.

Shared here, not in the detector, because two services use it: the detector writes and
forgets thumbnails, the alerter reads them. services/common/thumbnails.py draws boxes on the
JPEG before it is saved; it is pure (bytes in, bytes out) and stays apart from this I/O.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from vigil.errors import VigilError
from vigil.paths import var_dir
from vigil.services.common.contract import check_id, check_ts_ms
from vigil.services.common.settings import EnvironmentSettings
from vigil.services.common.thumbnails import JPEG_MAGIC

# <camera_id>/<yyyy-mm-dd>/<ts_ms>.jpg; the camera part is the contract's ID_PATTERN, whose
# first character cannot be '.', so '.' and '..' never match a path segment.
REFERENCE_RE = re.compile(
    r"^(?P<camera_id>[A-Za-z0-9][A-Za-z0-9._-]{0,127})/(?P<day>\d{4}-\d{2}-\d{2})/(?P<ts_ms>\d{1,16})\.jpg$"
)
# datetime cannot represent years past 9999.
_MAX_TS_MS = 253_402_300_799_999


class ThumbnailError(VigilError):
    """A thumbnail cannot be found or named as asked; the message says which and why."""


class InvalidThumbnailReferenceError(ThumbnailError):
    """A thumbnail reference that is malformed or points outside the thumbnail root."""


class ThumbnailNotFoundError(ThumbnailError):
    """A well-formed thumbnail reference with no file behind it."""


def default_thumbnails_dir() -> Path:
    """<VIGIL_HOME>/thumbnails: where thumbnails go unless VIGIL_MILVUS_THUMBNAILS_DIR says otherwise."""
    return var_dir() / "thumbnails"


class ThumbnailSettings(EnvironmentSettings):
    """The thumbnail folder alone (environment: VIGIL_MILVUS_THUMBNAILS_DIR), for a service
    that reads thumbnails without opening the detector's store (the alerter). The detector's
    StoreSettings reads the same variable into its own `thumbnails_dir`."""

    describes = "thumbnail"

    model_config = SettingsConfigDict(env_prefix="VIGIL_MILVUS_", extra="forbid", validate_default=True)

    thumbnails_dir: Path = Field(default_factory=default_thumbnails_dir)


def _utc_day(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def thumbnail_reference(camera_id: str, ts_ms: int) -> str:
    """The reference `ThumbnailStore.save(camera_id, ts_ms, ...)` returns: known before (or
    without) saving, so a hit can name its peak frame's thumbnail deterministically."""
    return f"{camera_id}/{_utc_day(ts_ms)}/{ts_ms}.jpg"


class ThumbnailStore:
    """JPEG thumbnails under root/<camera_id>/<yyyy-mm-dd (UTC)>/<ts_ms>.jpg.

    References are relative paths that `path_for` checks before resolving, so a reference that
    arrives over HTTP cannot reach a file outside the root.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def save(self, camera_id: str, ts_ms: int, jpeg: bytes) -> str:
        """Write the thumbnail atomically (temp file, fsync, rename); return its reference."""
        check_id("camera_id", camera_id)
        check_ts_ms("ts_ms", ts_ms)
        if ts_ms > _MAX_TS_MS:
            raise ValueError(f"ts_ms {ts_ms} is past the year 9999")
        if not jpeg.startswith(JPEG_MAGIC):
            raise ValueError(f"thumbnail for {camera_id} at {ts_ms} is not a JPEG (starts with {jpeg[:4]!r})")
        reference = thumbnail_reference(camera_id, ts_ms)
        target = self.root / reference
        target.parent.mkdir(parents=True, exist_ok=True)
        # The temp file lives in the target's folder so os.replace is an atomic rename: a
        # reader (or a crash) sees the old file or the new one, never half of one.
        descriptor, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{ts_ms}.", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as temp_file:
                temp_file.write(jpeg)
                temp_file.flush()
                # The hit that references this file becomes durable right after; so must the file.
                os.fsync(temp_file.fileno())
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        return reference

    def path_for(self, reference: str) -> Path:
        """The file behind a reference from `save`; refuses anything else.

        Raises InvalidThumbnailReferenceError for a malformed reference or one that resolves
        outside the root (absolute paths, '..', symlinks pointing out), ThumbnailNotFoundError
        when the reference is well-formed but no file is there.
        """
        _check_reference(reference)
        root = self.root.resolve()
        # The pattern already excludes '..' and absolute paths; resolving catches symlinks
        # (a camera folder or file linked to somewhere else).
        path = _inside(root, (root / reference).resolve(), reference)
        if not path.is_file():
            raise ThumbnailNotFoundError(f"no thumbnail {reference!r} under {self.root}")
        return path

    def read(self, reference: str) -> bytes:
        return self.path_for(reference).read_bytes()

    def delete(self, references: Sequence[str]) -> int:
        """Delete these thumbnails (a missing one is not an error) and day folders left empty;
        returns how many files went. Checked as `path_for` checks, each day folder resolved
        once: retention deletes tens of thousands at a time (frames of one time slice)."""
        root = self.root.resolve()
        folders: dict[Path, Path] = {}  # day folder as referenced -> as resolved
        deleted = 0
        for reference in references:
            match = _check_reference(reference)
            referenced = root / match["camera_id"] / match["day"]
            if referenced not in folders:
                folders[referenced] = referenced.resolve()
            folder = _inside(root, folders[referenced], reference)
            with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
                (folder / reference.rsplit("/", 1)[1]).unlink()
                deleted += 1
        for folder in folders.values():
            with contextlib.suppress(OSError):  # not empty yet: other thumbnails of that day
                folder.rmdir()
        return deleted


def _check_reference(reference: str) -> re.Match[str]:
    """The parts of a reference that `ThumbnailStore.save` could have returned;
    InvalidThumbnailReferenceError for anything else."""
    match = REFERENCE_RE.fullmatch(reference) if isinstance(reference, str) else None
    if match is None:
        raise InvalidThumbnailReferenceError(
            f"thumbnail reference {reference!r} is not of the form <camera_id>/<yyyy-mm-dd>/<ts_ms>.jpg"
        )
    ts_ms = int(match["ts_ms"])
    if ts_ms > _MAX_TS_MS or _utc_day(ts_ms) != match["day"]:
        raise InvalidThumbnailReferenceError(
            f"thumbnail reference {reference!r}: the day does not match the timestamp {ts_ms}"
        )
    return match


def _inside(root: Path, resolved: Path, reference: str) -> Path:
    """`resolved` itself, when it lies under the (resolved) root."""
    if not resolved.is_relative_to(root):
        raise InvalidThumbnailReferenceError(
            f"thumbnail reference {reference!r} leads outside the thumbnail directory"
        )
    return resolved
