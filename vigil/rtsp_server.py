"""A real RTSP camera for the tests, the demo and the benchmarks: a video file served with gst-rtsp-server.

Run with the system interpreter (`/usr/bin/python3`), which has the GStreamer bindings (`gi`);
the project's virtual environment does not. The file is decoded, scaled, re-timed and encoded
the way an IP camera streams: H.264 (x264, zerolatency, no B-frames) with a keyframe every
`--gop-s` seconds, paced in real time by the RTSP server's clock. Each client gets its own
pipeline starting at the beginning of the file (looped when --loop is given).

    /usr/bin/python3 vigil/rtsp_server.py --media var/media/vtest.avi --port 8554 --mount /cam

Prints one line "READY rtsp://127.0.0.1:PORT/MOUNT" on stdout once clients can connect;
SIGTERM/SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def copy_line(media: Path) -> str:
    """An H.264 MP4 sent as it is (no re-encoding): the stream a benchmark measured on disk."""
    return (
        f'( filesrc location="{media}" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )'
    )


def launch_line(media: Path, width: int, height: int, fps: int, gop_frames: int, loop: bool) -> str:
    # multifilesrc with loop=true re-reads the file from the start at EOF; the demuxer sees
    # one endless stream. filesrc ends the stream (the client sees the camera end).
    source = f'multifilesrc location="{media}" loop=true' if loop else f'filesrc location="{media}"'
    return (
        f"( {source} ! decodebin ! videoconvert ! videoscale ! videorate "
        f"! video/x-raw,format=I420,width={width},height={height},framerate={fps}/1 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop_frames} bframes=0 "
        f"bitrate=800 threads=1 "
        f"! video/x-h264,profile=constrained-baseline "
        f"! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--media", type=Path, required=True, help="video file to serve")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mount", default="/cam", help="path of the stream, e.g. /cam")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--gop-s", type=float, default=1.0, help="seconds between keyframes")
    parser.add_argument("--loop", action="store_true", help="restart the file at its end")
    parser.add_argument(
        "--copy", action="store_true", help="send an H.264 MP4's own stream (size, rate, GOP options ignored)"
    )
    args = parser.parse_args()
    if not args.media.is_file():
        sys.exit(f"rtsp_server: no such media file: {args.media}")

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    gop_frames = max(1, round(args.gop_s * args.fps))
    if args.copy:
        factory.set_launch(copy_line(args.media.resolve()))
    else:
        factory.set_launch(
            launch_line(args.media.resolve(), args.width, args.height, args.fps, gop_frames, args.loop)
        )
    factory.set_shared(False)
    server.get_mount_points().add_factory(args.mount, factory)
    if server.attach(None) == 0:
        sys.exit(f"rtsp_server: cannot listen on 127.0.0.1:{args.port}")

    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    print(f"READY rtsp://127.0.0.1:{args.port}{args.mount}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
