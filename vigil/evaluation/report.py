"""The evaluation's report: a JSON document per (encoder, split), a printed table, and the tables
kept in docs/EVALUATION.md between markers (a rerun replaces them)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

from vigil.cpu import instruction_set
from vigil.evaluation import dataset, metrics
from vigil.evaluation.runner import SplitResult
from vigil.model_tools.temporal import data

CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "amx")
SCHEMA = "vigil-evaluation/1"


def cpu_info(cpuinfo: str | None = None) -> dict:
    """The CPU's model and the instruction sets that decide the encoder's speed (vigil/cpu.py;
    amx: any of amx_tile, amx_bf16, amx_int8). cpuinfo: /proc/cpuinfo's text (None: read it)."""
    isa = instruction_set() if cpuinfo is None else instruction_set(cpuinfo)
    flags = isa["flags"]
    found = {flag: bool(flags[flag]) for flag in CPU_FLAGS[:-1]}
    found["amx"] = any(bool(flags[flag]) for flag in ("amx_tile", "amx_bf16", "amx_int8"))
    return {"model": isa["model"], "cores": os.cpu_count(), "flags": found}


def _round(value, digits: int = 3):
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: _round(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v, digits) for v in value]
    return value


def run_json(record) -> dict:
    outcome = record.outcome
    run = outcome.run
    matched_by = {index: event_id for event_id, index in outcome.matched.items()}
    return {
        "stream": record.stream.name,
        "language": record.language,
        "queries": record.queries,
        "resolved_languages": record.resolved_languages,
        "events": [
            {
                "event_id": e.event_id,
                "query_id": e.query_id,
                "start_ms": e.start_ms,
                "end_ms": e.end_ms,
                "found": outcome.found(e),
                "time_to_detect_ms": outcome.time_to_detect_ms(e),
                "cross_fired_by": sorted(
                    q for ev, q, fired in outcome.cross_pairs if ev == e.event_id and fired
                ),
            }
            for e in run.events
        ],
        "hits": [
            {
                "query_id": h.query_id,
                "start_ms": h.start_ms,
                "confirmed_ms": h.confirmed_ms,
                "end_ms": h.end_ms,
                "kind": kind,
                "event_id": matched_by.get(i),
            }
            for i, (h, kind) in enumerate(zip(run.hits, outcome.kinds, strict=True))
        ],
        "wall_s": round(record.wall_s, 2),
        "images_embedded": record.embedded,
        "images_recalled": record.recalled,
    }


def figures_by_language(result: SplitResult) -> dict:
    figures = {
        language: metrics.summarise(r.outcome for r in result.records if r.language == language)
        for language in dataset.LANGUAGES
    }
    figures["all"] = metrics.summarise(r.outcome for r in result.records)
    return figures


def build_report(
    result: SplitResult, *, encoder_info, encoder_kind: str, config, command: str, quick: bool
) -> dict:
    figures = figures_by_language(result)
    goals = metrics.GOALS
    return _round(
        {
            "schema": SCHEMA,
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": command,
            "split": result.split,
            "quick": quick,
            "encoder": {
                "kind": encoder_kind,
                "name": encoder_info.name,
                "dim": encoder_info.dim,
                "providers": list(encoder_info.providers),
            },
            "cpu": cpu_info(),
            "detector": config.model_dump(mode="json", exclude={"encoder"}) if config is not None else None,
            "definitions": {
                "found": f"a hit of the event's own query starts within {metrics.TOLERANCE_MS} ms of the "
                "event's start, either side, inclusive (one hit per event)",
                "false_event": "a hit that matches no event and is not late: cross (overlaps another "
                "object's event span) or background (overlaps no event)",
                "late": "a hit that did not find an event but starts during one of its own query's "
                "events (not false)",
                "false_per_hour_per_query": "false events / (footage hours x registered queries)",
                "cross_firing_pct": "share of (event, other registered query) pairs where that query "
                "has a hit overlapping the event's span",
                "time_to_detect_ms": "confirmed_ts_ms of the matching hit - event start; median, p90 "
                "(linear interpolation)",
            },
            "goals": {
                "applies_to": "heldout, per language",
                "found_pct_min": goals.found_pct,
                "false_per_hour_per_query_max": goals.false_per_hour_per_query,
                "cross_firing_pct_max": goals.cross_firing_pct,
            },
            "goal_check": {lang: goals.check(figures[lang]) for lang in dataset.LANGUAGES},
            "dataset": {
                "summary": dataset.summary(result.streams),
                "streams": [s.describe() for s in result.streams],
                "sources": data.sources_report(),  # every clip's file and sha256, every photo's origin
            },
            "figures": figures,
            "runs": [run_json(r) for r in result.records],
            "timing": result.timing,
        }
    )


def report_path(folder: Path, encoder_kind: str, split: str, quick: bool) -> Path:
    return folder / f"report-{encoder_kind}-{split}{'-quick' if quick else ''}.json"


def write_json(report: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    partial.replace(path)
    return path


def _pct(value) -> str:
    return "-" if value is None else f"{value:.1f} %"


def _num(value, unit: str = "") -> str:
    return "-" if value is None else f"{value:.2f}{unit}"


def _seconds(ms) -> str:
    return "-" if ms is None else f"{ms / 1000:.1f} s"


def _mark(ok) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def table_rows(report: dict) -> list[list[str]]:
    rows = []
    for language in (*dataset.LANGUAGES, "all"):
        f = report["figures"][language]
        ttd = f["time_to_detect_ms"]
        kinds = f["hit_kinds"]
        rows.append(
            [
                language,
                f"{f['found']}/{f['events']} ({_pct(f['found_pct'])})",
                f"{_num(f['false_per_hour_per_query'])} = {_num(f['cross_false_per_hour_per_query'])} cross"
                f" + {_num(f['background_false_per_hour_per_query'])} bg ({f['false_events']} hits)",
                f"{f['cross_fired']}/{f['cross_pairs']} ({_pct(f['cross_firing_pct'])})",
                f"{_seconds(ttd['median'])} / {_seconds(ttd['p90'])}",
                str(kinds["late"]),
                _recall_pair(f["two_event_query"]),
                " ".join(f"{b} {s['found']}/{s['events']}" for b, s in f["size_buckets"].items()),
                "-" if f.get("event_f1") is None else f"{f['event_f1']:.2f} ({_pct(f['precision_pct'])})",
            ]
        )
    return rows


HEADER = [
    "language",
    "events found",
    "false /h/query (cross + rest)",
    "cross-firing",
    "TTD median / p90",
    "late",
    "2-event query: 1st, 2nd",
    "found by size (area)",
    "event F1 (precision)",
]


def _recall_pair(two: dict) -> str:
    first, second = two["first"], two["second"]
    return f"{first['found']}/{first['events']}, {second['found']}/{second['events']}"


def _goal_lines(report: dict) -> list[str]:
    goals = report["goals"]
    lines = [
        f"goals ({goals['applies_to']}): found >= {goals['found_pct_min']:g} %, "
        f"false <= {goals['false_per_hour_per_query_max']:g} /h/query, "
        f"cross-firing <= {goals['cross_firing_pct_max']:g} %"
    ]
    for language, check in report["goal_check"].items():
        marks = ", ".join(f"{name} {_mark(ok)}" for name, ok in check.items())
        applies = "" if report["split"] == "heldout" else " (for reference: goals apply to heldout)"
        lines.append(f"{language}: {marks}{applies}")
    return lines


def _caption(report: dict) -> str:
    s = report["dataset"]["summary"]
    cpu = report["cpu"]
    flags = ",".join(k for k, v in cpu["flags"].items() if v) or "none"
    return (
        f"split {report['split']}{' (quick)' if report['quick'] else ''}: {s['streams']} streams x "
        f"{len(dataset.LANGUAGES)} languages, {s['frames']} frames "
        f"({s['footage_s'] / 60:.1f} min of footage), {s['events']} events per language, "
        f"{'/'.join(map(str, s['queries_per_stream']))} queries per stream; "
        f"encoder {report['encoder']['name']}; CPU {cpu['model']} ({flags}); "
        f"{report['timing'].get('wall_s', 0) / 60:.1f} min"
    )


def format_table(report: dict) -> str:
    rows = [HEADER, *table_rows(report)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = [_caption(report), ""]
    for k, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join([*lines, "", *_goal_lines(report)])


def format_markdown(report: dict) -> str:
    lines = [
        f"Made by `{report['command']}` on {report['created'][:10]}. {_caption(report)}.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(report)]
    lines += ["", *(f"- {line}" for line in _goal_lines(report))]
    return "\n".join(lines)


def markers(split: str) -> tuple[str, str]:
    return f"<!-- vigil-eval:{split}:begin -->", f"<!-- vigil-eval:{split}:end -->"


def write_docs(report: dict, path: Path) -> None:
    """Put the report's table between the split's markers in `path` (appended with its markers
    when they are missing), leaving the rest of the file as it is."""
    begin, end = markers(report["split"])
    text = path.read_text() if path.is_file() else ""
    block = f"{begin}\n{format_markdown(report)}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block + "\n"
    path.write_text(text)
