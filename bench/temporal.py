"""GRU temporal scorer: its held-out figures (models/temporal/report.json, written when it was
trained) and its scoring speed in onnxruntime on CPU.

    python bench/run.py --part temporal        # both, into bench/results/temporal.json + BENCHMARKS.md
    python bench/temporal.py --batch 64 --threads 1   # one speed measurement; prints one JSON line

bench/run.py calls `bench()`, which starts one process per (threads, batch) and round, the rounds
interleaved, as the encoder benchmark does; the figure is the median over rounds of each
process's median call time. The windows scored are real ones (the held-out windows stored as
the model's test reference), repeated to the batch size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "models" / "temporal" / "report.json"
REFERENCE = ROOT / "tests" / "models" / "data" / "temporal_reference.npz"
BATCHES = (1, 64, 512)
FIGURES = (
    "frame_f1",
    "event_precision",
    "event_recall",
    "event_f1",
    "detected",
    "events",
    "ttd_median_s",
    "ttd_p90_s",
    "false_alerts",
    "false_alerts_per_query_hour",
)


def measure(batch: int, threads: int, min_repeats: int, min_seconds: float) -> dict:
    import numpy as np

    sys.path.insert(0, str(ROOT / "bench"))
    from encoders import timed_runs

    from vigil.models.temporal import TemporalScorer

    scorer = TemporalScorer.load(device="cpu", threads=threads)
    with np.load(REFERENCE) as stored:
        reference = stored["windows"]
    windows = np.ascontiguousarray(np.resize(reference, (batch, *reference.shape[1:])), np.float32)
    times = timed_runs(lambda: scorer.score(windows), min_repeats, min_seconds)
    median = statistics.median(times)
    return {
        "batch": batch,
        "threads": threads,
        "repeats": len(times),
        "median_call_s": median,
        "windows_per_s": batch / median,
        "us_per_call": 1e6 * median,
    }


def bench(quick: bool, rounds: int) -> dict:
    """Speed rows (fresh process per case and round) plus the report's held-out figures."""
    cores = os.cpu_count() or 1
    cases = [(threads, batch) for threads in sorted({1, cores}) for batch in BATCHES]
    samples: dict[tuple[int, int], list[dict]] = {case: [] for case in cases}
    for round_index in range(rounds):
        for threads, batch in cases:
            command = [sys.executable, str(Path(__file__)), "--batch", str(batch), "--threads", str(threads)]
            if quick:
                command += ["--min-repeats", "5", "--min-seconds", "0"]
            output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
            row = json.loads(output.strip().splitlines()[-1])
            samples[(threads, batch)].append(row)
            print(
                f"  round {round_index + 1}/{rounds} threads {threads} batch {batch:>3}: "
                f"{row['windows_per_s']:10.0f} windows/s ({row['us_per_call']:.0f} us/call)",
                flush=True,
            )
    rows = []
    for (threads, batch), runs in samples.items():
        seconds = statistics.median(run["median_call_s"] for run in runs)
        rates = [run["windows_per_s"] for run in runs]
        rows.append(
            {
                "threads": threads,
                "batch": batch,
                "rounds": len(runs),
                "timed_calls": sum(run["repeats"] for run in runs),
                "us_per_call": 1e6 * seconds,
                "windows_per_s": batch / seconds,
                "windows_per_s_range": [min(rates), max(rates)],
            }
        )
    report = json.loads(REPORT.read_text())
    quality = {
        scorer: {key: figures[key] for key in FIGURES} for scorer, figures in report["heldout"].items()
    }
    return {
        "rows": rows,
        "quality": quality,
        "model": {
            key: report["model"][key] for key in ("name", "onnx_sha256", "window", "hidden", "parameters")
        },
        "pos_weight": report["training"]["pos_weight"],
        "heldout_sequences": report["data"]["splits"]["heldout"]["sequences"],
        "background_query_hours": report["heldout"]["gru"]["background_query_hours"],
    }


def _fmt(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(result: dict) -> str:
    lines = [
        f"Held-out figures ({result['heldout_sequences']} sequences, "
        f"{result['background_query_hours']:.1f} query-hours of background; from "
        f"`models/temporal/report.json`, model `{result['model']['name']}` "
        f"sha256 {result['model']['onnx_sha256'][:12]}):",
        "",
        "| scorer | frame F1 | event precision | event recall | event F1 | TTD median (s) | TTD p90 (s) "
        "| false alerts per query-hour |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scorer, f in result["quality"].items():
        lines.append(
            f"| {scorer} | {_fmt(f['frame_f1'], 3)} | {_fmt(f['event_precision'], 3)} "
            f"| {_fmt(f['event_recall'], 3)} ({f['detected']}/{f['events']}) | {_fmt(f['event_f1'], 3)} "
            f"| {_fmt(f['ttd_median_s'], 1)} | {_fmt(f['ttd_p90_s'], 1)} "
            f"| {_fmt(f['false_alerts_per_query_hour'], 2)} |"
        )
    lines += [
        "",
        "Scoring speed (onnxruntime CPU, one call per batch of windows):",
        "",
        "| threads | batch | windows/s (median) | us per call | windows/s range | rounds x calls |",
        "|---:|---:|---:|---:|---|---:|",
    ]
    for row in result["rows"]:
        low, high = row["windows_per_s_range"]
        lines.append(
            f"| {row['threads']} | {row['batch']} | {row['windows_per_s']:,.0f} | {row['us_per_call']:.0f} "
            f"| {low:,.0f}-{high:,.0f} | {row['rounds']} x {row['timed_calls'] // row['rounds']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--min-repeats", type=int, default=50)
    parser.add_argument("--min-seconds", type=float, default=2.0)
    args = parser.parse_args()
    print(json.dumps(measure(args.batch, args.threads, args.min_repeats, args.min_seconds)))


if __name__ == "__main__":
    main()
