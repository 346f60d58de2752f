"""Confidence intervals and paired tests for benchmark scores, resampling videos.

A benchmark's headline number is a mean over objects, but the videos are what it samples:
the objects of one video share its scene, camera and difficulty, so they are not
independent draws. Every statistic here therefore resamples or flips whole videos.

A metric is described by *terms*: a term is the mean of one per-object value over a group
of objects (e.g. ``J-Mean`` of the unseen videos' objects) and a metric is the mean of its
terms (LVOS's ``J&F-Mean`` averages four). Per video a term keeps the sum of its objects'
values and their count, so a resample's term is ``(w @ sums) / (w @ counts)`` with ``w`` the
number of times each video was drawn: the same object-weighted mean as the official tools,
for thousands of resamples in one matrix product.

- ``bootstrap_ci``: percentile interval of a video bootstrap (stratified when videos fall
  into groups that the metric averages separately, e.g. LVOS seen/unseen, so every
  resample keeps both groups).
- ``paired_difference``: B - A on the same videos; interval by a paired bootstrap (one
  draw of videos for both methods) and p-value by a sign-flip permutation test: under "the
  two methods are equally good" the labels A and B of each video's scores can be swapped,
  so the flips give the exact null distribution of the difference without assuming a
  normal shape, and, unlike a bootstrap test, it holds its level with few videos.
"""

from __future__ import annotations

import numpy as np

CONFIDENCE = 0.95


def term_means(weights: np.ndarray, sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(R, K) term means of R weightings of the videos: weights (R, V), sums and counts (V, K);
    nan where a resample holds no object of a term."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weights @ sums) / (weights @ counts)


def metric_values(terms: np.ndarray, metrics: list[list[int]]) -> np.ndarray:
    """(R, M) metrics from (R, K) term means: each metric the mean of its terms' columns."""
    return np.stack([terms[:, idx].mean(axis=1) for idx in metrics], axis=1)


def bootstrap_weights(strata: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(R, V) how often each video is drawn in each resample; videos are drawn with
    replacement within their stratum, as many as the stratum holds."""
    weights = np.zeros((resamples, len(strata)))
    for s in np.unique(strata):
        members = np.flatnonzero(strata == s)
        draws = rng.integers(0, len(members), size=(resamples, len(members)))
        flat = (draws + len(members) * np.arange(resamples)[:, None]).ravel()  # one bincount for all rows
        weights[:, members] = np.bincount(flat, minlength=resamples * len(members)).reshape(resamples, -1)
    return weights


def _interval(samples: np.ndarray) -> np.ndarray:
    """(M, 2) percentile interval of (R, M) samples (resamples that are nan are left out)."""
    tail = (1 - CONFIDENCE) / 2 * 100
    with np.errstate(invalid="ignore"):
        out = np.full((samples.shape[1], 2), np.nan)
        for m in range(samples.shape[1]):
            finite = samples[np.isfinite(samples[:, m]), m]
            if len(finite):
                out[m] = np.percentile(finite, [tail, 100 - tail])
    return out


def bootstrap_ci(
    sums: np.ndarray,
    counts: np.ndarray,
    metrics: list[list[int]],
    resamples: int = 1000,
    seed: int = 0,
    strata: np.ndarray | None = None,
) -> np.ndarray:
    """(M, 2) 95% interval of each metric by a percentile bootstrap over videos."""
    strata = np.zeros(len(sums), int) if strata is None else strata
    weights = bootstrap_weights(strata, resamples, np.random.default_rng(seed))
    return _interval(metric_values(term_means(weights, sums, counts), metrics))


def paired_difference(
    sums_a: np.ndarray,
    sums_b: np.ndarray,
    counts: np.ndarray,
    metrics: list[list[int]],
    resamples: int = 1000,
    seed: int = 0,
    strata: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(difference B - A (M,), its 95% interval (M, 2), two-sided p-value (M,)) over the same
    videos and objects (``counts``: the objects both methods have a value for)."""
    strata = np.zeros(len(counts), int) if strata is None else strata
    rng = np.random.default_rng(seed)
    ones = np.ones((1, len(counts)))
    observed = metric_values(term_means(ones, sums_b - sums_a, counts), metrics)[0]
    weights = bootstrap_weights(strata, resamples, rng)
    interval = _interval(metric_values(term_means(weights, sums_b - sums_a, counts), metrics))
    signs = rng.choice([-1.0, 1.0], size=(resamples, len(counts)))
    # a flip negates one video's differences; the denominators (object counts) stay
    flipped = metric_values(_flipped_terms(signs, sums_b - sums_a, counts), metrics)
    with np.errstate(invalid="ignore"):
        extreme = (np.abs(flipped) >= np.abs(observed) - 1e-12).sum(axis=0)
    p_value = (extreme + 1) / (resamples + 1)
    p_value[~np.isfinite(observed)] = np.nan
    return observed, interval, p_value


def _flipped_terms(signs: np.ndarray, differences: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(R, K) term means of sign-flipped per-video differences: sum(s * d) / sum(counts)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (signs @ differences) / counts.sum(axis=0, keepdims=True)
