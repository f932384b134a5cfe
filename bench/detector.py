"""Detector: glass-to-hit latency, frames scored per CPU-second and memory, on the embedded default.

One case runs what `vigil up` runs, each part a process of its own: the local tansu broker,
`vigil ingest` reading N real RTSP cameras (gst-rtsp-server, vigil/fixtures/rtsp.py `RtspCamera`, one
server process per camera) at 1 frame/s, and the detector (`DetectorService` on the same config
file, Milvus lite in a temporary directory); the parent follows "hits" as
`vigil up` does. Camera phases (see CASES): "aligned" runs one ingest process for every camera,
as `vigil up` does; "independent" runs one per camera, started 1/N s apart.

Each camera streams OpenCV's vtest.avi (real pedestrians) at 1280x720 with a real photo pasted
in for 5 s every 10 s (vigil/fixtures/media.py `event_clip`, 60 s, looped: cat, coffee, astronaut, cat,
coffee, rocket), camera i shifted by (i + 0.5) * 10 / N s so that cameras do not all confirm at
the same instant; five standing queries (cat, cup of coffee, astronaut, rocket, and a motorcycle,
never shown). Latency needs hits; whether they are right is not measured here.

Encoders: "offline" (the embedded default here, real weights) and "clip-int8" (ViT-B-32 int8 with
random weights, bench/encoders.py's export): the CLIP case measures speed and memory only, since
random weights give no meaningful hits; it is how the int8 encoder's cameras per core is
measured end to end on a machine without CLIP weights.

The detector is `bench/detector.py --role detector`: `vigil detector`'s own code path
(DetectorServiceSettings.load, DetectorService.run), with its latency histograms wrapped so that each
value they observe is also kept exactly (the Prometheus buckets are too coarse for p99):

    glass to hit   vigil_detector_glass_to_hit_seconds: capture time of the frame that confirmed
                   a hit (FrameHeaders.ts_ms, ingest's receive time of that frame) -> the hit
                   upserted in Milvus lite and acknowledged on "hits" (durable)
    scored         vigil_detector_stage_seconds{stage="scored"}: capture -> the frame scored

After every camera's first frame is scored and `--warmup-s` more, the parent measures for
`--seconds`: the detector's CPU time (utime + stime from /proc/<pid>/stat, every thread,
Milvus lite included: it runs in the detector's process) and its VmRSS every 2 s; frames scored
per CPU-second is the figure that, at 1 frame/s a camera, reads as cameras per core.

    python bench/detector.py                      # encoder + every case, JSON lines
    python bench/detector.py --cameras 8 --phases aligned   # one case (this process + children)
    python bench/detector.py --role encoder --encoder offline --batch 8   # encoder alone
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

# bench/ on sys.path: the part's modules import each other (and bench/encoders.py) as top-level
# modules, as when a bench script runs, also when this one is imported from elsewhere.
sys.path.insert(0, str(Path(__file__).resolve().parent))

# The part's concepts, each in a module of its own: the footage, the /proc readings, the detector
# process (--role detector), what a case starts, one case's measurement, the encoder alone, and
# the report. This module is the entry point (every --role) and what bench/run.py calls.
from detector_case import measure_case
from detector_encoder import ENCODER_BATCHES, ENCODERS, clip_int8_available, measure_encoder
from detector_footage import camera_clip
from detector_report import describe, summarize, table
from detector_role import run_detector_role

ROOT = Path(__file__).resolve().parents[1]

__all__ = [
    "CASES",
    "CASE_SECONDS",
    "camera_clip",
    "clip_int8_available",
    "describe",
    "main",
    "measure_case",
    "measure_encoder",
    "run_detector_role",
    "summarize",
    "table",
]

# (cameras, phases) and measured seconds. "independent": one ingest process per camera, started
# 1/N s apart (plus each process's own start-up time), so each camera's kept frames fall in a
# part of the second of their own, roughly at random, as real cameras' do (their GOPs run on their
# own clocks). "aligned": one ingest process for every camera (`vigil up`'s), which connects to
# every test camera at once; each RTSP session starts its GOP when it connects, so every camera's
# kept frames come within a few tens of ms of each other: the worst case for latency.
CASES = (
    (1, "independent", "offline"),
    (4, "independent", "offline"),
    (8, "independent", "offline"),
    (8, "aligned", "offline"),
    (8, "independent", "clip-int8"),
)
CASE_SECONDS = {
    (1, "independent", "offline"): 75.0,
    (4, "independent", "offline"): 60.0,
    (8, "independent", "offline"): 90.0,
    (8, "aligned", "offline"): 60.0,
    (8, "independent", "clip-int8"): 60.0,
}


# --- main -----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--role", choices=("all", "case", "detector", "encoder"), default=None)
    parser.add_argument("--cameras", type=int, help="one case: this many cameras")
    parser.add_argument(
        "--phases", choices=("independent", "aligned"), default="independent", help="one case"
    )
    parser.add_argument(
        "--cases",
        default=",".join(":".join(map(str, case)) for case in CASES),
        help="every case: cameras:phases:encoder, comma-separated",
    )
    parser.add_argument("--seconds", type=float, help="measured seconds per case (default: CASE_SECONDS)")
    parser.add_argument(
        "--warmup-s", type=float, default=5.0, help="after every camera's first frame is scored"
    )
    parser.add_argument(
        "--temporal",
        choices=("gru", "off"),
        default=None,
        help="the detector's temporal stage (default: the detector's own default)",
    )
    parser.add_argument("--encoder", choices=ENCODERS, default="offline")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--encoder-seconds", type=float, default=2.0)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--samples", type=Path)
    parser.add_argument("--camera-ids", default="")
    return parser


def _run_all(args: argparse.Namespace) -> None:
    """The encoder alone at each batch, then every case of `--cases`, each in a process of its own
    (this file with --role encoder / case); prints their JSON lines."""
    cases = [(int(n), phases, enc) for n, phases, enc in (c.split(":") for c in args.cases.split(",") if c)]
    for cameras in sorted({n for n, _, _ in cases}):
        for i in range(cameras):
            camera_clip(i, cameras)  # make every clip once, outside any measurement
    encoders = [e for e in ENCODERS if e == "offline" or clip_int8_available()]
    for encoder_name in encoders:
        for batch in ENCODER_BATCHES:
            command = [sys.executable, __file__, "--role=encoder", f"--encoder={encoder_name}"]
            command += [f"--batch={batch}", f"--encoder-seconds={args.encoder_seconds}"]
            output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
            print(json.dumps({"part": "encoder", **json.loads(output.strip().splitlines()[-1])}), flush=True)
    for cameras, phases, encoder_name in cases:
        if encoder_name == "clip-int8" and not clip_int8_available():
            print(f"skipping {cameras}:{phases}:clip-int8: no random-weights export", file=sys.stderr)
            continue
        seconds = args.seconds or CASE_SECONDS.get((cameras, phases, encoder_name), 60.0)
        command = [sys.executable, __file__, "--role=case", f"--cameras={cameras}", f"--phases={phases}"]
        command += [f"--encoder={encoder_name}", f"--seconds={seconds}", f"--warmup-s={args.warmup_s}"]
        command += [f"--temporal={args.temporal}"] if args.temporal else []
        output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT).stdout
        print(output.strip().splitlines()[-1], flush=True)


def main() -> None:
    args = _parser().parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)
    role = args.role or ("case" if args.cameras else "all")
    if role == "detector":
        cameras = [c for c in args.camera_ids.split(",") if c]
        run_detector_role(args.config, args.samples, cameras, args.encoder)
        return
    if role == "encoder":
        print(json.dumps(measure_encoder(args.encoder, args.batch, 5, args.encoder_seconds)))
        return
    if role == "case":
        seconds = args.seconds or CASE_SECONDS.get((args.cameras, args.phases, args.encoder), 60.0)
        row = measure_case(args.cameras, args.phases, args.encoder, seconds, args.warmup_s, args.temporal)
        print(json.dumps({"part": "case", **row}))
        return
    _run_all(args)


if __name__ == "__main__":
    main()
