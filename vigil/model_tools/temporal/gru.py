"""The GRU itself: the torch module, the feature windows it trains on (quiet ones thinned), its
deterministic fitting, the choice of the positives' weight on validation sequences, and its
export to ONNX.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np

from vigil.model_tools.temporal import evaluate
from vigil.model_tools.temporal.recipe import (
    BATCH,
    HIDDEN,
    LEARNING_RATE,
    MODEL_NAME,
    OPSET,
    POS_WEIGHTS,
    QUIET,
    QUIET_KEEP,
    SEED,
    SELECT_EPOCHS,
    TRAINING_NAME,
    VALIDATION_EVERY,
)
from vigil.model_tools.temporal.replay_inputs import replay
from vigil.pipelines.temporal import FEATURE_NAMES, TEMPORAL_WINDOW, sliding_windows

log = logging.getLogger("vigil.models.temporal")


def training_windows(results: list[evaluate.StreamResult]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(windows, labels, weights): every window of every stream, quiet ones thinned (see QUIET)."""
    windows = np.concatenate([sliding_windows(r.rows, TEMPORAL_WINDOW) for r in results])
    labels = np.concatenate([r.labels for r in results]).astype(np.float32)
    quiet = (labels == 0) & (windows[:, :, 0].max(axis=1) < QUIET)
    keep = ~quiet | (np.random.default_rng(SEED).integers(QUIET_KEEP, size=len(labels)) == 0)
    weights = np.where(quiet, float(QUIET_KEEP), 1.0).astype(np.float32)
    return windows[keep], labels[keep], weights[keep]


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
