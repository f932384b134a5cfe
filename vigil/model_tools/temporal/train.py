"""Train the GRU temporal scorer, export it to ONNX, evaluate it against the per-frame threshold
baseline on held-out sequences, and write its report (run by `make models`).

    python -m vigil.model_tools.temporal.train             # everything; a few minutes on 2 cores
    python -m vigil.model_tools.temporal.train --if-stale  # only when gru.onnx is missing or was
                                                           # made from other sources (`make models`)
    python -m vigil.model_tools.temporal.train --check     # retrain into a scratch folder; verify
                                                           # that the committed model and report
                                                           # reproduce

Steps (data: data/; replay and figures: evaluate.py; recipe: recipe.py; TRAINING.md:
training_report.py, all beside this file):
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

Over 400 lines because it is one run, in order: building the inputs, the replays, training,
selection, export and the report's figures all share the sequences and replays of one run;
split across modules they would be passed from one to the next and read nowhere else.
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

from vigil.model_tools.temporal import data as dataset
from vigil.model_tools.temporal import evaluate
from vigil.model_tools.temporal.recipe import (
    BATCH,
    EPOCHS,
    HIDDEN,
    LEARNING_RATE,
    MODEL_NAME,
    ONNX_NAME,
    OPSET,
    POS_WEIGHTS,
    QUIET,
    QUIET_KEEP,
    REPORT_NAME,
    SEED,
    SELECT_EPOCHS,
    TRAINING_NAME,
    TUNED_THRESHOLDS,
    VALIDATION_EVERY,
)
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
    "vigil/model_tools/temporal/evaluate.py",
    "pipelines/temporal.py",
    "models/temporal/inputs.py",
)


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
    proto.producer_name, proto.doc_string = "vigil.model_tools.temporal.train", MODEL_NAME
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
