"""Play the dev set through the live detector's decisions (`replay_camera`) and score the hits.

Every stream is played twice, once with its standing queries registered in English and once in
Vietnamese (one language per camera, as an operator registers them). The two passes show the
encoder the same pixels, so the second takes the encoder's answers from `RecallingEncoder`, an
in-memory memo keyed by the pixels' hash: the figures are the same as embedding again, at the
cost of one pass. Nothing is kept on disk, so a change to the encoder or the detector is always
measured afresh.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from vigil.evaluation import dataset, metrics

log = logging.getLogger("vigil.evaluation")

CACHED_METHODS = ("embed_images", "embed_crops", "propose_regions")


def pixels_key(pixels: np.ndarray) -> bytes:
    array = np.ascontiguousarray(pixels)
    digest = hashlib.blake2b(array.tobytes(), digest_size=16)
    digest.update(repr((array.shape, array.dtype.str)).encode())
    return digest.digest()


def _per_item(value, n: int) -> bool:
    """Whether an argument holds one entry per image (sliced along with the images)."""
    if isinstance(value, np.ndarray):
        return value.ndim > 0 and len(value) == n
    return isinstance(value, Sequence) and not isinstance(value, str | bytes) and len(value) == n


def _take(value, indices: list[int]):
    return value[indices] if isinstance(value, np.ndarray) else [value[i] for i in indices]


class RecallingEncoder:
    """An encoder that remembers what its inner encoder made of each image (embeddings, crops'
    embeddings, region proposals), keyed by the pixels' hash and the image's other arguments
    (an argument with one entry per image, such as each crop's proposals, is part of that image's
    key and sliced with the images; any other argument is part of every key); everything else is
    delegated."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self._memo: dict[str, dict[bytes, object]] = {name: {} for name in CACHED_METHODS}
        self.calls = 0  # calls that reached the inner encoder
        self.computed = 0  # images the inner encoder processed
        self.recalled = 0  # images answered from the memo
        self.encoder_s = 0.0

    def __getattr__(self, name: str):
        return getattr(self._inner, name)

    def _recall(self, method: str, images: Sequence[np.ndarray], *args, **kwargs):
        images = list(images)
        n = len(images)
        if not n:
            return getattr(self._inner, method)(images, *args, **kwargs)
        items = [_per_item(a, n) for a in args]
        named = {k: _per_item(v, n) for k, v in kwargs.items()}
        shared = repr(
            (
                [a for a, i in zip(args, items, strict=True) if not i],
                sorted((k, repr(v)) for k, v in kwargs.items() if not named[k]),
            )
        )
        keys = []
        for j, image in enumerate(images):
            extra = repr(
                (
                    [a[j] for a, i in zip(args, items, strict=True) if i],
                    [(k, kwargs[k][j]) for k in sorted(kwargs) if named[k]],
                    shared,
                )
            )
            keys.append(pixels_key(image) + hashlib.blake2b(extra.encode(), digest_size=16).digest())
        memo = self._memo[method]
        todo: dict[bytes, int] = {}
        for j, key in enumerate(keys):
            if key not in memo and key not in todo:
                todo[key] = j
        if todo:
            indices = list(todo.values())
            sub_args = [_take(a, indices) if i else a for a, i in zip(args, items, strict=True)]
            sub_kwargs = {k: _take(v, indices) if named[k] else v for k, v in kwargs.items()}
            started = time.perf_counter()
            answers = getattr(self._inner, method)([images[j] for j in indices], *sub_args, **sub_kwargs)
            self.encoder_s += time.perf_counter() - started
            self.calls += 1
            self.computed += len(todo)
            for key, answer in zip(todo, answers, strict=True):
                memo[key] = np.array(answer, copy=True) if isinstance(answer, np.ndarray) else answer
        self.recalled += n - len(todo)
        answers = [memo[key] for key in keys]
        return np.stack(answers) if method != "propose_regions" else [list(a) for a in answers]

    def embed_images(self, images: Sequence[np.ndarray], *args, **kwargs) -> np.ndarray:
        return self._recall("embed_images", images, *args, **kwargs)

    def embed_crops(self, crops: Sequence[np.ndarray], *args, **kwargs) -> np.ndarray:
        return self._recall("embed_crops", crops, *args, **kwargs)

    def propose_regions(self, images: Sequence[np.ndarray], *args, **kwargs):
        return self._recall("propose_regions", images, *args, **kwargs)


@dataclass
class RunRecord:
    """One (stream, language) replayed: its registered queries, its hits and what it cost."""

    stream: dataset.DevStream
    language: str
    queries: dict[str, str]  # query id -> text
    resolved_languages: dict[str, str]
    outcome: metrics.RunOutcome
    wall_s: float
    embedded: int  # images (frames, crops) the encoder processed in this pass
    recalled: int


@dataclass
class SplitResult:
    split: str
    streams: tuple[dataset.DevStream, ...]
    records: list[RunRecord] = field(default_factory=list)
    timing: dict = field(default_factory=dict)


def truth_events(stream: dataset.DevStream) -> tuple[metrics.Event, ...]:
    return tuple(
        metrics.Event(e.event_id, e.object, e.start_ms, e.end_ms, e.ordinal, e.size_bucket)
        for e in stream.events
    )


def select_streams(split: str, quick: bool, streams: int | None = None) -> tuple[dataset.DevStream, ...]:
    """The split's streams; `quick`: the first two (two backgrounds); `streams`: the first n."""
    chosen = dataset.dev_streams(split)
    if streams is not None:
        return chosen[:streams]
    return chosen[:2] if quick else chosen


def run_stream(
    encoder,
    stream: dataset.DevStream,
    config=None,
    languages: Sequence[str] = dataset.LANGUAGES,
    timing: dict | None = None,
) -> list[RunRecord]:
    """One stream through `replay_camera` once per language (encoder answers shared)."""
    from vigil.pipelines.prompts import resolve_language
    from vigil.services.detector.replay import ReplayQuery, replay_camera

    timing = timing if timing is not None else {}
    recalling = RecallingEncoder(encoder)
    records = []
    for language in languages:
        texts = stream.query_texts(language)
        queries = [ReplayQuery(query_id, text, "auto") for query_id, text in texts.items()]
        before_computed, before_recalled = recalling.computed, recalling.recalled
        started = time.perf_counter()
        hits = replay_camera(
            recalling, dataset.render_frames(stream, timing), queries, config, camera_id=stream.name
        )
        wall = time.perf_counter() - started
        run = metrics.Run(
            name=stream.name,
            language=language,
            queries=tuple(texts),
            duration_ms=stream.duration_ms,
            events=truth_events(stream),
            hits=tuple(
                sorted((metrics.Hit.from_replay(h) for h in hits), key=lambda h: (h.start_ms, h.query_id))
            ),
        )
        records.append(
            RunRecord(
                stream=stream,
                language=language,
                queries=texts,
                resolved_languages={q: resolve_language(t, "auto") for q, t in texts.items()},
                outcome=metrics.match_run(run),
                wall_s=wall,
                embedded=recalling.computed - before_computed,
                recalled=recalling.recalled - before_recalled,
            )
        )
        log.info(
            "%s [%s]: %d hits, %d/%d events found (%.0f s)",
            stream.name,
            language,
            len(hits),
            len(records[-1].outcome.matched),
            len(stream.events),
            wall,
        )
    timing["encoder_s"] = timing.get("encoder_s", 0.0) + recalling.encoder_s
    return records


def run_split(
    encoder,
    split: str,
    *,
    quick: bool = False,
    streams: Sequence[dataset.DevStream] | None = None,
    config=None,
    progress: Callable[[str], None] | None = None,
) -> SplitResult:
    chosen = tuple(streams) if streams is not None else select_streams(split, quick)
    result = SplitResult(split, chosen)
    started = time.perf_counter()
    for i, stream in enumerate(chosen, start=1):
        if progress is not None:
            progress(f"{split}: stream {i}/{len(chosen)} {stream.name} ({stream.frames} frames)")
        records = run_stream(encoder, stream, config, timing=result.timing)
        result.records.extend(records)
        if progress is not None:
            for record in records:
                found = len(record.outcome.matched)
                progress(
                    f"  [{record.language}] {found}/{len(stream.events)} found, "
                    f"{len(record.outcome.run.hits)} hits, {record.wall_s:.0f} s"
                )
    result.timing["wall_s"] = time.perf_counter() - started
    result.timing["frames"] = sum(s.frames for s in chosen)
    result.timing["images_embedded"] = sum(r.embedded for r in result.records)
    result.timing["images_recalled"] = sum(r.recalled for r in result.records)
    return result
