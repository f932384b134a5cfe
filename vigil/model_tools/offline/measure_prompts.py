"""Do prompt ensembles and background prompts help the offline encoder find events in real footage?

    python -m vigil.model_tools.offline.measure_prompts [--json]

The clip is the one tests/scan/test_scan.py builds: 30 s of vtest.avi (a real hall with people
walking) with a real photo of a cat pasted in at 8-13 s and of a motorcycle at 19-24 s, H.264,
sampled at 2 frames/s as `vigil scan --fps 2` does. For every query and every way of scoring:

- z-scores against the file's robust background (median and MAD of the signal over the whole
  clip, as `ScanPipeline` estimates it); "in" is the highest z inside the query's span, "out"
  the highest z anywhere else (the hall, and the other photo's span); in - out is the
  separation, and the event is findable at the "auto" threshold only while in >= 3 > out;
- "scan": whether `ScanPipeline` finds exactly one event, starting and ending within 1 s of
  the span (what the scan test asserts);
- "hall events": events `ScanPipeline` reports over all 79.5 s of plain vtest.avi, where
  nothing is to be found (false alarms).

Ways of scoring (signal -> calibrated by `ScanPipeline` in each case):

    bare         raw cosine with the query text alone (what `vigil scan` did before)
    ensemble     raw cosine with the prompt ensemble's mean (prompts.py)
    ens+bg       ensemble cosine minus the highest cosine with the bare background prompts
    ens+bg-ens   the same, the background prompts embedded through the same templates, so that
                 what a template itself means ("camera", "footage") is in both and cancels:
                 what `embed_queries` does, and what `vigil scan` uses

The queries are the scan test's ("a cat", "a motorcycle" and their Vietnamese translations)
and paraphrases of them written before any measurement; nothing here is used to build the
encoder.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vigil.models.encoder import Encoder
from vigil.pipelines.prompts import (
    QueryVectors,
    background_prompts,
    detect_language,
    embed_queries,
    query_scores,
)
from vigil.pipelines.scan import ScanPipeline, ScanSettings, robust_background

CLIP_SECONDS = 30
SAMPLE_FPS = 2.0
SPANS = {"cat": (8.0, 13.0), "motorcycle": (19.0, 24.0)}
TOLERANCE_S = 1.0
# (what the query asks for, query text); the scan test's four come first in each language.
QUERIES: list[tuple[str, str]] = [
    ("cat", "a cat"),
    ("motorcycle", "a motorcycle"),
    ("cat", "a kitten"),
    ("cat", "a tabby cat"),
    ("motorcycle", "a motorbike"),
    ("cat", "một con mèo"),
    ("motorcycle", "một chiếc xe máy"),
    ("cat", "con mèo"),
    ("motorcycle", "xe máy"),
    ("motorcycle", "mot chiec xe may"),
]
SCAN_TEST_QUERIES = {"a cat", "a motorcycle", "một con mèo", "một chiếc xe máy"}
VARIANTS = ("bare", "ensemble", "ens+bg", "ens+bg-ens")


def build_clip() -> Path:
    """The scan test's clip (tests/scan/test_scan.py `real_clip`), cached under var/media."""
    from vigil.fixtures.media import event_clip

    return event_clip(
        tuple((name, start, end) for name, (start, end) in SPANS.items()), CLIP_SECONDS, keyframe_every_s=None
    )


def sampled_frames(path: Path, encoder: Encoder, fps: float = SAMPLE_FPS) -> tuple[np.ndarray, np.ndarray]:
    """(times in s, (n, dim) embeddings) of the frames `vigil scan --fps` would sample."""
    import av

    from vigil.services.scan.video import sampled_frames as scan_samples

    with av.open(str(path)) as container:
        times, pixels = map(list, zip(*scan_samples(container, fps), strict=True))
    embeddings = np.concatenate([encoder.embed_images(pixels[i : i + 16]) for i in range(0, len(pixels), 16)])
    return np.asarray(times), embeddings


def variant_vectors(encoder: Encoder, text: str) -> dict[str, QueryVectors | np.ndarray]:
    """Each way of scoring: a plain text vector (raw cosine) or QueryVectors (background margin)."""
    language = detect_language(text)
    shipped = embed_queries(encoder, [text])[0]
    return {
        "bare": encoder.embed_texts([text])[0],
        "ensemble": shipped.text,
        "ens+bg": QueryVectors(shipped.text, encoder.embed_texts(background_prompts(language)), language),
        "ens+bg-ens": shipped,
    }


def run_scan(text: str, vectors: QueryVectors | np.ndarray, times: np.ndarray, frames: np.ndarray) -> list:
    settings = ScanSettings(max_gap_ms=max(ScanSettings().max_gap_ms, round(3000 / SAMPLE_FPS)))
    if isinstance(vectors, QueryVectors):
        pipeline = ScanPipeline([text], [vectors], settings)
    else:
        pipeline = ScanPipeline([text], vectors[None, :], settings)
    pipeline.feed([round(t * 1000) for t in times], frames)
    return pipeline.finish()


def signal(vectors: QueryVectors | np.ndarray, frames: np.ndarray) -> np.ndarray:
    """What the calibrator judges: the margin over the background prompts, or the raw cosine."""
    if isinstance(vectors, QueryVectors):
        raw, background = query_scores(frames, vectors)
        return raw - background
    return frames @ vectors


def measure(encoder: Encoder, clip: Path, hall: Path, log: Callable[[str], None] = print) -> dict:
    times, frames = sampled_frames(clip, encoder)
    hall_times, hall_frames = sampled_frames(hall, encoder)
    log(f"clip: {len(times)} frames; hall: {len(hall_times)} frames over {hall_times[-1]:.1f} s")
    min_std = ScanSettings().min_std
    rows = []
    for name, text in QUERIES:
        start, end = SPANS[name]
        inside = (times >= start) & (times < end)
        row = {"query": text, "language": detect_language(text), "scan_test": text in SCAN_TEST_QUERIES}
        for variant, vectors in variant_vectors(encoder, text).items():
            values = signal(vectors, frames)
            median, std = robust_background(values, min_std)
            z = (values - median) / std
            events = run_scan(text, vectors, times, frames)
            found = len(events) == 1 and (
                abs(events[0].start_ms / 1000 - start) <= TOLERANCE_S
                and abs(events[0].end_ms / 1000 - end) <= TOLERANCE_S
            )
            row[variant] = {
                "in": round(float(z[inside].max()), 1),
                "out": round(float(z[~inside].max()), 1),
                "scan": found,
                "events": [e.as_json() for e in events],
                "hall_events": len(run_scan(text, vectors, hall_times, hall_frames)),
            }
        rows.append(row)
    return {
        "encoder": encoder.info.name,
        "clip_frames": len(times),
        "hall_frames": len(hall_times),
        "rows": rows,
    }


def measure_retrieval(encoder: Encoder, opencv_samples: Path | None) -> dict:
    """A second opinion away from the clip: each caption of evaluate.py's images (8 CLIP-notebook
    photos, + 19 opencv-doc ones when installed) ranks the images; top-1 hits and mean rank of
    the right image, per way of scoring. Captions are full sentences, not surveillance queries."""
    from vigil.models.offline import evaluate

    cases, images = list(evaluate.CASES), evaluate.load_images()
    if opencv_samples is not None and opencv_samples.is_dir():
        cases += evaluate.OPENCV_CASES
        images.update(evaluate.load_opencv_images(opencv_samples))
    frames = encoder.embed_images([images[name] for name, _, _ in cases])
    report: dict = {"images": len(cases)}
    for language, column in (("en", 1), ("vi", 2)):
        captions = [case[column] for case in cases]
        shipped = embed_queries(encoder, captions, [language] * len(captions))
        background = encoder.embed_texts(background_prompts(language))
        ways = {
            "bare": frames @ encoder.embed_texts(captions).T,
            "ensemble": frames @ np.stack([v.text for v in shipped]).T,
            "ens+bg": np.stack(
                [signal(QueryVectors(v.text, background, language), frames) for v in shipped], axis=1
            ),
            "ens+bg-ens": np.stack([signal(v, frames) for v in shipped], axis=1),
        }
        report[language] = {}
        for way, scores in ways.items():  # scores[image, caption]
            ranks = [int((scores[:, j] > scores[j, j]).sum()) + 1 for j in range(len(cases))]
            report[language][way] = {
                "top1": sum(rank == 1 for rank in ranks),
                "mean_rank": round(float(np.mean(ranks)), 2),
            }
    return report


def print_table(report: dict, variants: tuple[str, ...] = VARIANTS) -> None:
    print(f"encoder {report['encoder']}; z in span / max z outside; scan ok; events in the plain hall")
    print(f"| query | lang | {' | '.join(variants)} |")
    print(f"| --- | --- |{' --- |' * len(variants)}")
    for row in report["rows"]:
        cells = []
        for variant in variants:
            cell = row[variant]
            mark = "ok" if cell["scan"] else "**fail**"
            cells.append(f"{cell['in']:.1f} / {cell['out']:.1f} {mark} {cell['hall_events']}")
        star = " *" if row["scan_test"] else ""
        print(f"| {row['query']}{star} | {row['language']} | {' | '.join(cells)} |")
    for variant in variants:
        cells = [row[variant] for row in report["rows"]]
        separation = np.mean([c["in"] - c["out"] for c in cells])
        worst = min(c["in"] - c["out"] for c in cells)
        passed = sum(c["scan"] for c in cells)
        hall = sum(c["hall_events"] for c in cells)
        print(
            f"{variant:12s} mean separation {separation:5.1f}, worst {worst:5.1f}, "
            f"scan ok {passed}/{len(cells)}, hall events {hall}"
        )
    retrieval = report.get("retrieval")
    if retrieval:
        print(f"\ncaption -> image on {retrieval['images']} images: top-1 / mean rank of the right image")
        for language in ("en", "vi"):
            cells = [
                f"{way} {r['top1']}/{retrieval['images']} {r['mean_rank']:.2f}"
                for way, r in retrieval[language].items()
            ]
            print(f"{language}: {'; '.join(cells)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print everything as JSON")
    parser.add_argument(
        "--opencv-samples",
        type=Path,
        default=Path("/usr/share/doc/opencv-doc/examples/data"),
        help="opencv-doc's sample images, for the caption->image check (skipped when absent)",
    )
    args = parser.parse_args(argv)
    from vigil.fixtures.media import vtest_avi
    from vigil.models.offline.encoder import OfflineEncoder

    encoder = OfflineEncoder.load()
    report = measure(encoder, build_clip(), vtest_avi(), log=lambda line: print(line, file=sys.stderr))
    report["retrieval"] = measure_retrieval(encoder, args.opencv_samples)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
