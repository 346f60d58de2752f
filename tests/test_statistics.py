"""The video bootstrap and the paired sign-flip test, checked by simulation on per-video
scores with a known mean (numpy only, a few seconds)."""

import numpy as np

from evaluation import statistics as st

SETS = 400
VIDEOS = 30
RESAMPLES = 500


def _one_metric(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return scores[:, None], np.ones((len(scores), 1))


def test_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    covered = 0
    for i in range(SETS):
        scores = rng.beta(6, 3, VIDEOS)  # true mean 2/3, skewed as J&F per video is
        lo, hi = st.bootstrap_ci(*_one_metric(scores), [[0]], RESAMPLES, seed=i)[0]
        covered += lo <= 2 / 3 <= hi
    assert 0.90 * SETS <= covered <= 0.99 * SETS


def test_interval_halves_when_every_video_appears_four_times():
    rng = np.random.default_rng(2)
    scores = rng.normal(0.7, 0.1, VIDEOS)
    lo1, hi1 = st.bootstrap_ci(*_one_metric(scores), [[0]], 4000, seed=0)[0]
    lo4, hi4 = st.bootstrap_ci(*_one_metric(np.repeat(scores, 4)), [[0]], 4000, seed=0)[0]
    assert 0.4 < (hi4 - lo4) / (hi1 - lo1) < 0.6


def test_objects_weigh_as_in_the_official_mean_and_strata_keep_both_groups():
    # video 0 has three objects, video 1 one: the metric is the mean over the four objects
    sums, counts = np.array([[1.5, 0], [0, 0.2]]), np.array([[3.0, 0], [0, 1.0]])
    weights = np.ones((1, 2))
    assert np.allclose(st.term_means(weights, sums, counts), [[0.5, 0.2]])
    assert np.allclose(st.metric_values(st.term_means(weights, sums, counts), [[0, 1], [0]]), [[0.35, 0.5]])
    # one video per group: a stratified resample redraws each group's own video every time
    interval = st.bootstrap_ci(sums, counts, [[0, 1]], 200, strata=np.array([0, 1]))
    assert np.allclose(interval, [[0.35, 0.35]])


def test_paired_test_rejects_equal_methods_about_5_percent_of_the_time():
    rng = np.random.default_rng(3)
    rejected = 0
    for i in range(SETS):
        difficulty = rng.uniform(0.3, 0.9, VIDEOS)  # shared by both methods: the pairing matters
        a = difficulty + rng.normal(0, 0.05, VIDEOS)
        b = difficulty + rng.normal(0, 0.05, VIDEOS)
        _, _, p = st.paired_difference(a[:, None], b[:, None], np.ones((VIDEOS, 1)), [[0]], RESAMPLES, seed=i)
        rejected += p[0] < 0.05
    assert 0.02 * SETS <= rejected <= 0.08 * SETS


def test_paired_test_detects_a_known_difference():
    rng = np.random.default_rng(4)
    difficulty = rng.uniform(0.3, 0.9, VIDEOS)
    a = difficulty + rng.normal(0, 0.02, VIDEOS)
    b = difficulty + 0.03 + rng.normal(0, 0.02, VIDEOS)  # 3 points better on average
    diff, interval, p = st.paired_difference(a[:, None], b[:, None], np.ones((VIDEOS, 1)), [[0]], 2000, seed=0)
    assert np.isclose(diff[0], (b - a).mean())
    assert 0 < interval[0, 0] < diff[0] < interval[0, 1]
    assert p[0] < 0.01
