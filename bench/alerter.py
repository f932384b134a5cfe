"""Alerter: speech synthesis times and hit-to-alert latency through the real alerter service.

    python bench/run.py --part alerter     # everything, into bench/results/alerter.json + BENCHMARKS.md
    python bench/alerter.py --role speech  # synthesis times; prints one JSON line
    python bench/alerter.py --role service --case cold   # one service case; prints one JSON line

Speech (`SpeechSynthesizer.synthesize`, services/alerter/speech/synthesizer.py), one process per round:

    espeak-ng      distinct Vietnamese and English alert sentences (pipelines/phrases.py
                   `alert_phrase` over several queries, cameras and severities), each a cache
                   miss, the languages interleaved; one untimed sentence per language first
    cache hit      every one of those sentences again (the file is there: nothing is spoken)
    gTTS fallback  the default engines (gTTS, then espeak-ng; gtts_timeout_s 3, gtts_retries 1,
                   gtts_cooldown_s 60) on this machine: the first alert of a fresh synthesizer
                   (gTTS is tried, fails, espeak-ng speaks), then the next alerts while gTTS
                   cools down (skipped); once as the network is here, once with every HTTPS
                   request sent to a local proxy that accepts and never answers (a firewall
                   that drops packets: requests' own timeout and the attempt's deadline apply)

Service (`AlerterService`, services/alerter/service.py, looping in a thread of this process as
tests/alerter/alerter_support.py `Running` does), one process per case, on a fresh local tansu
broker with two standing queries (Vietnamese "Một chiếc xe máy", critical; English "a person
climbing the fence", warning). Hits go to "hits" from this process's producer; a group-less
consumer follows "alerts" from its end. Each hit is timed from its acknowledgement by the broker
(the producer's delivery callback: the hit is on the broker, readable by the alerter) to

    alert sent       the alert record's Kafka timestamp (CreateTime: set by the alerter's producer
                     when it queues the alert, right after speaking it; same clock, ms)
    alert received   this process's follower of "alerts" has the record: the alert is on the
                     broker (adds the alerter's producer linger and acknowledgement). The follower
                     asks for fetch_max_wait_ms 10: tansu answers a pending fetch only when its
                     max wait runs out, so a default consumer would add its own wait here

Before timing, one priming hit on a camera of its own goes through (the alerter's consumer has
joined its group), in the spoken-ahead cases `service.warmer.wait()` returns, and the CPU of
this process (the alerter and the harness) and of the broker is read over `--idle-s` without
hits. Cases:

    cold          speech.warm_up off; every hit on a camera never seen, so every phrase is spoken
                  (espeak-ng) while the alert waits; one hit every `--pace-s`
    warm          speech.warm_up on (the default); the cameras are configured, so each standing
                  query's phrase for each camera is spoken ahead in the background; same pace
    warm-fetch500 as warm, with the alerter's "hits" consumer made with kafka-python's default
                  fetch_max_wait_ms=500 (patched here, in this process only) instead of Vigil's
                  100 (KafkaSettings.consumer_fetch_max_wait_ms): what the broker's fetch wait costs
    warm-20k      as warm, the alerter restarting with a policy memory of 20,000 hit ids (the
                  default dedupe_max_hits: a busy site's day), loaded from "alert-state" (one
                  record per hit id, as the alerter keeps them); it checkpoints every
                  commit_interval_s (5 s, the default)
    warm-20k-every-batch  the same with commit_interval_s 0: a checkpoint after every batch
    burst-cold    `--burst` hits sent at once on distinct cameras, nothing spoken ahead
    burst-warm    the same, every phrase spoken ahead

The alerter's own timings are kept by wrapping its methods (the instance's attributes, nothing
in the service changes): `_handle` per hit (decode, policy, speech, queue the alert and its
record), `_speak` per alert (cached or not), `checkpoint` per batch (changed hit ids and the
policy record queued, producer flushed, offsets committed) and the policy record's
`state_log.save`.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
from pathlib import Path

# bench/ on sys.path: the part's modules import each other as top-level modules (as when a bench
# script runs), also when this one is imported from elsewhere.
sys.path.insert(0, str(Path(__file__).resolve().parent))

# The part's concepts, each in a module of its own: the speech measurement, the service cases and
# what they start from, the harness around the running service, one service case's measurement,
# and the report. This module is the entry point (`--role`) and what bench/run.py calls.
from alerter_cases import CASES
from alerter_harness import stats_ms
from alerter_report import describe, table
from alerter_service import measure_service
from alerter_speech import measure_speech

ROOT = Path(__file__).resolve().parents[1]

__all__ = [
    "CASES",
    "bench",
    "describe",
    "main",
    "measure_service",
    "measure_speech",
    "summarize_speech",
    "table",
]


# --- bench/run.py ----------------------------------------------------------------------------


def _run_role(arguments: list[str]) -> dict:
    command = [sys.executable, str(Path(__file__)), *arguments]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(output.strip().splitlines()[-1])


def bench(quick: bool, rounds: int) -> dict:
    """`rounds` speech processes (their samples pooled), then one process per service case."""
    speech_args = ["--role=speech"] + (["--sentences=4", "--gtts-next=2"] if quick else [])
    speech_runs = []
    for round_index in range(rounds):
        run = _run_role([*speech_args, f"--seed={round_index}"])
        speech_runs.append(run)
        vi = statistics.median(r["synthesis_s"] for r in run["espeak"]["vi"])
        en = statistics.median(r["synthesis_s"] for r in run["espeak"]["en"])
        print(
            f"  speech round {round_index + 1}/{rounds}: espeak-ng vi {1000 * vi:.0f} ms, "
            f"en {1000 * en:.0f} ms; "
            f"gTTS first alert {run['gtts']['here']['first_s']:.3f} s here, "
            f"{run['gtts']['silent']['first_s']:.2f} s on a silent network",
            flush=True,
        )
    service_args = ["--hits=6", "--burst=20", "--bursts=2", "--idle-s=1"] if quick else []
    cases = []
    for case in CASES:
        row = _run_role(["--role=service", f"--case={case}", *service_args])
        cases.append(row)
        print(describe(row), flush=True)
    return {"speech": summarize_speech(speech_runs), "cases": cases}


def summarize_speech(runs: list[dict]) -> dict:
    espeak = {}
    for language in ("vi", "en"):
        rows = [row for run in runs for row in run["espeak"][language]]
        synthesis = [row["synthesis_s"] for row in rows]
        espeak[language] = {
            "rounds": len(runs),
            "synthesis": stats_ms(synthesis),
            "synthesis_round_medians_ms": [
                1000 * statistics.median(row["synthesis_s"] for row in run["espeak"][language])
                for run in runs
            ],
            "audio_s_median": statistics.median(row["audio_s"] for row in rows),
            "chars_median": statistics.median(row["chars"] for row in rows),
            "real_time_factor_median": statistics.median(row["synthesis_s"] / row["audio_s"] for row in rows),
        }
    gtts = {}
    for network in ("here", "silent"):
        tries = [run["gtts"][network] for run in runs]
        gtts[network] = {
            "first": stats_ms([t["first_s"] for t in tries]),
            "next": stats_ms([s for t in tries for s in t["next_s"]]),
            "gtts_failed_after": stats_ms(
                [t["gtts_failed_after_s"] for t in tries if t["gtts_failed_after_s"]]
            ),
            "gtts_tried_per_synthesizer": [t["gtts_tried"] for t in tries],
            "gtts_ok": any(t["gtts_ok"] for t in tries),
            "engines": sorted({engine for t in tries for engine in t["engines"]}),
            "failure": tries[0]["failure"],
        }
    return {
        "espeak": espeak,
        "cache_hit": stats_ms([s for run in runs for s in run["cache_hit_s"]]),
        "gtts": gtts,
        "gtts_settings": {"timeout_s": 3.0, "retries": 1, "cooldown_s": 60.0},
    }


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--role", choices=("speech", "service"), required=True)
    parser.add_argument("--sentences", type=int, default=25, help="speech: timed sentences per language")
    parser.add_argument("--gtts-next", type=int, default=5, help="speech: alerts after gTTS's first failure")
    parser.add_argument("--seed", type=int, default=0, help="speech: which sentences")
    parser.add_argument("--case", choices=CASES, default="cold")
    parser.add_argument("--hits", type=int, default=40, help="service: hits in a paced case")
    parser.add_argument("--pace-s", type=float, default=0.2, help="service: seconds between hits")
    parser.add_argument("--burst", type=int, default=100, help="service: hits in a burst")
    parser.add_argument("--bursts", type=int, default=3, help="service: bursts in a burst case")
    parser.add_argument("--idle-s", type=float, default=3.0, help="service: CPU measured without hits")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.role == "speech":
        print(json.dumps(measure_speech(args.sentences, args.gtts_next, args.seed)))
    else:
        print(
            json.dumps(
                measure_service(args.case, args.hits, args.pace_s, args.burst, args.bursts, args.idle_s)
            )
        )


if __name__ == "__main__":
    main()
