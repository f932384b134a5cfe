"""Ingest cost: CPU-seconds per camera-second at 1 frame/s on a 720p H.264 camera stream.

The camera is OpenCV's vtest.avi (real pedestrians) upscaled to 1280x720 and re-timed to
25 frames/s (each of its 795 real frames shown for 40 ms: 31.8 s of video, no duplicated
frames), encoded as IP cameras do: H.264 without B-frames, a keyframe every `--gop-s`
seconds (1 s, or 2 s, the common camera default), 2 Mbit/s at most (VBV-capped).

One measurement runs the ingest service's own camera thread (CameraWorker: demux, decode,
sample, JPEG-encode at the default quality, no resize needed at 720p; one decoder thread, the
default) over the whole clip as fast as it decodes, and divides the CPU time of this process
(time.process_time: every thread, user + system) by the video's duration. Publishing to Kafka
is not included (bench it with the broker). The median over `--runs` runs is reported.

    --source file   the clip from disk
    --source rtsp   the same H.264 stream served live by gst-rtsp-server (tests/ingest/
                    rtsp_server.py --copy, no re-encoding), read over RTSP/TCP in real time for
                    --seconds: adds the network receive and RTP depacketisation a real camera
                    costs (the server's CPU is its own process's)

Modes: full (decode every frame), full-no-loop-filter (the same with decoder_options
skip_loop_filter: all), keyframes (decode keyframes only: at a 2 s GOP that is 0.5 frame/s),
auto (what ingest does by default: keyframes only when the GOP is no longer than 1/fps).

    python bench/ingest.py                          # every case, one process each, JSON lines
    python bench/ingest.py --mode full --gop-s 1    # one case in this process, one JSON line
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WIDTH, HEIGHT, CAMERA_FPS, CAMERA_KBIT_S = 1280, 720, 25, 2000
MODES = {"full": False, "full-no-loop-filter": False, "keyframes": True, "auto": "auto"}
DECODER_OPTIONS = {"full-no-loop-filter": {"skip_loop_filter": "all"}}
CASES = [
    ("file", 1.0, "full"),
    ("file", 1.0, "full-no-loop-filter"),
    ("file", 1.0, "keyframes"),
    ("file", 1.0, "auto"),
    ("file", 2.0, "full"),
    ("file", 2.0, "keyframes"),
    ("file", 2.0, "auto"),
    ("rtsp", 1.0, "full"),
    ("rtsp", 1.0, "keyframes"),
    ("rtsp", 2.0, "auto"),
]


def camera_clip(gop_s: float) -> Path:
    from vigil.fixtures.media import h264_clip

    return h264_clip(WIDTH, HEIGHT, fps=CAMERA_FPS, gop_s=gop_s, kbit_s=CAMERA_KBIT_S)


def clip_facts(clip: Path) -> dict:
    import av

    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        seconds = float(stream.frames / stream.average_rate)
        bitrate = clip.stat().st_size * 8 / seconds
    return {"camera_seconds": seconds, "bitrate_mbit_s": round(bitrate / 1e6, 2)}


def run_camera(url: str, mode: str, fps: float, seconds: float | None, realtime: bool) -> dict:
    """Run one CameraWorker on `url`; returns its CPU time and frame counts."""
    from prometheus_client import CollectorRegistry

    from vigil.services.ingest.buffers import DropOldestQueue
    from vigil.services.ingest.camera import CameraWorker
    from vigil.services.ingest.config import parse_config
    from vigil.services.ingest.metrics import IngestMetrics

    camera = parse_config(
        {
            "cameras": [
                {
                    "id": "bench",
                    "url": url,
                    "fps": fps,
                    "keyframes_only": MODES[mode],
                    "decoder_options": DECODER_OPTIONS.get(mode, {}),
                    "realtime": realtime,
                }
            ]
        },
        environ={},
    ).cameras[0]
    registry = CollectorRegistry()
    worker = CameraWorker(camera, DropOldestQueue(1_000_000), IngestMetrics(registry))
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    worker.start()
    if seconds is None:
        worker.join()
    else:
        time.sleep(seconds)
        worker.request_stop()
        worker.join(timeout=10)
    cpu_s, wall_s = time.process_time() - cpu_started, time.perf_counter() - wall_started

    def count(name: str) -> int:
        return int(registry.get_sample_value(name, {"camera": "bench"}) or 0)

    return {
        "cpu_s": cpu_s,
        "wall_s": wall_s,
        "decoded": count("vigil_ingest_frames_decoded_total"),
        "sampled": count("vigil_ingest_frames_sampled_total"),
        # Time inside the decoder and the JPEG encoder (one thread each: ~ their CPU time).
        "decode_s": registry.get_sample_value("vigil_ingest_decode_seconds_sum") or 0.0,
        "encode_s": registry.get_sample_value("vigil_ingest_encode_seconds_sum") or 0.0,
    }


def measure(source: str, gop_s: float, mode: str, fps: float, runs: int, seconds: float) -> dict:
    clip = camera_clip(gop_s)
    facts = clip_facts(clip)
    server = None
    if source == "rtsp":
        from vigil.services.broker.local import free_loopback_port

        port = free_loopback_port()
        server = subprocess.Popen(
            [
                "/usr/bin/python3",
                str(ROOT / "vigil" / "fixtures" / "rtsp_server.py"),
                f"--media={clip}",
                f"--port={port}",
                "--copy",  # the very stream measured from disk, not a re-encoding
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        if not server.stdout.readline().startswith("READY"):
            raise SystemExit("the RTSP server did not start")
        url, camera_seconds = f"rtsp://127.0.0.1:{port}/cam", seconds
    else:
        url, camera_seconds = str(clip), facts["camera_seconds"]
    try:
        results = []
        for _ in range(runs):
            result = run_camera(url, mode, fps, seconds if source == "rtsp" else None, realtime=False)
            if source == "rtsp":
                result["camera_s"] = result["wall_s"]
            else:
                result["camera_s"] = camera_seconds
            results.append(result)
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=10)
    per_run = [r["cpu_s"] / r["camera_s"] for r in results]
    median = statistics.median(per_run)
    middle = results[per_run.index(median)] if median in per_run else results[0]
    return {
        "source": source,
        "resolution": f"{WIDTH}x{HEIGHT}",
        "camera_fps": CAMERA_FPS,
        "gop_s": gop_s,
        "bitrate_mbit_s": facts["bitrate_mbit_s"],
        "mode": mode,
        "sample_fps": fps,
        "runs": runs,
        "camera_s_per_run": round(middle["camera_s"], 2),
        "decoded_per_camera_s": round(middle["decoded"] / middle["camera_s"], 2),
        "published_per_camera_s": round(middle["sampled"] / middle["camera_s"], 2),
        "decode_s_per_camera_s": middle["decode_s"] / middle["camera_s"],
        "jpeg_s_per_camera_s": middle["encode_s"] / middle["camera_s"],
        "cpu_s_per_camera_s": median,
        "cpu_s_per_camera_s_range": [min(per_run), max(per_run)],
        "cameras_per_core": 1 / median,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", choices=("file", "rtsp"), default="file")
    parser.add_argument("--gop-s", type=float, choices=(1.0, 2.0))
    parser.add_argument("--mode", choices=sorted(MODES))
    parser.add_argument("--fps", type=float, default=1.0, help="frames per second published")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=15.0, help="rtsp: seconds of live video per run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # "camera bench: down (the file ended)" is expected
    if args.mode is not None and args.gop_s is not None:
        print(json.dumps(measure(args.source, args.gop_s, args.mode, args.fps, args.runs, args.seconds)))
        return
    for gop_s in (1.0, 2.0):
        camera_clip(gop_s)  # encode the clips once, outside any measurement
    for source, gop_s, mode in CASES:
        command = [sys.executable, __file__, f"--source={source}", f"--gop-s={gop_s}", f"--mode={mode}"]
        command += [f"--fps={args.fps}", f"--runs={3 if source == 'rtsp' else args.runs}"]
        command += [f"--seconds={args.seconds}"]
        output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
        print(output.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
