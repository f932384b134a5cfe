"""Train the GRU temporal scorer, export it to ONNX, evaluate it against the per-frame threshold
baseline on held-out sequences, and write its report (run by `make models`).

    python -m vigil.models.temporal.train             # everything; a few minutes on 2 cores
    python -m vigil.models.temporal.train --if-stale  # only when gru.onnx is missing or was made
                                                      # from other sources (what `make models` runs)
    python -m vigil.models.temporal.train --check     # retrain into a scratch folder; verify that
                                                      # the committed model and report reproduce

Steps (data: models/temporal/data.py; replay and figures: models/temporal/evaluate.py):
1. draw the labelled sequences (fixed seeds), render their frames from real footage and real
   photos and embed them with the offline encoder (cached under var/temporal/);
2. embed the queries as the live detector does (pipelines.prompts: prompt ensembles, background
   prompts) and replay every training sequence through the live detector's calibration,
   discriminative gate and match state machine (the per-frame threshold driving it), keeping
   each frame's features;
3. train a 1-layer GRU over the 16-frame feature windows to give, at the window's last frame,
   the probability that the queried object is shown (binary cross-entropy, positives weighted
   by a factor chosen on a validation part of the training sequences; torch on CPU, one
   thread, fixed seed, deterministic algorithms);
4. export it to ONNX (opset 18, dynamic batch) and check onnxruntime against torch;
5. replay the held-out sequences in closed loop with each scorer driving the same match state
   machine: the baseline (calibrated score >= 0.5, "auto"), the baseline with its threshold
   tuned on the training sequences, and the GRU (probability >= 0.5);
6. write gru.onnx, report.json, TRAINING.md and the reference tensors the tests compare with.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vigil.models.encoder import sha256_file
from vigil.models.temporal import data as dataset
from vigil.models.temporal import evaluate
from vigil.paths import REPO_ROOT
from vigil.pipelines.temporal import FEATURE_NAMES, TEMPORAL_WINDOW, sliding_windows

log = logging.getLogger("vigil.models.temporal")

MODEL_DIR = Path(__file__).resolve().parent
ONNX_NAME = "gru.onnx"
REPORT_NAME = "report.json"
TRAINING_NAME = "TRAINING.md"
REFERENCE_PATH = REPO_ROOT / "tests" / "models" / "data" / "temporal_reference.npz"
MODEL_NAME = "vigil-temporal-gru-v2"
# What the model is made from: a change to any of these makes `--if-stale` retrain.
SOURCES = (
    "models/temporal/train.py",
    "models/temporal/data.py",
    "models/temporal/evaluate.py",
    "pipelines/temporal.py",
    "models/temporal/inputs.py",
)

SEED = 1337
HIDDEN = 24
EPOCHS = 10
BATCH = 512
LEARNING_RATE = 3e-3
OPSET = 18
TUNED_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
# Positives are ~1 % of the windows and many of them look like the background to the encoder,
# so plain cross-entropy puts no window over 0.5. Positive windows weigh `pos_weight` times
# more; the output is then the probability under that reweighted prior (the calibrated one is
# p / (p + w (1 - p))), which puts the machine's enter threshold of 0.5 at the operating point
# chosen. `pos_weight` is chosen by event F1 on a validation part of the TRAINING sequences
# (every fifth), models trained on the other four fifths for SELECT_EPOCHS epochs.
POS_WEIGHTS = (3.0, 6.0, 10.0, 20.0)
SELECT_EPOCHS = 5
VALIDATION_EVERY = 5
# Quiet windows (no label, calibrated score under QUIET in every frame) are most of the data and
# easy: one in QUIET_KEEP is kept, weighing QUIET_KEEP, so the loss is unchanged in expectation.
QUIET = 0.05
QUIET_KEEP = 4


# ------------------------------------------------------------------------------- data


def sources_sha256() -> str:
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update(name.encode())
        digest.update((REPO_ROOT / name).read_bytes())
    return digest.hexdigest()


def score_prior(info):
    """The live detector's prior (pipelines.calibration.score_prior_for), when there is one."""
    try:
        from vigil.pipelines.calibration import score_prior_for
    except ImportError:  # an older checkout: prior-less warm-up, as its detector does
        return None
    return score_prior_for(info)


def frame_conditions(sequence: dataset.Sequence) -> list[str]:
    """What each frame shows besides the camera's own scene, for the false-alert breakdown."""
    base = sequence.pieces[0].segment
    conditions = []
    for t in sequence.times_s:
        if sequence.event_at(t) is not None:
            conditions.append("photo")
        elif sequence.piece_at(t).segment != base:
            conditions.append("cut")
        elif sequence.gain_at(t) != 1.0:
            conditions.append("light")
        else:
            conditions.append("plain")
    return conditions


def gate_inputs(
    frames: np.ndarray, chosen: list[dataset.Query], vectors: dict, settings
) -> tuple[list[np.ndarray], list[tuple[int, ...]]]:
    """Per query: its gate's cosines on every frame ((n, 1 + negatives): its text, then the
    negatives of its language its gate counts) and its rivals' indexes. A sequence is replayed
    as two cameras, one with the queries in each language (as an operator registers them), so
    a query's rivals are the other queries of its language (rivals_for drops synonyms)."""
    from vigil.pipelines.discrimination import gate_negatives, rivals_for

    cosines, rivals = [], []
    for query in chosen:
        mine = vectors[query.key]
        texts = np.concatenate([mine.text[None, :], gate_negatives(mine, settings)])
        cosines.append((frames @ texts.T).astype(np.float32))
        camera = {str(i): vectors[q.key] for i, q in enumerate(chosen) if q.language == query.language}
        rivals.append(tuple(int(i) for i in rivals_for(mine, camera, settings)))
    return cosines, rivals


def build_inputs(encoder, timings: dict) -> dict[str, list[tuple[dataset.Sequence, evaluate.SequenceInput]]]:
    from vigil.pipelines.discrimination import DiscriminationSettings
    from vigil.pipelines.prompts import embed_queries, query_scores

    started = time.perf_counter()
    sequences = {name: dataset.draw_sequences(split) for name, split in dataset.SPLITS.items()}
    recipes = {s.name: dataset.frame_recipes(s) for split in sequences.values() for s in split}
    cache = dataset.EmbeddingCache(dataset.encoder_fingerprint(encoder))
    embedded = dataset.embed_recipes(encoder, [r for rs in recipes.values() for r in rs], cache)
    timings["embedding_s"] = time.perf_counter() - started
    timings["frames_embedded_now"] = embedded
    queries = dataset.all_queries()
    vectors = dict(
        zip(
            [q.key for q in queries],
            embed_queries(encoder, [q.text for q in queries], [q.language for q in queries]),
            strict=True,
        )
    )
    settings = DiscriminationSettings.for_encoder(encoder.info)  # the live detector's default
    inputs: dict[str, list] = {}
    for split, drawn in sequences.items():
        inputs[split] = []
        for sequence in drawn:
            frames = np.stack([cache.vectors[r.key()] for r in recipes[sequence.name]])
            chosen = sequence.queries()
            scores = [query_scores(frames, vectors[q.key]) for q in chosen]
            gate_cosines, rivals = gate_inputs(frames, chosen, vectors, settings)
            inputs[split].append(
                (
                    sequence,
                    evaluate.SequenceInput(
                        name=sequence.name,
                        ts_ms=sequence.ts_ms(),
                        raw=np.stack([raw for raw, _ in scores]).astype(np.float32),
                        background=np.stack([bg for _, bg in scores]).astype(np.float32),
                        labels=np.stack([sequence.labels(q) for q in chosen]),
                        query_keys=[q.key for q in chosen],
                        conditions=frame_conditions(sequence),
                        gate_cosines=gate_cosines,
                        rivals=rivals,
                    ),
                )
            )
    return inputs


def gate_summary(inputs, results: list[evaluate.StreamResult]) -> dict:
    """The gate as the training replays saw it: rivals and negatives per query (medians), and
    how many frames' margins lie within the feature's scale (the rest are clipped)."""
    from vigil.pipelines.temporal import GATE_SCALE

    gate = FEATURE_NAMES.index("gate")
    present = [r.rows[:, FEATURE_NAMES.index("present")] > 0 for r in results]
    rows = np.concatenate([r.rows[m] for r, m in zip(results, present, strict=True)])
    labels = np.concatenate([r.labels[m] for r, m in zip(results, present, strict=True)])
    return {
        "scale": GATE_SCALE,
        "min_margin": evaluate.GATE_MIN_MARGIN,
        "rivals_median": float(np.median([len(r) for _, i in inputs for r in i.rivals])),
        "negatives_median": float(np.median([c.shape[1] - 1 for _, i in inputs for c in i.gate_cosines])),
        "within_scale_pct": round(100.0 * float((np.abs(rows[:, gate]) < 1.0).mean()), 1),
        "passing_pct_photo_shown": round(100.0 * float((rows[labels == 1, gate] > 0).mean()), 1),
        "passing_pct_otherwise": round(100.0 * float((rows[labels == 0, gate] > 0).mean()), 1),
    }


def replay(inputs, prior, scorer=None, match=evaluate.MATCH) -> list[evaluate.StreamResult]:
    results = []
    for _, sequence_input in inputs:
        results.extend(evaluate.run_sequence(sequence_input, prior, scorer, match))
    return results


def training_windows(results: list[evaluate.StreamResult]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(windows, labels, weights): every window of every stream, quiet ones thinned (see QUIET)."""
    windows = np.concatenate([sliding_windows(r.rows, TEMPORAL_WINDOW) for r in results])
    labels = np.concatenate([r.labels for r in results]).astype(np.float32)
    quiet = (labels == 0) & (windows[:, :, 0].max(axis=1) < QUIET)
    keep = ~quiet | (np.random.default_rng(SEED).integers(QUIET_KEEP, size=len(labels)) == 0)
    weights = np.where(quiet, float(QUIET_KEEP), 1.0).astype(np.float32)
    return windows[keep], labels[keep], weights[keep]


# ------------------------------------------------------------------------------ model


def build_model(hidden: int = HIDDEN):
    import torch

    class TemporalGRU(torch.nn.Module):
        """(batch, window, features) -> (batch,) probability that the event is on at the last frame."""

        def __init__(self) -> None:
            super().__init__()
            self.gru = torch.nn.GRU(len(FEATURE_NAMES), hidden, num_layers=1, batch_first=True)
            self.head = torch.nn.Linear(hidden, 1)

        def logits(self, windows):
            out, _ = self.gru(windows)
            return self.head(out[:, -1, :]).squeeze(-1)

        def forward(self, windows):
            return torch.sigmoid(self.logits(windows))

    return TemporalGRU()


def train_model(
    windows: np.ndarray, labels: np.ndarray, weights: np.ndarray, pos_weight: float, epochs: int
) -> tuple[object, list[float]]:
    """A GRU fitted from the same seed: deterministic on one machine (one thread)."""
    import torch

    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    model = build_model()
    x = torch.from_numpy(windows)
    y = torch.from_numpy(labels)
    w = torch.from_numpy(weights) * torch.where(y > 0, pos_weight, 1.0)
    optimiser = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    steps_per_epoch = math.ceil(len(x) / BATCH)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=LEARNING_RATE, total_steps=epochs * steps_per_epoch, pct_start=0.1
    )
    generator = torch.Generator().manual_seed(SEED)
    losses = []
    started = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for start in range(0, len(x), BATCH):
            index = order[start : start + BATCH]
            optimiser.zero_grad()
            loss = (
                torch.nn.functional.binary_cross_entropy_with_logits(
                    model.logits(x[index]), y[index], weight=w[index], reduction="sum"
                )
                / w[index].sum()
            )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(index)
        losses.append(total / len(x))
        log.info(
            "pos_weight %g, epoch %d/%d: loss %.5f (%.0f s)",
            pos_weight,
            epoch + 1,
            epochs,
            losses[-1],
            time.perf_counter() - started,
        )
    model.eval()
    return model, losses


def select_pos_weight(train_inputs, train_results, prior) -> tuple[float, dict]:
    """The POS_WEIGHTS value whose model has the best event F1 on the validation part of the
    training sequences (ties: the smaller weight), and every candidate's validation figures."""
    validation_names = {
        s.name for i, (s, _) in enumerate(train_inputs) if i % VALIDATION_EVERY == VALIDATION_EVERY - 1
    }
    fit = training_windows([r for r in train_results if r.sequence not in validation_names])
    validation = [entry for entry in train_inputs if entry[0].name in validation_names]
    masks = [r.z_known & (r.labels == 0) for r in train_results if r.sequence in validation_names]
    figures = {}
    for pos_weight in POS_WEIGHTS:
        model, _ = train_model(*fit, pos_weight=pos_weight, epochs=SELECT_EPOCHS)
        results = replay(validation, prior, lambda w, m=model: torch_scores(m, w))
        f = evaluate.score_streams(results, masks, 0.5)
        figures[str(pos_weight)] = {
            k: f[k] for k in ("event_f1", "event_precision", "event_recall", "frame_f1")
        }
        log.info("pos_weight %g: validation event F1 %.3f", pos_weight, f["event_f1"])
    best = max(POS_WEIGHTS, key=lambda pw: (round(figures[str(pw)]["event_f1"], 9), -pw))
    return best, {"validation_sequences": len(validation), "candidates": figures}


def export_onnx(model, path: Path) -> None:
    import onnx
    import torch

    example = torch.zeros(2, TEMPORAL_WINDOW, len(FEATURE_NAMES))
    partial = path.with_suffix(".onnx.tmp")
    with torch.no_grad():
        torch.onnx.export(
            model,
            (example,),
            str(partial),
            input_names=["windows"],
            output_names=["probability"],
            dynamic_shapes={"windows": {0: torch.export.Dim("batch", min=1, max=65536)}},
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    proto = onnx.load(str(partial))
    del proto.metadata_props[:]  # the exporter's node-name notes: noise, and they vary by version
    for key, value in {
        "name": MODEL_NAME,
        "window": str(TEMPORAL_WINDOW),
        "features": ",".join(FEATURE_NAMES),
        "hidden": str(HIDDEN),
        "training_report": f"models/temporal/{TRAINING_NAME}",
    }.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name, proto.doc_string = "vigil models/temporal/train.py", MODEL_NAME
    onnx.save(proto, str(partial))
    partial.replace(path)


def torch_scores(model, windows: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.from_numpy(np.asarray(windows, np.float32))).numpy()


# ----------------------------------------------------------------------------- report


def reference_windows(results: list[evaluate.StreamResult], count: int = 24) -> np.ndarray:
    """Held-out windows that exercise the model: onsets, ongoing events, their ends, warm-up
    (left padding, z unknown), stalls, busy background; picked deterministically."""
    picks: list[np.ndarray] = []

    def take(result: evaluate.StreamResult, index: int) -> None:
        picks.append(sliding_windows(result.rows[: index + 1], TEMPORAL_WINDOW)[-1])

    first = results[0]
    take(first, 0)  # one frame: 15 rows of padding
    take(first, 5)
    take(first, 40)
    for result in results:
        if len(picks) >= count // 2:
            break
        for a, b in evaluate.true_events(result.labels):
            take(result, a)
            take(result, min(b + 1, len(result.labels) - 1))
            break
    gaps = [(r, int(np.argmax(r.rows[:, 3]))) for r in results if r.rows[:, 3].max() >= 0.4]
    for result, index in gaps[:2]:
        take(result, index)
    busy = sorted(((float(r.calibrated.max()), i) for i, r in enumerate(results) if not r.labels.any()))
    for _, i in busy[-(count - len(picks)) :]:
        take(results[i], int(np.argmax(results[i].calibrated)))
    return np.stack(picks[:count]).astype(np.float32)


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

Generated by `python -m vigil.models.temporal.train` (run by `make models` when the model is
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

Real footage with real photos pasted in for known spans (models/temporal/data.py). A sequence
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
opponent for a trained model. Definitions (models/temporal/evaluate.py): frame F1 of
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


# ------------------------------------------------------------------------------- main


def run(out_dir: Path, reference_path: Path | None) -> dict:
    import onnxruntime
    import torch

    from vigil.models.offline.encoder import OfflineEncoder
    from vigil.models.temporal import TemporalScorer

    started = time.perf_counter()
    timings: dict = {}
    encoder = OfflineEncoder.load(device="cpu")
    prior = score_prior(encoder.info)
    inputs = build_inputs(encoder, timings)

    t0 = time.perf_counter()
    train_base = replay(inputs["train"], prior)
    windows, labels, weights = training_windows(train_base)
    timings["features_s"] = time.perf_counter() - t0
    log.info("training windows: %d (%d positive)", len(windows), int(labels.sum()))
    t0 = time.perf_counter()
    pos_weight, selection = select_pos_weight(inputs["train"], train_base, prior)
    timings["selection_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    model, losses = train_model(windows, labels, weights, pos_weight, EPOCHS)
    timings["training_s"] = time.perf_counter() - t0

    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / ONNX_NAME
    export_onnx(model, onnx_path)
    scorer = TemporalScorer.load(onnx_path, device="cpu")

    t0 = time.perf_counter()
    held_base = replay(inputs["heldout"], prior)
    masks = [r.z_known & (r.labels == 0) for r in held_base]
    train_masks = [r.z_known & (r.labels == 0) for r in train_base]
    tuned = {}
    for threshold in TUNED_THRESHOLDS:
        match = evaluate.MatchSettings(
            enter=threshold, exit=0.7 * threshold, min_duration_ms=1_000, cooldown_ms=10_000, max_gap_ms=5_000
        )
        results = replay(inputs["train"], prior, None, match)
        tuned[threshold] = (evaluate.score_streams(results, train_masks, threshold)["event_f1"], match)
    best = max(TUNED_THRESHOLDS, key=lambda th: (tuned[th][0], -abs(th - 0.5)))
    held_tuned = replay(inputs["heldout"], prior, None, tuned[best][1])
    held_gru = replay(inputs["heldout"], prior, scorer.score)
    train_gru = replay(inputs["train"], prior, scorer.score)
    timings["evaluation_s"] = time.perf_counter() - t0

    held = {
        "baseline (auto 0.5)": evaluate.score_streams(held_base, masks, 0.5),
        f"baseline (tuned {best})": evaluate.score_streams(held_tuned, masks, best),
        "gru": evaluate.score_streams(held_gru, masks, 0.5),
    }
    train_figures = {
        "baseline (auto 0.5)": evaluate.score_streams(train_base, train_masks, 0.5),
        "gru": evaluate.score_streams(train_gru, train_masks, 0.5),
    }
    sequences = {s.name: s for split in inputs.values() for s, _ in split}

    def photo_of(result: evaluate.StreamResult, first: int) -> str:
        sequence = sequences[result.sequence]
        return sequence.event_at(sequence.times_s[first]).photo

    by_photo: dict[str, dict[str, list[int]]] = {}
    for name, results in zip(held, (held_base, held_tuned, held_gru), strict=True):
        for photo, counts in evaluate.detections_by_photo(results, photo_of).items():
            by_photo.setdefault(photo, {})[name] = counts

    reference = reference_windows(held_base)
    ort_out = scorer.score(reference)
    torch_out = torch_scores(model, reference)
    parity_windows = np.concatenate([sliding_windows(r.rows, TEMPORAL_WINDOW) for r in held_base[:40]])
    parity = float(np.abs(scorer.score(parity_windows) - torch_scores(model, parity_windows)).max())
    if reference_path is not None:
        reference_path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            reference_path,
            windows=reference,
            expected=torch_out.astype(np.float32),
            onnx_sha256=np.array(scorer.info["sha256"]),
        )

    def split_figures(name: str) -> dict:
        split = dataset.SPLITS[name]
        entries = inputs[name]
        return {
            "sequences": len(entries),
            "frames": int(sum(len(s.times_s) for s, _ in entries)),
            "seconds": float(sum(s.duration_s for s, _ in entries)),
            "events": int(sum(len(s.events) for s, _ in entries)),
            "streams": int(sum(len(i.query_keys) for _, i in entries)),
            "positive_frames": int(sum(int(i.labels.sum()) for _, i in entries)),
            "photos": list(split.photos),
            "footage": ", ".join(
                f"{seg.clip} {seg.start_s:g}-{seg.end_s:g} s" for seg in (split.base, *split.cuts)
            ),
        }

    recipes = {r.key() for split in inputs.values() for s, _ in split for r in dataset.frame_recipes(s)}
    timings["total_s"] = time.perf_counter() - started
    report = {
        "model": {
            "name": MODEL_NAME,
            "onnx": f"models/temporal/{ONNX_NAME}",
            "onnx_sha256": sha256_file(onnx_path),
            "onnx_bytes": onnx_path.stat().st_size,
            "window": TEMPORAL_WINDOW,
            "features": list(FEATURE_NAMES),
            "hidden": HIDDEN,
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "opset": OPSET,
        },
        "encoder": encoder.info.name,
        "calibration": {
            "signal": "margin: cosine with the query's prompt ensemble - max cosine with background prompts",
            "prior": "none (prior-less warm-up)"
            if prior is None
            else f"mean {prior.mean:.5f}, std {prior.std:.5f}, weight {prior.weight:g} (score_prior_for)",
            **evaluate.CALIBRATION,
        },
        "gate": gate_summary(inputs["train"], train_base),
        "data": {
            "fps": "1 or 2",
            "duration_s": list(dataset.DURATION_S),
            "queries": len(dataset.all_queries()),
            "frames_embedded": len(recipes),
            "splits": {name: split_figures(name) for name in dataset.SPLITS},
            "sources": dataset.sources_report(),
        },
        "training": {
            "seed": SEED,
            "epochs": EPOCHS,
            "select_epochs": SELECT_EPOCHS,
            "batch": BATCH,
            "learning_rate": LEARNING_RATE,
            "pos_weight": pos_weight,
            "selection": selection,
            "windows": int(len(windows)),
            "windows_weighted": float(weights.sum()),
            "positives": int(labels.sum()),
            "losses": [round(x, 6) for x in losses],
            "seconds": timings["training_s"],
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
            "python": platform.python_version(),
        },
        "parity": {"max_abs_diff": parity, "windows": int(len(parity_windows))},
        "reference": {
            "windows": int(len(reference)),
            "max_abs_diff": float(np.abs(ort_out - torch_out).max()),
        },
        "tuned_threshold": best,
        "tuned_search": {str(th): round(f1, 6) for th, (f1, _) in tuned.items()},
        "heldout": held,
        "heldout_by_photo": by_photo,
        "train_figures": train_figures,
        "response": response_probe(scorer.score),
        "verdict": verdict_text(held, f"baseline (tuned {best})"),
        "timings": {k: (round(v, 1) if isinstance(v, float) else v) for k, v in timings.items()},
        "sources_sha256": sources_sha256(),
    }
    (out_dir / REPORT_NAME).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    write_training_md(report, out_dir / TRAINING_NAME)
    return report


def _comparable(report: dict) -> dict:
    copy = json.loads(json.dumps(report))
    copy.pop("timings", None)
    copy["training"].pop("seconds", None)
    copy["model"].pop("onnx_sha256", None)
    copy["model"].pop("onnx_bytes", None)
    return copy


def check() -> int:
    """Retrain into a scratch folder and compare with the committed model and report."""
    from vigil.models.temporal import TemporalScorer

    committed = json.loads((MODEL_DIR / REPORT_NAME).read_text())
    with tempfile.TemporaryDirectory(prefix="vigil-temporal-check-") as scratch:
        fresh = run(Path(scratch), reference_path=None)
        reference = np.load(REFERENCE_PATH)
        windows = reference["windows"]
        new = TemporalScorer.load(Path(scratch) / ONNX_NAME).score(windows)
        old = TemporalScorer.load(MODEL_DIR / ONNX_NAME).score(windows)
    diff = float(np.abs(new - old).max())
    same_report = _comparable(fresh) == _comparable(committed)
    print(
        f"retrained model vs committed {ONNX_NAME}: max abs difference {diff:.2e} on {len(windows)} windows"
    )
    print(f"report figures {'match' if same_report else 'DIFFER from'} the committed {REPORT_NAME}")
    if not same_report:
        a, b = _comparable(fresh), _comparable(committed)
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                print(f"  differs: {key}")
    return 0 if diff <= 1e-5 and same_report else 1


def stale() -> str | None:
    """Why the committed model must be rebuilt, or None when it is up to date."""
    onnx_path, report_path = MODEL_DIR / ONNX_NAME, MODEL_DIR / REPORT_NAME
    if not onnx_path.is_file() or not report_path.is_file():
        return f"{ONNX_NAME} or {REPORT_NAME} is missing"
    report = json.loads(report_path.read_text())
    if report.get("model", {}).get("onnx_sha256") != sha256_file(onnx_path):
        return f"{ONNX_NAME} is not the model {REPORT_NAME} describes"
    if report.get("sources_sha256") != sources_sha256():
        return f"its sources ({', '.join(SOURCES)}) changed since it was trained"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train, export and evaluate the GRU temporal scorer.")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--if-stale", action="store_true", help="train only when the committed model is out of date"
    )
    mode.add_argument("--check", action="store_true", help="retrain in a scratch folder and compare")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    if args.check:
        return check()
    if args.if_stale:
        reason = stale()
        if reason is None:
            print(f"models/temporal/{ONNX_NAME} is up to date")
            return 0
        print(f"training the temporal scorer: {reason}")
    report = run(MODEL_DIR, REFERENCE_PATH)
    print(report["verdict"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
