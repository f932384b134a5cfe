"""Real video for the demo, the tests and the benchmarks, cached under <VIGIL_HOME>/media (var/media).

vtest.avi: OpenCV's sample of pedestrians in a hall (768x576, 10 frames/s, 79.5 s, MS-MPEG4),
from Debian's opencv-doc package (Apache-2.0/BSD; ~95 MB download, only this 8 MB file kept).
Derived H.264 clips (a camera's codec with a known keyframe interval) are encoded from it with
PyAV's libx264 and cached beside it.

    python -m vigil.media        # `make setup`: fetch once, print the path
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from vigil.models.encoder import sha256_file
from vigil.paths import var_dir

VTEST_MEMBER = "./usr/share/doc/opencv-doc/examples/data/vtest.avi"
VTEST_SHA256 = "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf"
INSTALLED_VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


class MediaUnavailableError(RuntimeError):
    """The sample video could not be fetched; the message says how to provide it."""


def media_dir() -> Path:
    return var_dir() / "media"


def vtest_avi() -> Path:
    """Path of vtest.avi, fetched from Debian's opencv-doc on first use."""
    target = media_dir() / "vtest.avi"
    if target.is_file() and sha256_file(target) == VTEST_SHA256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    if INSTALLED_VTEST.is_file() and sha256_file(INSTALLED_VTEST) == VTEST_SHA256:
        shutil.copyfile(INSTALLED_VTEST, target)
        return target
    with tempfile.TemporaryDirectory(prefix="vigil-media-") as scratch:
        try:
            subprocess.run(
                ["apt-get", "download", "opencv-doc"], cwd=scratch, check=True, capture_output=True, text=True
            )
        except (OSError, subprocess.CalledProcessError) as error:
            detail = getattr(error, "stderr", "") or str(error)
            raise MediaUnavailableError(
                f"cannot download Debian's opencv-doc for vtest.avi ({detail.strip()}); "
                f"copy vtest.avi (sha256 {VTEST_SHA256}) to {target} yourself"
            ) from None
        package = next(Path(scratch).glob("opencv-doc_*.deb"))
        tar_stream = subprocess.run(
            ["dpkg-deb", "--fsys-tarfile", str(package)], check=True, capture_output=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(tar_stream)) as archive:
            member = archive.extractfile(VTEST_MEMBER)
            if member is None:
                raise MediaUnavailableError(f"{package.name} has no {VTEST_MEMBER}")
            partial = target.with_suffix(".partial")
            partial.write_bytes(member.read())
    if sha256_file(partial) != VTEST_SHA256:
        partial.unlink()
        raise MediaUnavailableError(
            f"vtest.avi from opencv-doc does not have the expected sha256 {VTEST_SHA256}"
        )
    partial.replace(target)
    return target


@contextmanager
def _h264_file(
    target: Path, width: int, height: int, fps: int, options: dict[str, str]
) -> Iterator[Callable[[Any], None]]:
    """An H.264 MP4 writer (libx264, yuv420p): yields write(frame), each frame shown 1/fps s.
    Written under a temporary name and renamed to `target` only once complete, so a cached
    clip is never a half-written one."""
    import av  # noqa: PLC0415 - only the clip makers need PyAV

    partial = target.with_suffix(".partial.mp4")
    with av.open(str(partial), "w") as writer:
        stream = writer.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.options = options
        written = 0

        def write(frame: Any) -> None:
            nonlocal written
            frame.pts, frame.time_base = written, Fraction(1, fps)
            for packet in stream.encode(frame):
                writer.mux(packet)
            written += 1

        yield write
        for packet in stream.encode():
            writer.mux(packet)
    partial.replace(target)


def h264_clip(
    width: int, height: int, fps: int, gop_s: float, seconds: float | None = None, kbit_s: int | None = None
) -> Path:
    """vtest.avi as a camera would send it: H.264 (no B-frames), width x height, a keyframe
    every gop_s seconds, each source frame shown for 1/fps s (so at fps > 10 people walk
    faster: every frame is still a distinct real picture, none duplicated), at kbit_s
    (capped, as cameras do) or else constant quality (CRF 23). Cached."""
    gop_frames = max(1, round(gop_s * fps))
    length = "full" if seconds is None else f"{seconds:g}s"
    rate = "crf23" if kbit_s is None else f"{kbit_s}k"
    target = media_dir() / f"vtest-{width}x{height}-{fps}fps-gop{gop_frames}-{rate}-{length}.mp4"
    if target.is_file():
        return target
    import av  # noqa: PLC0415 - only the clip makers need PyAV

    max_frames = None if seconds is None else round(seconds * fps)
    if kbit_s is None:
        quality = {"crf": "23"}
    else:
        quality = {"b": f"{kbit_s}k", "maxrate": f"{kbit_s}k", "bufsize": f"{2 * kbit_s}k"}
    options = {
        **quality,
        "preset": "veryfast",
        "g": str(gop_frames),
        "keyint_min": str(gop_frames),
        "sc_threshold": "0",  # keyframes on the clock only, as cameras do
        "bf": "0",
    }
    with av.open(str(vtest_avi())) as reader, _h264_file(target, width, height, fps, options) as write:
        for written, frame in enumerate(reader.decode(video=0)):
            if max_frames is not None and written >= max_frames:
                break
            write(frame.reformat(width=width, height=height, format="yuv420p"))
    return target


# Real photos (scikit-image's) pasted into real footage for known spans: events whose true
# times are known, for the demo, the end-to-end tests and the benchmarks.
# (photo name, first second shown, first second no longer shown)
DEMO_EVENTS: tuple[tuple[str, float, float], ...] = (("cat", 12.0, 20.0), ("motorcycle", 34.0, 42.0))
EVENT_PHOTOS = ("cat", "motorcycle", "astronaut", "coffee", "rocket")


def event_photo(name: str, width: int) -> np.ndarray:
    """One of EVENT_PHOTOS as RGB uint8, resized to `width` pixels wide."""
    from PIL import Image
    from skimage import data  # noqa: PLC0415 - the dev extra; only clip makers need it

    loaders = {
        "cat": data.chelsea,
        "motorcycle": lambda: data.stereo_motorcycle()[1],
        "astronaut": data.astronaut,
        "coffee": data.coffee,
        "rocket": data.rocket,
    }
    if name not in loaders:
        raise ValueError(f"unknown event photo {name!r}; choose from {', '.join(EVENT_PHOTOS)}")
    image = Image.fromarray(np.asarray(loaders[name]())).convert("RGB")
    height = round(image.height * width / image.width)
    return np.asarray(image.resize((width, height), Image.Resampling.LANCZOS))


def event_clip(
    events: tuple[tuple[str, float, float], ...] = DEMO_EVENTS,
    seconds: float = 60.0,
    fps: int = 10,
    keyframe_every_s: float | None = 1.0,
) -> Path:
    """vtest.avi (768x576) for `seconds` with each event's photo pasted over the right part of
    the hall (45 % of the width) from its start to its end second; H.264, no B-frames, a
    keyframe every `keyframe_every_s` (None: x264's own choice). Cached under a name that
    spells out the events."""
    spans = "-".join(f"{name}{start:g}to{end:g}" for name, start, end in events)
    gop = (
        ""
        if keyframe_every_s == 1.0
        else f"-gop{'auto' if keyframe_every_s is None else f'{keyframe_every_s:g}s'}"
    )
    target = media_dir() / f"events-{spans}-{seconds:g}s-{fps}fps{gop}.mp4"
    if target.is_file():
        return target
    import av  # noqa: PLC0415

    photos = {name: event_photo(name, 345) for name, _, _ in events}
    options = {"crf": "23", "preset": "veryfast", "bf": "0"}
    if keyframe_every_s is not None:
        options["g"] = str(max(1, round(keyframe_every_s * fps)))
    frames = round(seconds * fps)
    with av.open(str(vtest_avi())) as reader, _h264_file(target, 768, 576, fps, options) as write:
        written = 0
        while written < frames:
            reader.seek(0)  # footage shorter than the clip loops
            for frame in reader.decode(video=0):
                if written >= frames:
                    break
                pixels = frame.to_ndarray(format="rgb24")
                t = written / fps
                for name, start, end in events:
                    if start <= t < end:
                        photo = photos[name]
                        top, left = 150, 768 - 40 - photo.shape[1]
                        pixels[top : top + photo.shape[0], left : left + photo.shape[1]] = photo
                write(av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuv420p"))
                written += 1
    return target


if __name__ == "__main__":
    try:
        print(vtest_avi())
        print(event_clip())
    except MediaUnavailableError as error:
        sys.exit(f"vigil.media: {error}")
