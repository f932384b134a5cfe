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
from fractions import Fraction
from pathlib import Path

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

    source = vtest_avi()
    partial = target.with_suffix(".partial.mp4")
    max_frames = None if seconds is None else round(seconds * fps)
    with av.open(str(source)) as reader, av.open(str(partial), "w") as writer:
        stream = writer.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        if kbit_s is None:
            quality = {"crf": "23"}
        else:
            quality = {"b": f"{kbit_s}k", "maxrate": f"{kbit_s}k", "bufsize": f"{2 * kbit_s}k"}
        stream.options = {
            **quality,
            "preset": "veryfast",
            "g": str(gop_frames),
            "keyint_min": str(gop_frames),
            "sc_threshold": "0",  # keyframes on the clock only, as cameras do
            "bf": "0",
        }
        written = 0
        for frame in reader.decode(video=0):
            if max_frames is not None and written >= max_frames:
                break
            scaled = frame.reformat(width=width, height=height, format="yuv420p")
            scaled.pts, scaled.time_base = written, Fraction(1, fps)
            for packet in stream.encode(scaled):
                writer.mux(packet)
            written += 1
        for packet in stream.encode():
            writer.mux(packet)
    partial.replace(target)
    return target


if __name__ == "__main__":
    try:
        print(vtest_avi())
    except MediaUnavailableError as error:
        sys.exit(f"vigil.media: {error}")
