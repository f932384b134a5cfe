"""Alerter bench, report: the progress line of a service case and the part's tables in
BENCHMARKS.md (bench/run.py calls `table` on bench/results/alerter.json).
"""

from __future__ import annotations

from alerter_cases import CASE_TEXT


def describe(row: dict) -> str:
    sent, got = row["to_alert_sent"], row["to_alert_received"]
    line = (
        f"  {row['case']:10s}: {row['hits']} hits, hit acked -> alert sent p50 {sent['median_ms']:.0f} ms "
        f"p90 {sent['p90_ms']:.0f} max {sent['max_ms']:.0f}; -> received p50 {got['median_ms']:.0f} ms; "
        f"checkpoint p50 {row['checkpoint']['median_ms']:.1f} ms over {row['batches']} batches"
    )
    if "alerts_per_s" in row:
        line += f"; {row['alerts_per_s']:.0f} alerts/s"
    return line


def _ms(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _three(stats: dict, digits: int = 0) -> str:
    return (
        f"{_ms(stats['median_ms'], digits)} | {_ms(stats['p90_ms'], digits)} | {_ms(stats['max_ms'], digits)}"
    )


def table(result: dict) -> str:
    lines = [*_speech_lines(result["speech"]), "", *_service_lines(result["cases"])]
    return "\n".join(lines)


def _speech_lines(speech: dict) -> list[str]:
    """The speech synthesis table and what gTTS did on this machine."""
    lines = [
        "Speech synthesis (`SpeechSynthesizer.synthesize`, wall time of the call; each sentence a "
        "distinct alert sentence, so a cache miss unless said):",
        "",
        "| engine, case | language | calls | synthesis median (ms) | p90 (ms) | max (ms) "
        "| audio median (s) | real-time factor (median) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for language, row in speech["espeak"].items():
        stats = row["synthesis"]
        lines.append(
            f"| espeak-ng, not cached | {language} | {stats['n']} | {_three(stats, 1)} "
            f"| {row['audio_s_median']:.2f} | {row['real_time_factor_median']:.4f} |"
        )
    hit = speech["cache_hit"]
    lines.append(f"| cache hit (same sentence again) | vi + en | {hit['n']} | {_three(hit, 2)} | - | - |")
    settings = speech["gtts_settings"]
    for network, what in (
        ("here", "this machine's network"),
        ("silent", "a network that never answers (local proxy)"),
    ):
        g = speech["gtts"][network]
        lines.append(
            f"| gTTS then espeak-ng (defaults), {what}: first alert | vi | {g['first']['n']} "
            f"| {_three(g['first'], 1)} | - | - |"
        )
        lines.append(
            f"| ... next alert, gTTS cooling down ({settings['cooldown_s']:.0f} s) | vi | {g['next']['n']} "
            f"| {_three(g['next'], 1)} | - | - |"
        )
    lines += [
        "",
        "gTTS on this machine (timeout {timeout_s:g} s, {retries} retry, cool-down {cooldown_s:g} s): "
        "here, {here}; with a network that never answers, {silent}.".format(
            **settings,
            here=_gtts_sentence(speech["gtts"]["here"]),
            silent=_gtts_sentence(speech["gtts"]["silent"]),
        ),
    ]
    return lines


def _service_lines(cases: list[dict]) -> list[str]:
    """The hit-to-alert table of the service cases, then a line per burst case and per warm-20k case."""
    lines = [
        "Hit to alert through the alerter service (ms from the hit acknowledged by the broker; "
        "sent = the alert record's Kafka CreateTime, received = on the broker, read by a follower "
        "polling with fetch_max_wait_ms 10):",
        "",
        "| case | hits | pace | spoken ahead | hit acked -> alert sent p50 | p90 | max "
        "| -> alert received p50 | p90 | max | handling per hit p50 (ms) | speech per alert p50 (ms) "
        "| checkpoint per batch p50 | p90 (ms) | batches | last policy snapshot (kB) "
        "| idle cores: alerter + harness / broker |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in cases:
        pace = "burst" if row["pace_s"] is None else f"{1000 * row['pace_s']:.0f} ms"
        lines.append(
            f"| {CASE_TEXT[row['case']]} | {row['hits']} | {pace} | {row['speak_cached']}/{row['hits']} "
            f"| {_three(row['to_alert_sent'])} | {_three(row['to_alert_received'])} "
            f"| {_ms(row['handle']['median_ms'], 2)} | {_ms(row['speak']['median_ms'], 2)} "
            f"| {_ms(row['checkpoint']['median_ms'], 1)} | {_ms(row['checkpoint']['p90_ms'], 1)} "
            f"| {row['batches']} | {row['snapshot_bytes'] / 1000:,.1f} "
            f"| {row['idle_alerter_and_harness_cores']:.3f} / {row['idle_broker_cores']:.3f} |"
        )
    bursts = [row for row in cases if "alerts_per_s" in row]
    if bursts:
        lines.append("")
        for row in bursts:
            each = ", ".join(f"{1000 * b['burst_s']:.0f}" for b in row["bursts"])
            lines.append(
                f"- {CASE_TEXT[row['case']].capitalize()} ({len(row['bursts'])} bursts of {row['burst']} "
                f"hits, {row['batches']} batches in all; medians over the bursts): hits sent in "
                f"{1000 * row['hits_sent_s']:.0f} ms; first hit sent -> last alert sent "
                f"{1000 * row['burst_s']:.0f} ms (each burst: {each} ms); the alerts went out within "
                f"{1000 * row['raising_s']:.0f} ms of each other, {row['alerts_per_s']:,.0f} alerts/s "
                f"once the alerter had the hits."
            )
    for row in cases:
        if row["case"].startswith("warm-20k"):
            lines.append(
                f"- {CASE_TEXT[row['case']].capitalize()}: {row['remembered_hits']:,} hit ids remembered, "
                f'each a record of its own on "alert-state"; the policy record (the rest) is '
                f"{row['snapshot_bytes'] / 1000:,.1f} kB, queued in "
                f"{_ms(row['snapshot_save']['median_ms'], 1)} ms (median); {row['snapshot_save']['n']} "
                f"checkpoints in {row['batches']} batches of {row['hits']} hits."
            )
    return lines


def _gtts_sentence(g: dict) -> str:
    if g["gtts_ok"]:
        return "gTTS answered (online)"
    failed = g["gtts_failed_after"]["median_ms"]
    cause = g["failure"] or "unknown"
    reason = cause.split("the last: ", 1)[-1]
    short = reason
    for marker in (
        "NameResolutionError",
        "no answer within",
        "ConnectionError",
        "ConnectTimeout",
        "ProxyError",
    ):
        if marker in reason:
            short = marker if marker != "no answer within" else reason[:40]
            break
    return (
        f"gTTS gave up after {_ms(failed, 1)} ms (both attempts; {short[:80]}), espeak-ng spoke, and gTTS "
        f"was tried {max(g['gtts_tried_per_synthesizer'])} time(s) per synthesizer in all"
    )
