"""J&F against an independent, literal computation of the official DAVIS 2017 formulas."""

import math

import numpy as np
from scipy import ndimage

from util.metrics import evaluate_folders, evaluate_video, statistics
from util.palette import davis_palette, write_indexed_png


def literal_boundary(mask):
    """Pixel-by-pixel seg2bmap: differs from right, bottom or bottom-right (outside = 0)."""
    h, w = mask.shape
    at = lambda y, x: mask[y, x] if y < h and x < w else 0  # noqa: E731
    b = np.zeros_like(mask, dtype=bool)
    for y in range(h):
        for x in range(w):
            if y == h - 1 and x == w - 1:
                continue
            if y == h - 1:
                b[y, x] = mask[y, x] != at(y, x + 1)
            elif x == w - 1:
                b[y, x] = mask[y, x] != at(y + 1, x)
            else:
                b[y, x] = mask[y, x] != at(y, x + 1) or mask[y, x] != at(y + 1, x) or mask[y, x] != at(y + 1, x + 1)
    return b


def literal_f(pred, gt):
    r = math.ceil(0.008 * math.hypot(*pred.shape))
    bp, bg = literal_boundary(pred), literal_boundary(gt)
    # within a disk of radius r  <=>  Euclidean distance to the other boundary <= r
    near_g = ndimage.distance_transform_edt(~bg) <= r if bg.any() else np.zeros_like(bg)
    near_p = ndimage.distance_transform_edt(~bp) <= r if bp.any() else np.zeros_like(bp)
    if not bp.any() and not bg.any():
        return 1.0
    if not bp.any():
        return 0.0
    if not bg.any():
        return 0.0
    precision = (bp & near_g).sum() / bp.sum()
    recall = (bg & near_p).sum() / bg.sum()
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def literal_j(pred, gt):
    union = (pred | gt).sum()
    return 1.0 if union == 0 else (pred & gt).sum() / union


def random_video(rng, t=9, h=37, w=53, k=2):
    gt = np.zeros((t, h, w), np.uint8)
    pred = np.zeros((t, h, w), np.uint8)
    for obj in range(1, k + 1):
        cy, cx = rng.uniform(8, h - 8), rng.uniform(8, w - 8)
        for i in range(t):
            yy, xx = np.mgrid[0:h, 0:w]
            gt[i][(yy - cy - i) ** 2 + (xx - cx) ** 2 < 40 + 5 * obj] = obj
            jitter = rng.randint(-3, 4, 2)
            pred[i][(yy - cy - i - jitter[0]) ** 2 + (xx - cx - jitter[1]) ** 2 < 35 + 8 * obj] = obj
    pred[4] = 0  # a frame with nothing predicted
    return pred, gt


def test_per_frame_scores_match_literal_definitions():
    rng = np.random.RandomState(0)
    pred, gt = random_video(rng)
    scores = evaluate_video(pred, gt)
    assert sorted(scores) == [1, 2]
    for obj, s in scores.items():
        assert len(s["J"]) == len(gt) - 2  # first and last frames excluded
        for i, t in enumerate(range(1, len(gt) - 1)):
            assert abs(s["J"][i] - literal_j(pred[t] == obj, gt[t] == obj)) < 1e-12
            assert abs(s["F"][i] - literal_f(pred[t] == obj, gt[t] == obj)) < 1e-12


def test_statistics_recall_and_decay():
    values = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    mean, recall, decay = statistics(values)
    assert abs(mean - values.mean()) < 1e-12
    assert abs(recall - 4 / 7) < 1e-12
    # bins from round(linspace(1, 7, 5)) - 1 = [0, 2, 4, 5, 6], inclusive ends
    assert abs(decay - (values[0:3].mean() - values[5:7].mean())) < 1e-12


def test_folder_scores_and_jf_mean(tmp_path):
    rng = np.random.RandomState(1)
    per_video = {}
    for video in ("a", "b"):
        pred, gt = random_video(rng)
        for name, arr in (("pred", pred), ("gt", gt)):
            (tmp_path / name / video).mkdir(parents=True)
            for t, m in enumerate(arr):
                write_indexed_png(m, davis_palette(), tmp_path / name / video / f"{t:05d}.png")
        per_video[video] = (pred, gt)
    results = evaluate_folders(tmp_path / "pred", tmp_path / "gt")
    js, fs = [], []
    for pred, gt in per_video.values():
        for obj in (1, 2):
            js.append(np.mean([literal_j(pred[t] == obj, gt[t] == obj) for t in range(1, 8)]))
            fs.append(np.mean([literal_f(pred[t] == obj, gt[t] == obj) for t in range(1, 8)]))
    assert abs(results["overall"]["J-Mean"] - np.mean(js)) < 1e-12
    assert abs(results["overall"]["F-Mean"] - np.mean(fs)) < 1e-12
    assert abs(results["overall"]["J&F-Mean"] - (np.mean(js) + np.mean(fs)) / 2) < 1e-12
    perfect = evaluate_folders(tmp_path / "gt", tmp_path / "gt")
    assert perfect["overall"]["J&F-Mean"] == 1.0
