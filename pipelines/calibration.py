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
blended with the prior, weighted by pseudo-counts (live, the mean is the camera's own and only
the spread is blended, with a weight fading to nothing by the end of warm-up: `prior_fades`);
without one the calibrated score is 0.0, so a new camera or a new query stays silent while it
learns rather than raising false alerts.

`score_prior_for(encoder.info)` is that prior for the margin signal of `embed_queries`
(prompts.py), when the encoder carries measured numbers: the models own their numbers. The
offline encoder does (models/offline/score_prior.json, measured over real hall footage for 20
typical English and Vietnamese queries by vigil/model_tools/offline/measure_score_prior.py);
CLIP does not, because no CLIP weights were available to measure with (an export here is
random-init only), so a CLIP camera stays silent through warm-up.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from vigil.models.encoder import EncoderInfo
from vigil.pipelines.prompts import prompts_fingerprint

log = logging.getLogger("vigil.pipelines")

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
    best: np.ndarray = (frames @ background.T).max(axis=-1)
    return best


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


def score_prior_for(info: EncoderInfo) -> ScorePrior | None:
    """The encoder's measured typical background signal (cosine with the query's prompt ensemble
    minus the highest cosine with the background prompts, as `embed_queries` + `query_scores`
    give it), from `info.details`; None when the encoder carries no such numbers (CLIP today) or
    measured them with other prompts, whose margin is another signal
    (`info.details["score_prior_prompts"]`, the prompts' fingerprint).

    mean: pooled over the measured queries (`score_prior_mean`). std: ONE query's typical
    spread on one camera (`score_prior_query_std`, the median over the measured queries) when
    the encoder has it, else the pooled spread (`score_prior_std`). The two differ by nearly
    ten times for the offline encoder (0.015 against 0.118): queries' means vary far more than
    one query's frames do, which is why a live calibrator takes the mean from the camera's own
    frames and only the spread from the prior (`prior_fades`)."""
    details = info.details
    if "score_prior_mean" not in details or "score_prior_std" not in details:
        return None
    if details.get("score_prior_prompts") != prompts_fingerprint():
        log.warning(
            "%s: its score prior was measured with other prompts; not used (re-measure it)", info.name
        )
        return None
    try:
        mean = float(details["score_prior_mean"])
        std = float(details.get("score_prior_query_std", details["score_prior_std"]))
        return ScorePrior(mean=mean, std=std) if math.isfinite(mean) and math.isfinite(std) else None
    except ValueError:  # a malformed number, or a std that is not positive
        log.warning("%s: its score prior is malformed; not used", info.name)
        return None


class ScoreCalibrator:
    """Calibrates one (camera, query)'s raw cosines into (0, 1); see the module docstring.

    uses_background: True when every call passes the frame's max cosine with the background
        prompts (the signal is then a margin); mixing the two would mix units, so it is fixed.
    sigma_at_half: z-score (standard deviations above the background) that maps to 0.5.
    prior: the fallback during warm-up; None means "score 0.0 until warmed up".
    prior_fades: live cameras: the background mean is the camera's own from its first frame (the
        very first frame is only learnt), and the prior's spread weighs less and less, down to
        nothing at the end of warm-up, so the scores do not jump when it ends. False: mean and
        spread blend with the prior at full weight (a scan, whose prior is the file's own).
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
        prior_fades: bool = True,
    ) -> None:
        self.uses_background = uses_background
        self.prior_fades = prior_fades
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
        # Blend prior and observation by their counts. A fading prior's weight falls linearly
        # to zero at the end of warm-up: an encoder-wide prior is much wider than one camera's
        # background for one query, and a full-weight prior until the last warm-up frame would
        # make the scores jump (z roughly x4 for the offline encoder) when warm-up ends.
        n = stats.count
        if self.prior_fades:
            # Live: the mean comes from the camera's own frames from the first one on (queries'
            # means differ far more than one query's frames do); the prior lends the spread.
            if n == 0:
                return None
            w = self.prior.weight * (1.0 - n / stats.warmup)
            var = (w * self.prior.std**2 + n * stats.var) / (w + n)
            return stats.mean, max(math.sqrt(var), stats.min_std)
        w = self.prior.weight
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
        """Take one frame known not to be part of an event into the background statistics.

        During warm-up the statistics do not clip yet (they have no spread of their own), so
        the frame is clipped here to the prior-blended background: a scene change that sends
        this query's score far *below* normal (another object filling the view) is not an
        event, but learnt unclipped it would inflate the spread and hide the next real event."""
        value = self.signal(raw_cosine, background_cosine)
        # (Only live, where the mean is the camera's own: a scan's prior is the file's robust
        # estimate and its FileCalibrator clips to that.)
        background = self.background() if self.prior_fades and not self.stats.ready else None
        if background is not None:
            mean, std = background
            bound = self.stats.clip_sigma * std
            value = min(max(value, mean - bound), mean + bound)
        self.stats.update(value)
