"""The chaos suite's longer variant (`make bench`, part "chaos"): `--runs` runs of `vigil up` on
the demo clip in which every service (ingest, detector, alerter, broker) is killed -9 at random
points of the stream (seeded) and poison frames are sent at a random point; each is held against
a clean run on its own frames (vigil/chaos/reference.py) and each fault's recovery timed.

Usage: python bench/chaos.py [--runs 3] [--seed 12] [--stream-seconds 56]
Prints one JSON line per run; bench/run.py turns them into the table of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KILLS = ("kill:ingest", "kill:detector", "kill:alerter", "kill:broker")


def random_faults(rng: random.Random, stream_seconds: float):
    from vigil.chaos import Fault

    # Not in the last 8 s: a service killed then has no stream left to show its recovery on.
    times = sorted(rng.uniform(6.0, stream_seconds - 8.0) for _ in range(len(KILLS) + 1))
    actions = [*KILLS, "poison"]
    rng.shuffle(actions)
    return [Fault(round(at_s, 1), action) for at_s, action in zip(times, actions, strict=True)]


def main() -> None:
    from vigil.chaos import clean_reference, compare, run_scenario

    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--stream-seconds", type=float, default=56.0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="vigil-chaos-") as folder:
        for number in range(args.runs):
            faults = random_faults(rng, args.stream_seconds)
            run = run_scenario(Path(folder) / f"chaos-{number}", faults, args.stream_seconds)
            clean = clean_reference(run)
            problems = compare(clean, run)
            print(
                json.dumps(
                    {
                        "run": number,
                        "faults": [(action, at_s, recovered) for action, at_s, recovered in run.faults],
                        "problems": problems,
                        "events": len(run.events()),
                        "clean_events": len(clean.events),
                        "hits": len(run.hits),
                        "stored_hits": len(run.stored_hits),
                        "alerts": len(run.alerts),
                        "dead_letters": len(run.dead_letters),
                    }
                ),
                flush=True,
            )


def summarize(rows: list[dict]) -> dict:
    runs = rows
    recoveries: dict[str, list] = {}
    for row in runs:
        for action, _, recovered in row["faults"]:
            recoveries.setdefault(action, []).append(recovered)
    return {
        "runs": runs,
        "recovery": {
            action: {
                "n": len(values),
                "median_s": statistics.median(v for v in values if v is not None)
                if any(v is not None for v in values)
                else None,
                "max_s": max((v for v in values if v is not None), default=None),
                "not_back": sum(v is None for v in values),
            }
            for action, values in sorted(recoveries.items())
        },
        "problems": sum(len(row["problems"]) for row in runs),
    }


def table(result: dict) -> str:
    lines = [
        "| fault | times | back in service, median | max | never back |",
        "|---|---|---|---|---|",
    ]
    for action, figures in result["recovery"].items():
        what = "poison frames (detection stalled)" if action == "poison" else f"kill -9 of the {action[5:]}"
        median, longest = (
            f"{value:.2f} s" if value is not None else "-"
            for value in (figures["median_s"], figures["max_s"])
        )
        lines.append(f"| {what} | {figures['n']} | {median} | {longest} | {figures['not_back']} |")
    lines += [
        "",
        f"Runs held against the clean run: {len(result['runs'])}; differences found "
        f"(an event missing, added or moved over 2 s, a hit lost or only in Milvus, an alert "
        f"raised twice or lost): {result['problems']}.",
    ]
    for row in result["runs"]:
        for problem in row["problems"]:
            lines.append(f"- run {row['run']}: {problem}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
