"""Calibrated query scores: one threshold that means the same for every encoder, camera and query.

A raw score is the cosine similarity of a frame embedding with a query's text embedding. Raw
cosines are not comparable: CLIP's bunch around 0.2 with a spread of a few hundredths, the
offline label-space encoder's sit elsewhere with another spread, and even under one encoder a
query such as "a person" scores higher on every frame of a busy street than "a fire" does on a
kitchen. So, as Frigate does, a score is judged against what is normal *for that camera and
that query*:

    signal      = raw cosine                                (no background prompts), or
                  raw cosine - max cosine with background prompts ("a photo of an empty
                  scene", ...), which removes what the query shares with any scene
    z           = (signal - running mean) / running std     of that (camera, query)'s background
    calibrated  = sigmoid(z - sigma_at_half)                in (0, 1)

so the calibrated score is 0.5 exactly when the frame is `sigma_at_half` (3 by default) standard
deviations above that camera's usual score for that query, whatever the encoder's cosine range.
That is the "auto" threshold. A per-query threshold is given on the same scale (0.8 means
sigma_at_half + 1.39 standard deviations).

The running statistics must learn only from frames that are *not* matching: if an event's frames
entered them, a long event (a car parked in view) would become the background, its z-score would
fall, and it would end itself; the next identical event would then be missed. `calibrate` never
updates; `learn` does, and the caller (`QueryTrack` in matching.py) calls it only while the match
state machine is idle. Updates are also clipped to `clip_sigma` standard deviations so that one
odd frame (a flash, a bird on the lens) cannot move the background much.

Until `warmup_frames` background frames have been seen the statistics are not trusted: with a
`ScorePrior` (the encoder's typical background mean and std, in the signal's units) they are
blended with the prior, weighted by pseudo-counts; without one the calibrated score is 0.0, so a
new camera or a new query stays silent while it learns rather than raising false alerts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# The calibrated score that "auto" stands for: `sigma_at_half` standard deviations above normal.
AUTO_THRESHOLD = 0.5


def resolve_threshold(threshold: float | str) -> float:
    """A query's threshold on the calibrated scale: a number in (0, 1), or "auto"."""
    if threshold == "auto":
        return AUTO_THRESHOLD
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold < 1:
        raise ValueError(f"threshold must be 'auto' or a number in (0, 1), got {threshold!r}")
    return float(threshold)


def cosine_scores(frame_embeddings: np.ndarray, text_embedding: np.ndarray) -> np.ndarray:
    """Cosine of each L2-normalised frame embedding (n, dim) with one text embedding (dim,): (n,)."""
    return np.asarray(frame_embeddings, np.float32) @ np.asarray(text_embedding, np.float32)


def max_background_cosine(frame_embeddings: np.ndarray, background_embeddings: np.ndarray) -> np.ndarray:
    """Highest cosine of each frame (n, dim) with any background prompt embedding (k, dim): (n,)."""
    frames = np.asarray(frame_embeddings, np.float32)
    background = np.asarray(background_embeddings, np.float32)
    if background.ndim != 2 or background.shape[0] == 0:
        raise ValueError("background_embeddings must be a non-empty (k, dim) array")
    return (frames @ background.T).max(axis=-1)


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)  # the other branch keeps exp from overflowing for very negative x
    return e / (1.0 + e)


@dataclass
class RunningStats:
    """Exponentially weighted mean and variance of a stream of scores.

    halflife: updates after which an old value's weight has halved (frames, not seconds: the
        sampler gives each camera a steady frame rate).
    warmup: updates before `ready`; until then each update weighs at least 1/count, so the
        estimates are the plain mean and variance of what has been seen, not biased to zero.
    clip_sigma: once ready, a value is clipped to mean +- clip_sigma * std before it is learnt,
        so a single outlier moves the statistics by a bounded amount.
    min_std: floor on the standard deviation (in the values' units), so a perfectly still
        scene does not make every tiny change infinitely significant.
    """

    halflife: float = 300.0
    warmup: int = 30
    clip_sigma: float = 4.0
    min_std: float = 1e-3
    count: int = field(default=0, init=False)
    mean: float = field(default=0.0, init=False)
    var: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if not self.halflife > 0:
            raise ValueError(f"RunningStats halflife must be positive, got {self.halflife!r}")
        if self.warmup < 1:
            raise ValueError(f"RunningStats warmup must be >= 1, got {self.warmup!r}")
        if not self.clip_sigma > 0 or not self.min_std > 0:
            raise ValueError("RunningStats clip_sigma and min_std must be positive")
        self.alpha = 1.0 - 0.5 ** (1.0 / self.halflife)

    @property
    def ready(self) -> bool:
        return self.count >= self.warmup

    @property
    def std(self) -> float:
        return max(math.sqrt(self.var), self.min_std)

    def update(self, value: float) -> None:
        value = float(value)
        if not math.isfinite(value):
            return  # a NaN from a broken frame must not poison the background for ever
        if self.ready:
            bound = self.clip_sigma * self.std
            value = min(max(value, self.mean - bound), self.mean + bound)
        self.count += 1
        weight = max(self.alpha, 1.0 / self.count)
        diff = value - self.mean
        self.mean += weight * diff
        self.var = (1.0 - weight) * (self.var + weight * diff * diff)


@dataclass(frozen=True)
class ScorePrior:
    """What an encoder's background signal usually looks like, used during warm-up.

    mean, std: in the signal's units (cosine, or cosine margin over background prompts).
    weight: how many frames' worth of evidence the prior counts as.
    """

    mean: float
    std: float
    weight: float = 10.0

    def __post_init__(self) -> None:
        if not self.std > 0 or not self.weight > 0:
            raise ValueError("ScorePrior std and weight must be positive")


class ScoreCalibrator:
    """Calibrates one (camera, query)'s raw cosines into (0, 1); see the module docstring.

    uses_background: True when every call passes the frame's max cosine with the background
        prompts (the signal is then a margin); mixing the two would mix units, so it is fixed.
    sigma_at_half: z-score (standard deviations above the background) that maps to 0.5.
    prior: the fallback during warm-up; None means "score 0.0 until warmed up".
    """

    def __init__(
        self,
        *,
        uses_background: bool = False,
        sigma_at_half: float = 3.0,
        halflife_frames: float = 300.0,
        warmup_frames: int = 30,
        clip_sigma: float = 4.0,
        min_std: float = 1e-3,
        prior: ScorePrior | None = None,
    ) -> None:
        self.uses_background = uses_background
        self.sigma_at_half = sigma_at_half
        self.prior = prior
        self.stats = RunningStats(
            halflife=halflife_frames, warmup=warmup_frames, clip_sigma=clip_sigma, min_std=min_std
        )

    def signal(self, raw_cosine: float, background_cosine: float | None = None) -> float:
        """The value judged against the background: the raw cosine, or its margin over the
        best-matching background prompt."""
        if self.uses_background != (background_cosine is not None):
            want = "needs" if self.uses_background else "was built without"
            raise ValueError(f"this calibrator {want} a background cosine")
        raw = float(raw_cosine)
        return raw if background_cosine is None else raw - float(background_cosine)

    @property
    def ready(self) -> bool:
        return self.stats.ready

    def background(self) -> tuple[float, float] | None:
        """(mean, std) of the background signal in use now, or None while there is none."""
        stats = self.stats
        if stats.ready:
            return stats.mean, stats.std
        if self.prior is None:
            return None
        # Blend prior and observation by their counts: no cliff when warm-up ends.
        w, n = self.prior.weight, stats.count
        mean = (w * self.prior.mean + n * stats.mean) / (w + n)
        var = (w * self.prior.std**2 + n * stats.var) / (w + n)
        return mean, max(math.sqrt(var), stats.min_std)

    def z_score(self, raw_cosine: float, background_cosine: float | None = None) -> float | None:
        """Standard deviations above this camera+query's background; None during a prior-less warm-up."""
        signal = self.signal(raw_cosine, background_cosine)
        background = self.background()
        if background is None or not math.isfinite(signal):
            return None
        mean, std = background
        return (signal - mean) / std

    def calibrate(self, raw_cosine: float, background_cosine: float | None = None) -> float:
        """Calibrated score in [0, 1] (0.0 while warming up without a prior). Learns nothing."""
        z = self.z_score(raw_cosine, background_cosine)
        return 0.0 if z is None else sigmoid(z - self.sigma_at_half)

    def learn(self, raw_cosine: float, background_cosine: float | None = None) -> None:
        """Take one frame known not to be part of an event into the background statistics."""
        self.stats.update(self.signal(raw_cosine, background_cosine))
