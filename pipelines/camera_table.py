"""The cameras as folded from the "cameras" topic, which YAML cameras to seed it with, and what
ingest must start, restart and stop when the table changes. Pure (no I/O): tested without a broker.

- `CameraTable`: the last value per key wins, a tombstone (value None) deletes, a bad record is
  refused with its reason and changes nothing. Unlike the queries' table it remembers the ids it
  saw deleted: a camera deleted through the API is one the YAML file must not bring back.
- `cameras_to_seed`: the YAML file's cameras are the starting set. One is published when the
  topic has no record of its id at all (neither a camera nor a tombstone); otherwise the topic
  wins, since it holds what operators did through the API after the file was first read (an
  edit, a delete), which a restart with the old file must not undo.
- `plan_camera_changes`: from the cameras running and the cameras wanted (id -> the settings a
  reader runs on), which to start, restart (its settings changed) and stop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from vigil.errors import VigilError


class KeyedRecord(Protocol):
    """What the table reads of a "cameras" record (a consumed Kafka record has both)."""

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...


class Camera(Protocol):
    @property
    def camera_id(self) -> str: ...


CameraT = TypeVar("CameraT", bound=Camera)
Settings = TypeVar("Settings")


class CameraTable(Generic[CameraT]):
    """The cameras of the "cameras" topic; `decode` raises a VigilError naming what was wrong."""

    def __init__(self, decode: Callable[[bytes], CameraT]) -> None:
        self._decode = decode
        self._cameras: dict[str, CameraT] = {}
        self._deleted: set[str] = set()
        self.version = 0  # bumps on every change

    def apply(self, record: KeyedRecord) -> str | None:
        """Apply one record. Returns None, or why the record is bad (it changes nothing)."""
        if record.key is None:
            return "cameras record has no key (the key must be the camera_id)"
        try:
            camera_id = record.key.decode("utf-8")
        except UnicodeDecodeError:
            return "cameras record key is not UTF-8"
        if record.value is None:
            self._deleted.add(camera_id)
            if self._cameras.pop(camera_id, None) is not None:
                self.version += 1
            return None
        try:
            camera = self._decode(record.value)
        except VigilError as error:
            return str(error)
        if camera.camera_id != camera_id:
            return f"camera_id {camera.camera_id!r} does not match the record key {camera_id!r}"
        self._deleted.discard(camera_id)
        self._cameras[camera_id] = camera
        self.version += 1
        return None

    def get(self, camera_id: str) -> CameraT | None:
        return self._cameras.get(camera_id)

    def snapshot(self) -> dict[str, CameraT]:
        """A copy safe to iterate while another thread applies records."""
        return dict(self._cameras)

    def knows(self, camera_id: str) -> bool:
        """The topic has a record of this id: a camera, or a tombstone."""
        return camera_id in self._cameras or camera_id in self._deleted

    def __len__(self) -> int:
        return len(self._cameras)

    def __contains__(self, camera_id: object) -> bool:
        return camera_id in self._cameras


def cameras_to_seed(configured: Iterable[str], table: CameraTable[CameraT]) -> list[str]:
    """The configured (YAML) camera ids to publish: those the topic has no record of."""
    return [camera_id for camera_id in configured if not table.knows(camera_id)]


@dataclass(frozen=True)
class CameraChanges:
    start: tuple[str, ...] = ()  # wanted, not running
    restart: tuple[str, ...] = ()  # running with other settings than wanted
    stop: tuple[str, ...] = ()  # running, no longer wanted (deleted)

    def __bool__(self) -> bool:
        return bool(self.start or self.restart or self.stop)


def plan_camera_changes(running: Mapping[str, Settings], wanted: Mapping[str, Settings]) -> CameraChanges:
    """What to do so that the running cameras become the wanted ones; settings compare with ==,
    so a change that does not reach a reader's settings (a display name) restarts nothing."""
    return CameraChanges(
        start=tuple(sorted(camera_id for camera_id in wanted if camera_id not in running)),
        restart=tuple(
            sorted(
                camera_id
                for camera_id, settings in wanted.items()
                if camera_id in running and running[camera_id] != settings
            )
        ),
        stop=tuple(sorted(camera_id for camera_id in running if camera_id not in wanted)),
    )
