"""Train the GRU temporal scorer, export it to ONNX, evaluate it against the per-frame threshold
baseline on held-out sequences, and write its report (run by `make models`).

    python -m vigil.model_tools.temporal.train             # everything; a few minutes on 2 cores
    python -m vigil.model_tools.temporal.train --if-stale  # only when gru.onnx is missing or was
                                                           # made from other sources (`make models`)
    python -m vigil.model_tools.temporal.train --check     # retrain into a scratch folder; verify
                                                           # that the committed model and report
                                                           # reproduce

Steps (run() takes them in order and writes the report; each lives beside this file: the
sequences in data/, the replays' inputs in replay_inputs.py, the GRU's training and export in
gru.py, the replays and their figures in evaluate.py, the recipe in recipe.py, TRAINING.md's
prose in training_report.py):
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
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vigil.model_tools.temporal import data as dataset
from vigil.model_tools.temporal import evaluate
from vigil.model_tools.temporal.gru import (
    export_onnx,
    select_pos_weight,
    torch_scores,
    train_model,
    training_windows,
)
from vigil.model_tools.temporal.recipe import (
    BATCH,
    EPOCHS,
    HIDDEN,
    LEARNING_RATE,
    MODEL_NAME,
    ONNX_NAME,
    OPSET,
    REPORT_NAME,
    SEED,
    SELECT_EPOCHS,
    TRAINING_NAME,
    TUNED_THRESHOLDS,
)
from vigil.model_tools.temporal.replay_inputs import build_inputs, gate_summary, replay, score_prior
from vigil.model_tools.temporal.training_report import response_probe, verdict_text, write_training_md
from vigil.models.encoder import sha256_file
from vigil.models.temporal import MODEL_DIR
from vigil.paths import REPO_ROOT
from vigil.pipelines.temporal import FEATURE_NAMES, TEMPORAL_WINDOW, sliding_windows

log = logging.getLogger("vigil.models.temporal")

REFERENCE_PATH = REPO_ROOT / "tests" / "models" / "data" / "temporal_reference.npz"
# What the model is made from: a change to any of these makes `--if-stale` retrain.
SOURCES = (
    "vigil/model_tools/temporal/train.py",
    "vigil/model_tools/temporal/recipe.py",
    "vigil/model_tools/temporal/training_report.py",
    "vigil/model_tools/temporal/data/__init__.py",
    "vigil/model_tools/temporal/data/sources.py",
    "vigil/model_tools/temporal/data/queries.py",
    "vigil/model_tools/temporal/data/sequences.py",
    "vigil/model_tools/temporal/data/frames.py",
    "vigil/model_tools/temporal/data/embedding.py",
    "vigil/model_tools/temporal/replay_inputs.py",
    "vigil/model_tools/temporal/gru.py",
    "vigil/model_tools/temporal/evaluate.py",
    "pipelines/temporal.py",
    "models/temporal/inputs.py",
)


# ---------------------------------------------------------------------------- sources


def sources_sha256() -> str:
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update(name.encode())
        digest.update((REPO_ROOT / name).read_bytes())
    return digest.hexdigest()


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
