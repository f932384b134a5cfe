"""Soak and disk (`make bench`, part "soak"): `vigil up` on 8 real RTSP cameras for `--minutes`,
sampling every process's RSS, open files and threads, and the disk that var/ takes.

The cameras loop the demo clip (a real hall with a cat and a motorcycle pasted in) at 2 frames/s
each, with the demo's two standing queries. Every `--every-s` the bench reads, for `vigil up`,
ingest, the detector, the alerter, the broker (tansu) and its object store (node):
/proc/<pid>/status (VmRSS, Threads) and /proc/<pid>/fd; and the size of the run's folders: the
broker's log (after its store keeper's retention), Milvus lite, thumbnails and the speech cache.

Growth is the median of the samples of the last `--warmup-min` minutes against the median of
those taken from `--warmup-min` to twice that (a process's first minutes load models and fill
caches). Disk per camera-day extrapolates the
growth of each folder after the warm-up to 24 h of one camera; the broker's log stops growing
once its retention (frames: an hour) is reached, so over a short soak it is an upper bound.

Usage: python bench/soak.py [--minutes 30] [--cameras 8] [--every-s 30] [--warmup-min 5]
                            [--frames-max-rows N]
Prints one JSON line per sample, then one with the summary.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FOLDERS = ("broker", "milvus", "thumbnails", "speech")


def write_config(
    home: Path, urls: list[str], ports: dict[str, int], frames_max_rows: int | None = None
) -> Path:
    from vigil.demo import DEMO_QUERIES

    detector: dict = {"metrics_port": ports["detector"]}
    if frames_max_rows is not None:
        detector["retention"] = {"frames_max_rows": frames_max_rows, "check_every_s": 60}
    config = {
        "defaults": {"fps": 2, "resize": {"max_width": 768, "max_height": 576}},
        "cameras": [{"id": f"cam{i}", "url": url, "open_timeout_s": 30} for i, url in enumerate(urls)],
        "detector": detector,
        "alerter": {"speech": {"cache_dir": str(home / "speech"), "engines": ["espeak-ng"]}},
        "api": {"port": ports["api"], "metrics_port": 0},
        "queries": list(DEMO_QUERIES),
    }
    path = home / "vigil.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def processes(config: Path, broker_port: int, home: Path, up_pid: int) -> dict[str, int]:
    def pgrep(pattern: str) -> int | None:
        found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False)
        pids = [int(pid) for pid in found.stdout.split()]
        return pids[0] if pids else None

    found = {
        "vigil up": up_pid,
        **{
            name: pgrep(f"vigil {name} --config {config}")
            for name in ("ingest", "detector", "alerter", "api")
        },
        "broker": pgrep(f"tansu broker --listener-url tcp://127.0.0.1:{broker_port}"),
        "object store": pgrep(f"server.js {home / 'broker' / 'store'}"),
    }
    return {name: pid for name, pid in found.items() if pid is not None}


def sample_process(pid: int) -> dict | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_mib": round(int(fields["VmRSS"].split()[0]) / 1024, 1),
        "threads": int(fields["Threads"]),
        "open_files": fds,
    }


def folder_mib(path: Path) -> float:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return round(total / 2**20, 2)


def main() -> None:
    from vigil.chaos import start_up, stop_up
    from vigil.fixtures.media import event_clip
    from vigil.fixtures.rtsp import RtspCamera
    from vigil.services.broker.local import free_loopback_port

    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--every-s", type=float, default=30.0)
    parser.add_argument("--warmup-min", type=float, default=5.0)
    parser.add_argument(
        "--frames-max-rows",
        type=int,
        help="the detector's frame index row budget, checked every minute (default: the product's, "
        "100,000, which 8 cameras reach after 3.5 h: a smaller one is reached within the soak)",
    )
    args = parser.parse_args()
    # A soak stopped with SIGTERM (a timeout, `kill`) unwinds like Ctrl-C: `vigil up` and the RTSP
    # servers are its children but not in its process group's fate, and would run on, orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    with tempfile.TemporaryDirectory(prefix="vigil-soak-") as folder:
        home = Path(folder)
        ports = {name: free_loopback_port() for name in ("broker", "detector", "api")}
        cameras: list[RtspCamera] = []
        up = None
        samples: list[dict] = []
        try:
            for i in range(args.cameras):
                camera = RtspCamera(
                    media=event_clip(),
                    port=free_loopback_port(),
                    mount=f"/cam{i}",
                    width=768,
                    height=576,
                    loop=True,
                )
                cameras.append(camera.start())
            config = write_config(home, [camera.url for camera in cameras], ports, args.frames_max_rows)
            up = start_up(home, config, ports)
            started = time.monotonic()
            while time.monotonic() - started < args.minutes * 60:
                time.sleep(args.every_s)
                if up.poll() is not None:
                    raise SystemExit(f"vigil up exited with code {up.returncode}; see {home / 'up.log'}")
                sample = {
                    "minute": round((time.monotonic() - started) / 60, 2),
                    "processes": {
                        name: sample_process(pid)
                        for name, pid in processes(config, ports["broker"], home, up.pid).items()
                    },
                    "disk_mib": {name: folder_mib(home / name) for name in FOLDERS},
                }
                samples.append(sample)
                print(json.dumps(sample), flush=True)
        finally:
            if up is not None:
                stop_up(up)
            for camera in cameras:
                camera.stop()
        print(json.dumps({"summary": summarize(samples, args)}), flush=True)


def summarize(samples: list[dict], args: argparse.Namespace) -> dict:
    warm = [s for s in samples if args.warmup_min <= s["minute"] <= 2 * args.warmup_min] or samples[:1]
    last = samples[-1]
    # The end is the median of a window as wide as the warm one: a single sample swings by
    # tens of MiB (a batch being decoded, a segment being indexed).
    end = [s for s in samples if s["minute"] >= last["minute"] - args.warmup_min] or [last]
    growth = {}
    for name in last["processes"]:
        for measure in ("rss_mib", "open_files", "threads"):
            before, after = (
                [s["processes"][name][measure] for s in window if s["processes"].get(name, {}).get(measure)]
                for window in (warm, end)
            )
            if before and after:
                reference, now = statistics.median(before), statistics.median(after)
                growth.setdefault(name, {})[measure] = {
                    "warm": round(reference, 1),
                    "last": round(now, 1),
                    "growth_pct": round(100 * (now - reference) / reference, 1),
                }
    elapsed_days = (last["minute"] - warm[0]["minute"]) / 1440
    disk = {}
    for name in FOLDERS:
        grown = last["disk_mib"][name] - warm[0]["disk_mib"][name]
        disk[name] = {
            "last_mib": last["disk_mib"][name],
            "per_camera_day_mib": round(grown / (args.cameras * elapsed_days), 1)
            if elapsed_days > 0
            else None,
        }
    return {
        "minutes": last["minute"],
        "cameras": args.cameras,
        "frames_max_rows": args.frames_max_rows,
        "warmup_min": args.warmup_min,
        "growth": growth,
        "disk": disk,
    }


def table(result: dict) -> str:
    summary = result["summary"]
    lines = [
        f"{summary['cameras']} cameras for {summary['minutes']:.0f} minutes; growth is the median of the "
        f"last {summary['warmup_min']:g} minutes' samples against that of minutes "
        f"{summary['warmup_min']:g}-{2 * summary['warmup_min']:g}"
        + (
            f"; the detector's frame index budget: {summary['frames_max_rows']:,} rows."
            if summary.get("frames_max_rows")
            else "."
        ),
        "",
        "| process | RSS warm | RSS at the end | growth | open files warm / end | threads warm / end |",
        "|---|---|---|---|---|---|",
    ]
    for name, figures in summary["growth"].items():
        rss = figures.get("rss_mib", {})
        files = figures.get("open_files", {})
        threads = figures.get("threads", {})
        lines.append(
            f"| {name} | {rss.get('warm')} MiB | {rss.get('last')} MiB | {rss.get('growth_pct')} % | "
            f"{files.get('warm')} / {files.get('last')} | {threads.get('warm')} / {threads.get('last')} |"
        )
    lines += ["", "| folder | size at the end | per camera-day |", "|---|---|---|"]
    for name, figures in summary["disk"].items():
        lines.append(f"| {name} | {figures['last_mib']} MiB | {figures['per_camera_day_mib']} MiB |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
