"""Measure the offline encoder's typical background signal (run once; the output is committed).

    python -m vigil.model_tools.offline.measure_score_prior [--fps 2] [--check]

A live camera's calibrator judges each query against that camera's own statistics, but until
it has seen `warmup_frames` frames it has none; a `ScorePrior` (calibration.py) stands in
for them: the mean and standard deviation of the signal the calibrator uses, here the cosine
with a query's prompt ensemble minus its highest cosine with the background prompts (what
`embed_queries` and `query_scores` give), over real footage where nothing is being looked for.

Footage: all of vtest.avi (a real hall with people walking, 79.5 s), sampled at `--fps`.
Queries: 20 typical standing queries, 10 English and their 10 Vietnamese translations, most
of them about things the hall does not show. The prior is the pooled mean and standard deviation
over every (frame, query): a new query's background is unknown, so the spread between
queries belongs in the prior as much as the spread between frames. Per-query numbers are
kept in the file for reference.

Writes models/offline/score_prior.json. The encoder reads it into `info.details`
("score_prior_mean", "score_prior_std", "score_prior_prompts") only when it was measured
with the same e5 model and ConSE settings; `score_prior_for` uses it only while the prompts
(templates and background prompts) are the ones it was measured with. `--check` measures
again and compares with the committed file instead of writing it.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from vigil.models.offline.encoder import NAME, SCORE_PRIOR_FILE, OfflineEncoder
from vigil.pipelines.prompts import embed_queries, prompts_fingerprint, query_scores

# Typical standing queries of a surveillance operator; each English query and its translation.
QUERIES: list[tuple[str, str]] = [
    ("a person running", "một người đang chạy"),
    ("someone carrying a large bag", "một người mang một chiếc túi lớn"),
    ("a person lying on the floor", "một người nằm trên sàn"),
    ("a car", "một chiếc ô tô"),
    ("a motorcycle", "một chiếc xe máy"),
    ("a bicycle", "một chiếc xe đạp"),
    ("a dog", "một con chó"),
    ("a cat", "một con mèo"),
    ("a fire", "một đám cháy"),
    ("a backpack left on the ground", "một chiếc ba lô bị bỏ lại trên mặt đất"),
]
DECIMALS = 4


def hall_frames(fps: float) -> tuple[Path, list[np.ndarray]]:
    """vtest.avi's frames as `vigil scan --fps` samples them (RGB uint8)."""
    import av

    from vigil.fixtures.media import vtest_avi
    from vigil.services.scan.video import sampled_frames

    path = vtest_avi()
    with av.open(str(path)) as container:
        frames = [pixels for _, pixels in sampled_frames(container, fps)]
    return path, frames


def measure(encoder: OfflineEncoder, fps: float) -> dict:
    path, frames = hall_frames(fps)
    embeddings = np.concatenate(
        [encoder.embed_images(frames[i : i + 16]) for i in range(0, len(frames), 16)]
    ).astype(np.float64)
    texts = [text for pair in QUERIES for text in pair]
    signals, per_query = [], {}
    for text, vectors in zip(texts, embed_queries(encoder, texts), strict=True):
        raw, background = query_scores(embeddings, vectors)
        signal = raw.astype(np.float64) - background
        signals.append(signal)
        per_query[text] = [round(float(signal.mean()), DECIMALS), round(float(signal.std()), DECIMALS)]
    pooled = np.concatenate(signals)
    return {
        "about": (
            "Typical background signal of the offline encoder: cosine with a query's prompt ensemble "
            "minus its highest cosine with the background prompts (pipelines/prompts.py), pooled over "
            "every frame and query below. Read by OfflineEncoder into info.details, used by "
            "pipelines.calibration.score_prior_for. Made by measure_score_prior.py."
        ),
        "mean": round(float(pooled.mean()), DECIMALS),
        "std": round(float(pooled.std()), DECIMALS),
        "encoder": NAME,
        "embedder_sha256": encoder.info.checksums["e5-small-q4.bin"],
        "config": asdict(encoder.config),
        "prompts_fingerprint": prompts_fingerprint(),
        "footage": f"{path.name}, {len(frames)} frames at {fps:g} frames/s",
        "per_query_mean_std": per_query,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fps", type=float, default=2.0, help="frames sampled per second of footage")
    parser.add_argument("--check", action="store_true", help="compare with the committed file, write nothing")
    args = parser.parse_args(argv)
    document = measure(OfflineEncoder.load(), args.fps)
    if args.check:
        committed = json.loads(SCORE_PRIOR_FILE.read_text())
        same = all(committed.get(key) == document[key] for key in ("mean", "std", "prompts_fingerprint"))
        print(
            f"measured mean {document['mean']} std {document['std']}; committed {committed.get('mean')} "
            f"{committed.get('std')}: {'same' if same else 'DIFFERENT'}"
        )
        return 0 if same else 1
    SCORE_PRIOR_FILE.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n")
    print(f"mean {document['mean']} std {document['std']} over {document['footage']} -> {SCORE_PRIOR_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
