"""The replays' inputs: the drawn sequences' frames embedded (data/), every query embedded and
scored as the live detector does (pipelines.prompts: prompt ensembles, background prompts) with
its discriminative gate's cosines and rivals, as one evaluate.SequenceInput per sequence; and
replaying them all through the live detector's calibration, gate and match state machine.
"""

from __future__ import annotations

import time

import numpy as np

from vigil.model_tools.temporal import data as dataset
from vigil.model_tools.temporal import evaluate
from vigil.pipelines.temporal import FEATURE_NAMES


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
