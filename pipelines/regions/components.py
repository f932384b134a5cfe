"""From a frame's changed pixels to its motion regions (step 5 of the package docstring; no I/O).

The changed pixels are dilated, labelled into 8-connected components, clustered, capped at
`max_regions` and padded into square regions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vigil.pipelines.regions.geometry import Box, square_region
from vigil.pipelines.regions.settings import RegionSettings

_MAX_CLUSTERED = 48  # clustering is quadratic; past this many components the rest is scatter


def motion_regions(changed: np.ndarray, settings: RegionSettings) -> tuple[Box, ...]:
    """The regions of a frame's changed pixels (a boolean mask of the small frame): square,
    padded, at most `max_regions`, largest change first; every changed pixel of a counted
    component lies in one of them."""
    s = settings
    height, width = changed.shape
    min_changed = max(1, math.ceil(s.min_area_fraction * changed.size))
    blobs = [
        _Blob(Box.from_pixels(x0, y0, x1, y1, width, height), count)
        for count, y0, x0, y1, x1 in _label_components(_dilate(changed), changed)
        if count >= min_changed
    ]
    if not blobs:
        return ()
    blobs.sort(key=lambda blob: -blob.changed)
    # Clustering is quadratic: past a few dozen components the rest are scatter anyway.
    clusters = (
        _cluster(blobs[:_MAX_CLUSTERED], s.context_scale, s.cluster_max_growth) + blobs[_MAX_CLUSTERED:]
    )
    clusters = _cap(sorted(clusters, key=lambda blob: -blob.changed), s.max_regions)
    aspect = width / height
    return tuple(square_region(b.box, aspect, s.context_scale, s.min_region_fraction) for b in clusters)


@dataclass(frozen=True)
class _Blob:
    """A box of changed pixels (a component or a cluster of them)."""

    box: Box
    changed: int  # changed (undilated) pixels in it


def _label_components(mask: np.ndarray, weight: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    """8-connected components of `mask`: (pixels of `weight` in it, y0, x0, y1, x1) each,
    with exclusive ends, in pixels.

    Run-length labelling: each row's runs of set pixels are found with numpy, runs of
    adjacent rows that touch (8-connectivity: they overlap or meet at a corner) are joined
    by a vectorised union-find (hook to the smaller root, then compress, until stable)."""
    height, width = mask.shape
    edges = np.diff(np.pad(mask.astype(np.int8), ((0, 0), (1, 1))), axis=1)
    run_rows, run_starts = np.nonzero(edges == 1)
    _, run_ends = np.nonzero(edges == -1)  # exclusive; np.nonzero is row-major, so they pair up
    n = run_rows.size
    if n == 0:
        return []
    # Runs touching run r in the next row form a contiguous range of the (row-major sorted)
    # runs: those with end >= start(r) and start <= end(r), in row + 1.
    stride = width + 2
    start_keys = run_rows * stride + run_starts
    end_keys = run_rows * stride + run_ends
    next_row = (run_rows + 1) * stride
    first = np.searchsorted(end_keys, next_row + run_starts, side="left")
    last = np.searchsorted(start_keys, next_row + run_ends, side="right")
    counts = np.maximum(last - first, 0)
    source = np.repeat(np.arange(n), counts)
    target = (
        np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(first, counts)
    )
    parent = np.arange(n)
    while source.size:
        root_s, root_t = parent[source], parent[target]
        joined = root_s != root_t
        if not joined.any():
            break
        low, high = np.minimum(root_s, root_t)[joined], np.maximum(root_s, root_t)[joined]
        np.minimum.at(parent, high, low)
        while True:
            compressed = parent[parent]
            if np.array_equal(compressed, parent):
                break
            parent = compressed
    labels, run_label = np.unique(parent, return_inverse=True)
    cumulative = np.concatenate([np.zeros((height, 1), np.int64), np.cumsum(weight, axis=1)], axis=1)
    run_weight = cumulative[run_rows, run_ends] - cumulative[run_rows, run_starts]
    k = labels.size
    weights = np.bincount(run_label, weights=run_weight, minlength=k).astype(np.int64)
    y0 = np.full(k, height)
    x0 = np.full(k, width)
    y1 = np.zeros(k, np.intp)
    x1 = np.zeros(k, np.intp)
    np.minimum.at(y0, run_label, run_rows)
    np.minimum.at(x0, run_label, run_starts)
    np.maximum.at(y1, run_label, run_rows + 1)
    np.maximum.at(x1, run_label, run_ends)
    return list(zip(weights.tolist(), y0.tolist(), x0.tolist(), y1.tolist(), x1.tolist(), strict=True))


def _cluster(blobs: list[_Blob], context_scale: float, max_growth: float) -> list[_Blob]:
    """Merge blobs whose context-padded boxes touch, as long as the merged box is at most
    `max_growth` times their two boxes' areas together, until nothing merges."""
    clusters = list(blobs)
    merged = True
    while merged:
        merged = False
        for i in range(len(clusters)):
            for j in range(i + 1, len(clusters)):
                a, b = clusters[i], clusters[j]
                if not a.box.scaled(context_scale).touches(b.box.scaled(context_scale)):
                    continue
                box = a.box.union(b.box)
                if box.area > max_growth * (a.box.area + b.box.area):
                    continue
                clusters[i] = _Blob(box, a.changed + b.changed)
                del clusters[j]
                merged = True
                break
            if merged:
                break
    return clusters


def _cap(clusters: list[_Blob], max_regions: int) -> list[_Blob]:
    """At most `max_regions` blobs covering every one of `clusters` (ranked by changed pixels).

    Beyond 2 x max_regions, the smallest join one catch-all blob (scatter: rain, snow). Then,
    while too many remain, the two whose merged box wastes least area (its area minus theirs)
    merge: neighbours join first, and no changed pixel is left out of every region."""
    if len(clusters) <= max_regions:
        return clusters
    keep = 2 * max_regions
    if len(clusters) > keep:
        rest = clusters[keep - 1 :]
        catch_all = _Blob(Box.enclosing([b.box for b in rest]), sum(b.changed for b in rest))
        clusters = clusters[: keep - 1] + [catch_all]
    clusters = list(clusters)
    while len(clusters) > max_regions:
        best: tuple[float, int, int] | None = None
        for i in range(len(clusters)):
            for j in range(i + 1, len(clusters)):
                box_a, box_b = clusters[i].box, clusters[j].box
                waste = box_a.union(box_b).area - box_a.area - box_b.area
                if best is None or waste < best[0]:
                    best = (waste, i, j)
        assert best is not None  # more than max_regions >= 1 clusters: at least one pair
        _, i, j = best
        a, b = clusters[i], clusters[j]
        clusters[i] = _Blob(a.box.union(b.box), a.changed + b.changed)
        del clusters[j]
    return sorted(clusters, key=lambda blob: -blob.changed)


def _dilate(mask: np.ndarray) -> np.ndarray:
    """3x3 dilation of a boolean mask (once, as Frigate): joins the pieces of one object."""
    across = mask.copy()
    across[:, 1:] |= mask[:, :-1]
    across[:, :-1] |= mask[:, 1:]
    out = across.copy()
    out[1:] |= across[:-1]
    out[:-1] |= across[1:]
    return out
