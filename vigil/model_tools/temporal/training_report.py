"""What the temporal scorer's report says beyond its figures: the model's response to a probe of
synthetic windows, the verdict against the threshold baselines, and TRAINING.md, the report's
prose and tables (written by train.py from report.json's contents).
"""

from __future__ import annotations

from pathlib import Path

from vigil.model_tools.temporal import data as dataset
from vigil.model_tools.temporal import evaluate
from vigil.model_tools.temporal.recipe import (
    ONNX_NAME,
    QUIET_KEEP,
    REPORT_NAME,
    SELECT_EPOCHS,
    TUNED_THRESHOLDS,
)


def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def figures_table(rows: dict[str, dict]) -> str:
    lines = [
        "| scorer | frame F1 | event precision | event recall | event F1 | TTD median (s) | TTD p90 (s) "
        "| false alerts | per query-hour of background |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, f in rows.items():
        lines.append(
            f"| {name} | {fmt(f['frame_f1'])} | {fmt(f['event_precision'])} | {fmt(f['event_recall'])} "
            f"({f['detected']}/{f['events']}) | {fmt(f['event_f1'])} | {fmt(f['ttd_median_s'], 1)} "
            f"| {fmt(f['ttd_p90_s'], 1)} | {f['false_alerts']} | {fmt(f['false_alerts_per_query_hour'], 2)} |"
        )
    return "\n".join(lines)


RESPONSE_LEVELS = (3.0, 5.0, 7.0, 9.0, 11.0)
RESPONSE_FRAMES = (1, 2, 3, 5, 10, 16, 30)


# The gate margins the probe feeds: a quiet frame's is the training replays' typical one (its
# median is about -0.03: some rival is always a little lifted), a raised frame passes the gate
# (PROBE_GATE_ON) or fails it (-PROBE_GATE_ON: another text explains the view better).
PROBE_GATE_QUIET, PROBE_GATE_ON = -0.03, 0.05


def response_probe(score) -> dict:
    """The model's answer at 1 frame/s to a quiet background (z alternating +-0.2 for 20 frames)
    followed by a plateau of z = level that passes the gate: probability at plateau frames 1,
    2, 3, 5, 10, 16, 30; the same plateaus failing the gate; and a one-frame spike of z = 8
    (the highest probability it gets)."""
    from vigil.pipelines.calibration import sigmoid
    from vigil.pipelines.temporal import FeatureWindow

    def trace(zs: list[float], gate_on: float = PROBE_GATE_ON) -> list[float]:
        window, out = FeatureWindow(), []
        for i, z in enumerate(zs):
            gate = gate_on if abs(z) > 1.0 else PROBE_GATE_QUIET
            window.push(START_MS + 1000 * i, z, sigmoid(z - evaluate.CALIBRATION["sigma_at_half"]), gate)
            out.append(float(score(window.matrix()[None])[0]))
        return out

    quiet = [0.2 * (-1) ** i for i in range(20)]
    plateau = {}
    for level in RESPONSE_LEVELS:
        values = trace(quiet + [level] * max(RESPONSE_FRAMES))
        plateau[str(level)] = [round(values[19 + n], 4) for n in RESPONSE_FRAMES]
    failing = {}
    for level in RESPONSE_LEVELS:
        values = trace(quiet + [level] * max(RESPONSE_FRAMES), gate_on=-PROBE_GATE_ON)
        failing[str(level)] = [round(values[19 + n], 4) for n in RESPONSE_FRAMES]
    spike = trace(quiet + [8.0] + [0.0] * 5)
    after = {}  # the object goes: 8 frames at z = level, then z = 0; frames 1..5 after
    for level in RESPONSE_LEVELS[-2:]:
        values = trace(quiet + [level] * 8 + [0.0] * 5)
        after[str(level)] = [round(v, 4) for v in values[28:33]]
    return {
        "frames": list(RESPONSE_FRAMES),
        "plateau": plateau,
        "plateau_failing_gate": failing,
        "spike_8_max": round(max(spike[20:]), 4),
        "after": after,
    }


START_MS = 1_700_000_000_000
SPLIT_HEADER = (
    "| split | sequences | frames | footage | photo events | (sequence, query) streams "
    "| positive query-frames | photos | clips |\n|---|---:|---:|---:|---:|---:|---:|---|---|"
)


def write_training_md(report: dict, path: Path) -> None:
    held, train, data = report["heldout"], report["train_figures"], report["data"]
    m, t, timings = report["model"], report["training"], report["timings"]
    fa_rows = "\n".join(
        f"| {name} | "
        + " | ".join(
            str(f["false_alerts_by_condition"].get(c, 0)) for c in ("plain", "light", "cut", "photo")
        )
        + " |"
        for name, f in held.items()
    )
    photo_rows = "\n".join(
        f"| {photo} | {', '.join(dataset.PHOTOS[photo].shows)} | {next(iter(counts.values()))[0]} | "
        + " | ".join(str(counts[name][1]) for name in held)
        + " |"
        for photo, counts in report["heldout_by_photo"].items()
    )
    splits = "\n".join(
        f"| {name} | {s['sequences']} | {s['frames']} | {s['seconds'] / 60:.0f} min | {s['events']} "
        f"| {s['streams']} | {s['positive_frames']} | {', '.join(s['photos'])} | {s['footage']} |"
        for name, s in data["splits"].items()
    )
    selection = "\n".join(
        f"| {pw} | {fmt(f['event_f1'])} | {fmt(f['event_precision'])} | {fmt(f['event_recall'])} "
        f"| {fmt(f['frame_f1'])} |"
        for pw, f in t["selection"]["candidates"].items()
    )
    response = report["response"]
    response_rows = "\n".join(
        f"| {level} | " + " | ".join(f"{p:.2f}" for p in values) + " |"
        for level, values in response["plateau"].items()
    )
    failing_rows = "\n".join(
        f"| {level} | " + " | ".join(f"{p:.2f}" for p in values) + " |"
        for level, values in response["plateau_failing_gate"].items()
    )
    tuned = report["tuned_threshold"]
    after_text = "; ".join(
        f"z {level}: " + ", ".join(f"{p:.2f}" for p in values) for level, values in response["after"].items()
    )
    text = f"""# GRU temporal scorer: training report

Generated by `python -m vigil.model_tools.temporal.train` (run by `make models` when the model is
missing or its sources changed) from the committed scripts and seeds; `--check` retrains in a
scratch folder and verifies that `{ONNX_NAME}` and `{REPORT_NAME}` reproduce. Every figure
here is in `{REPORT_NAME}`.

## Model

`{m["name"]}`: a 1-layer GRU (hidden {m["hidden"]}, {m["parameters"]} parameters) over the last
{m["window"]} frames of one (camera, query)'s calibration features ({", ".join(m["features"])};
pipelines/temporal.py), then a linear head and a sigmoid: the probability that the queried
event is on at the window's last frame. Stateless: the whole window is scored at every frame.
ONNX opset {m["opset"]}, dynamic batch, {m["onnx_bytes"]} bytes; onnxruntime vs torch max abs
difference {report["parity"]["max_abs_diff"]:.1e} over {report["parity"]["windows"]} held-out windows.

## Data

Real footage with real photos pasted in for known spans (vigil/model_tools/temporal/data/). A sequence
is one camera at 1 or 2 frames/s for {dataset.DURATION_S[0]:.0f}-{dataset.DURATION_S[1]:.0f} s
(timing jitter, {dataset.DROP_P:.0%} dropped frames, some stalls of
{dataset.STALL[1]:.0f}-{dataset.STALL[2]:.0f} s): its scene played back and forth, sometimes cut
to another clip for {dataset.CUT[1]:.0f}-{dataset.CUT[2]:.0f} s or under a sudden lighting change
(gain {" or ".join(str(g) for g in dataset.LIGHT[3])}), with 1-3 photo events of
{dataset.EVENT_S[0]:.0f}-{dataset.EVENT_S[1]:.0f} s (one in five
{dataset.LONG_EVENT[1]:.0f}-{dataset.LONG_EVENT[2]:.0f} s), the photo
{dataset.PHOTO_WIDTH[0]:.0%}-{dataset.PHOTO_WIDTH[1]:.0%} of the frame's width, randomly cropped
and placed, some fading in and out, some half hidden for 1-3 s. {data["queries"]} queries: every
object in English and in Vietnamese, 5 of the objects never pasted anywhere. A (sequence,
query) stream is labelled 1 on the frames that show a photo of the query's object.
{data["frames_embedded"]} distinct frames, embedded by the offline encoder
(`{report["encoder"]}`).

{SPLIT_HEADER}
{splits}

The two sides share no source frame and no photo; the held-out photos show objects the
training photos also show (a cat, fruit) and objects they never do (motorcycle, squirrel,
football player, apple). Calibration is the live detector's (pipelines/detector.py): margin
signal (cosine with the query's prompt ensemble minus the best background prompt), running
background per (camera, query) learnt only while the machine is idle, min std
{report["calibration"]["min_std"]}, warm-up {report["calibration"]["warmup_frames"]} frames, prior
{report["calibration"]["prior"]}. So is the discriminative gate, on by default live
(pipelines/discrimination.py): each frame's gate margin is the query's lift over its running
camera baseline less the highest lift of its rivals (the other queries of its language, less
synonyms: a sequence is replayed as two cameras, one per language, with
{report["gate"]["rivals_median"]:g} rivals per query at the median, plus its language's
{report["gate"]["negatives_median"]:g} negatives); it is the model's `gate` feature (scaled by
{report["gate"]["scale"]}, clipped at +-1; {report["gate"]["within_scale_pct"]:.0f} % of the training
frames' margins lie within the scale; it passes on {report["gate"]["passing_pct_photo_shown"]:.0f} % of
the frames that show the query's photo and on {report["gate"]["passing_pct_otherwise"]:.0f} % of the others),
and a frame whose margin is not above {report["gate"]["min_margin"]} may open or confirm no event,
whichever scorer drives the machine.

## Training

The training sequences are replayed with the per-frame threshold (and the gate) driving the state machine;
each frame's window and label make one example: {t["windows"]} windows ({t["positives"]}
positive; quiet windows thinned 1 in {QUIET_KEEP} and weighted {QUIET_KEEP}). Weighted binary
cross-entropy, Adam (one-cycle, peak lr {t["learning_rate"]}), batch {t["batch"]}, seed {t["seed"]},
torch {t["torch"]} on CPU, one thread, deterministic algorithms.

Positive windows weigh `pos_weight` more: with plain cross-entropy no window reaches 0.5 (the
encoder confuses objects, so even a high z is more often another object than the query's),
and the machine would never fire. The weight was chosen by event F1 on a validation part of
the training sequences ({t["selection"]["validation_sequences"]} sequences, every fifth; models trained on
the rest for {SELECT_EPOCHS} epochs); the held-out sequences played no part. Output p is thus the
probability under a prior that counts positives {t["pos_weight"]:g} times; the calibrated
probability is p / (p + {t["pos_weight"]:g} (1 - p)).

| pos_weight | validation event F1 | precision | recall | frame F1 |
|---:|---:|---:|---:|---:|
{selection}

Chosen: {t["pos_weight"]:g}; final model {t["epochs"]} epochs on all training sequences, loss per
epoch {", ".join(f"{x:.4f}" for x in t["losses"])}. Training took {t["seconds"]:.0f} s, the whole run
{timings["total_s"]:.0f} s (weight selection {timings["selection_s"]:.0f} s, evaluation
{timings["evaluation_s"]:.0f} s, embedding {timings["embedding_s"]:.0f} s for
{timings["frames_embedded_now"]} frames not yet cached; all {data["frames_embedded"]} take about
2.5 min on 2 cores).

## Held-out evaluation

Each scorer drives the same match state machine (enter 0.5, exit 0.35, minimum duration 1 s,
cooldown 10 s, a gap over 5 s ends an event) in closed loop over the
{data["splits"]["heldout"]["sequences"]} held-out sequences: what it decides also decides what the
calibrator learns. "baseline (auto 0.5)" thresholds the calibrated score at 0.5; "baseline
(tuned {tuned})" is the same with the enter threshold chosen on the training sequences (best
event F1 over {", ".join(str(x) for x in TUNED_THRESHOLDS)}; exit 0.7 x enter), a fairer
opponent for a trained model. Definitions (vigil/model_tools/temporal/evaluate.py): frame F1 of
score >= enter per query-frame; an event is detected by the first confirmed hit overlapping
it; time to detect (TTD) from the first frame showing the photo to the frame that confirmed
the hit (the 1 s minimum duration included); a false alert is a hit overlapping no event of its
query, counted per hour of background per standing query
({held["gru"]["background_query_hours"]:.1f} query-hours of background in all).

{figures_table(held)}

False alerts by what the frame showed when they started ("photo": a photo of another object):

| scorer | plain scene | lighting change | cut to another clip | another object's photo |
|---|---:|---:|---:|---:|
{fa_rows}

Held-out events detected, by photo:

| photo | objects | events | {" | ".join(held)} |
|---|---|---:|{"---:|" * len(held)}
{photo_rows}

Training sequences (over-fitting check, not a result):

{figures_table(train)}

## What the GRU learnt

Its probability at 1 frame/s after 20 quiet frames (gate margin {PROBE_GATE_QUIET}), on a
plateau of z (standard deviations over the background) held for n frames whose view passes the
gate (margin +{PROBE_GATE_ON}); a one-frame spike to z = 8 peaks at
{response["spike_8_max"]:.2f}:

| z \\ n | {" | ".join(str(n) for n in response["frames"])} |
|---:|{"---:|" * len(response["frames"])}
{response_rows}

The same plateaus when another text explains the view better (gate margin -{PROBE_GATE_ON}; the
live detector would also keep such frames from opening an event):

| z \\ n | {" | ".join(str(n) for n in response["frames"])} |
|---:|{"---:|" * len(response["frames"])}
{failing_rows}

When the object goes (8 frames at z = 9 or 11, then z = 0), the probability over the next 5
frames: {after_text}.

## Verdict

{report["verdict"]}

{ANALYSIS}
"""
    path.write_text(_reflow(text.rstrip()) + "\n")


def _reflow(text: str, width: int = 96) -> str:
    """Re-wrap the prose paragraphs (not tables, lists, headings) of generated markdown."""
    import textwrap

    blocks = []
    for block in text.split("\n\n"):
        if block.lstrip().startswith(("|", "-", "#", "```")) or "\n|" in block:
            blocks.append(block)
        else:
            blocks.append(textwrap.fill(" ".join(block.split()), width=width))
    return "\n\n".join(blocks)


ANALYSIS = """What the gate feature changed, and why the GRU still gains no more than noise:

- The gate did most of the work, for both scorers. The first model (`vigil-temporal-gru-v1`,
  six features, replays without the gate) was judged against an ungated threshold that
  raised 15.3 false alerts per query-hour on these held-out sequences at event F1 0.164; the
  gated threshold raises 1.33 at event F1 0.335. What the GRU used to gain (precision: it
  asked for a high, sustained z) the gate now gives the threshold directly.
- The GRU learnt the gate (the tables above): on a view that passes it, z = 3 held for three
  frames reaches 0.79; on one that fails it, z <= 5 stays under 0.3 for five frames. A failing
  margin held for ten frames or more is believed anyway (0.42 to 0.83), because in the training
  replays only 29 % of the frames that show the query's photo pass the gate (a large photo
  lifts its neighbours' texts as well), against 3 % of the others. Live, such frames still
  cannot open an event (the gate applies after the model), so this only keeps an open event
  open.
- Against the gated threshold it is level: 2 more held-out events found (48 against 46 of
  164) and 6 more false alerts (68 against 62 in 46.6 query-hours), both within noise. On the
  project's evaluation (`vigil eval`, docs/EVALUATION.md) it now finds as many events as the
  threshold on the tune split, in both languages, where the first model found fewer.
- The remaining false alerts are another object's photo and the plain scene (the table by
  condition): the offline encoder's confusions. Seen through one query's scores such a frame
  looks like the query's object appearing, and the gate passes when the confused text is not
  among the camera's queries or negatives.
- Recall is lost on photos the encoder barely sees (the faust cat, messi; see "by photo"):
  their z rarely leaves the background's range and their gate rarely passes, so neither
  scorer can find them. That needs a better encoder, not a better temporal model.
- Long plateaus now hold (0.8 and over after 30 frames), since the gate tells a lasting
  object of the query's from a cut to another scene better than z alone did. Event ends lag
  by two frames: after the object goes the probability stays over the exit threshold (0.35)
  for two more frames.
- Held-out scarcity: 164 ground-truth events; differences of a few hundredths in F1 are
  within noise.
"""


def verdict_text(held: dict, tuned_name: str) -> str:
    gru, base, tuned = held["gru"], held["baseline (auto 0.5)"], held[tuned_name]

    def compare(other: dict) -> str:
        parts = []
        for key, label in (
            ("event_f1", "event F1"),
            ("event_precision", "event precision"),
            ("event_recall", "event recall"),
            ("frame_f1", "frame F1"),
            ("false_alerts_per_query_hour", "false alerts per query-hour"),
            ("ttd_median_s", "median TTD (s)"),
            ("ttd_p90_s", "p90 TTD (s)"),
        ):
            parts.append(f"{label} {fmt(gru[key], 3)} vs {fmt(other[key], 3)}")
        return "; ".join(parts)

    beats = (
        gru["event_f1"] > base["event_f1"]
        and gru["false_alerts_per_query_hour"] < base["false_alerts_per_query_hour"]
    )
    head = (
        "The GRU beats the per-frame threshold baseline (auto 0.5) on the held-out sequences"
        if beats
        else "The GRU does NOT beat the per-frame threshold baseline (auto 0.5) on the held-out sequences"
    )
    versus_tuned = "above" if gru["event_f1"] > tuned["event_f1"] else "not above"
    return (
        f"{head}: {compare(base)} (GRU first). Against the threshold tuned on the training "
        f"sequences ({tuned_name}) its event F1 is {versus_tuned} it: {compare(tuned)}."
    )
