"""One test per scoring rule that the transcription tests (test_metrics.py,
test_benchmarks.py) leave open, each on hand-made masks where the rule changes the number:
frame sizes where two boundary widths differ, a prediction that starts before its object,
an object range longer than its annotations. ``python -m scripts.mutation_check`` plants a
change of each rule and checks that a test fails."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import reference.benchmark_metrics as ref
from benchmarks import scoring as bm
from util.metrics import boundary_f, evaluate_video
from util.palette import davis_palette, write_indexed_png


def box(shape, y0, y1, x0, x1, value=1, base=None):
    m = np.zeros(shape, np.uint8) if base is None else base.copy()
    m[y0:y1, x0:x1] = value
    return m


def write(folder: Path, name: str, labels: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_indexed_png(labels.astype(np.uint8), davis_palette(), folder / name)


# ---- DAVIS ----------------------------------------------------------------------------------


def test_davis_boundary_tolerance_is_the_ceiling_of_0008_diagonals():
    """At 165x220 the diagonal is 275: 0.008 of it is 2.2 pixels, so the tolerance is 3
    (not 2, rounded): a boundary 3 pixels off still matches, one 4 pixels off does not."""
    shape = (165, 220)
    assert 0.008 * math.hypot(*shape) == pytest.approx(2.2)
    gt = box(shape, 40, 100, 50, 120) > 0
    assert boundary_f(box(shape, 40, 100, 53, 123) > 0, gt) == 1.0
    assert boundary_f(box(shape, 40, 100, 54, 124) > 0, gt) < 0.75
    assert ref.davis_f(box(shape, 40, 100, 54, 124), gt.astype(np.uint8)) == boundary_f(
        box(shape, 40, 100, 54, 124) > 0, gt
    )


def test_davis_scores_every_frame_but_the_first_and_last():
    """Each frame's prediction is right on one frame only: a wrong first or last frame
    changes nothing; a wrong inner frame does."""
    shape, t = (20, 30), 5
    gt = np.stack([box(shape, 5, 15, 5, 15)] * t)
    for wrong, counted in ((0, False), (t - 1, False), (2, True)):
        pred = gt.copy()
        pred[wrong] = 0
        scores = evaluate_video(pred, gt)[1]
        assert len(scores["J"]) == len(scores["F"]) == t - 2
        assert (np.mean(scores["J"]) < 1) == counted and (np.mean(scores["F"]) < 1) == counted


def test_davis_void_is_background():
    """255 in the ground truth is no object: a prediction of object 1 there is a false
    positive, and 255 never becomes an object of its own."""
    shape = (20, 30)
    gt = np.stack([box(shape, 0, 4, 0, 30, 255, box(shape, 5, 15, 5, 15))] * 3)
    pred = np.stack([box(shape, 0, 4, 0, 30, 1, box(shape, 5, 15, 5, 15))] * 3)
    scores = evaluate_video(pred, gt)
    assert list(scores) == [1]
    assert scores[1]["J"] == [pytest.approx(100 / (100 + 4 * 30))]


def test_davis_j_of_two_empty_masks_is_1():
    """An object absent in the ground truth and not predicted on a frame scores J = 1."""
    shape = (20, 30)
    gt = np.stack([box(shape, 5, 15, 5, 15), np.zeros(shape, np.uint8), box(shape, 5, 15, 5, 15)])
    assert evaluate_video(gt.copy(), gt)[1]["J"] == [1.0]


# ---- MOSE v2 --------------------------------------------------------------------------------


def mose2_video(tmp_path, gt, pred, objects=("1",)):
    for t in range(len(gt)):
        write(tmp_path / "gt" / "v", f"{t:05d}.png", gt[t])
        write(tmp_path / "pred" / "v", f"{t:05d}.png", pred[t])
    meta = {"v": {"length": len(gt), "objects": list(objects)}}
    return bm.score_mose2(tmp_path / "pred", tmp_path / "gt", meta)


def test_mose2_f_and_f_new_at_a_size_where_their_widths_differ(tmp_path):
    """120x160: the DAVIS width is ceil(0.008 x 200) = 2, a 10x10 object's adaptive width
    ceil(0.1 x 10) = 1. A 2-pixel shift matches under F, not under F_new."""
    shape = (120, 160)
    gt = np.stack([box(shape, 40, 50, 40 + t, 50 + t) for t in range(5)])
    pred = np.stack([box(shape, 40, 50, 42 + t, 52 + t) for t in range(5)])
    overall = mose2_video(tmp_path, gt, pred)["overall"]
    official = ref.mose2_overall([ref.mose2_object(gt, pred, 1)])
    assert overall["F"] == official["F"] == 1.0
    assert overall["F_new"] == pytest.approx(official["F_new"]) and overall["F_new"] < 0.8
    assert overall["J&F_new"] < overall["J&F"]


def test_mose2_smoothed_j_and_skipped_first_and_last_frames(tmp_path):
    """J = (inter + 1) / (union + 1); the first and last frames (empty predictions here)
    are not scored."""
    shape = (20, 30)
    gt = np.stack([box(shape, 5, 10, 5, 10)] * 4)
    pred = np.stack([np.zeros(shape, np.uint8), box(shape, 5, 10, 5, 11), box(shape, 5, 10, 5, 11), gt[0] * 0])
    overall = mose2_video(tmp_path, gt, pred)["overall"]
    assert overall["J"] == pytest.approx((25 + 1) / (30 + 1))


def test_mose2_disappearance_and_reappearance_segments(tmp_path):
    """Object 1 present on scored frames 1-2, gone on 3-4, back on 5-6 (of 8 frames);
    predictions right while present, a false positive on frame 4. The disappearance segment
    is frames 3-4 (J = 1 then J = 1/(FP + 1)), the reappearance one frames 5-6."""
    shape = (20, 30)
    obj = box(shape, 5, 10, 5, 10)
    empty = np.zeros(shape, np.uint8)
    gt = np.stack([obj, obj, obj, empty, empty, obj, obj, obj])
    pred = gt.copy()
    pred[4] = box(shape, 12, 14, 12, 14)  # a 4-pixel false positive while the object is gone
    pred[6] = box(shape, 5, 10, 5, 9)  # 20 of 25 pixels after it is back
    result = mose2_video(tmp_path, gt, pred)
    row = result["per_object"][0]
    assert row["disappear_J"] == pytest.approx((1 + 1 / 5) / 2)
    assert row["reappear_J"] == pytest.approx((1 + 21 / 26) / 2)
    official = ref.mose2_overall([ref.mose2_object(gt, pred, 1)])
    for key in ("disappear_J&F_new", "reappear_J&F_new"):
        assert result["overall"][key] == pytest.approx(official[key]), key


def test_mose2_segments_use_the_adaptive_boundary(tmp_path):
    """At 120x160 (F's width 2, F_new's 1 for a 10x10 object) a 2-pixel shift after the
    reappearance costs F_new, not F: the reappearance J&F_new is built on F_new."""
    shape = (120, 160)
    obj, empty = box(shape, 40, 50, 40, 50), np.zeros(shape, np.uint8)
    gt = np.stack([obj, obj, obj, empty, empty, obj, obj, obj])
    pred = gt.copy()
    pred[5] = pred[6] = box(shape, 40, 50, 42, 52)
    result = mose2_video(tmp_path, gt, pred)
    row = result["per_object"][0]
    assert result["overall"]["F"] == 1 and row["reappear_F_new"] < 0.8
    official = ref.mose2_overall([ref.mose2_object(gt, pred, 1)])
    assert result["overall"]["reappear_J&F_new"] == pytest.approx(official["reappear_J&F_new"])


# ---- LVOS -----------------------------------------------------------------------------------


def lvos_folders(tmp_path, frames, gt_objects, pred_objects=None):
    """Frames 1..frames; the annotations every 5th frame from 1."""
    shape = (20, 30)
    for frame in range(1, frames + 1):
        pred = box(shape, 5, 12, 5, 12) if (pred_objects or (lambda f: True))(frame) else np.zeros(shape, np.uint8)
        write(tmp_path / "pred" / "v", f"{frame:08d}.png", pred)
        if frame % 5 == 1:
            gt = box(shape, 5, 12, 5, 12) if gt_objects(frame) else np.zeros(shape, np.uint8)
            write(tmp_path / "gt" / "v", f"{frame:08d}.png", gt)


def test_lvos_frames_past_the_annotated_range_score_0(tmp_path):
    """frame_nums 5 but only 3 annotated frames in [start, end): the scorer keeps 5 - 2
    slots, fills those of frames 6 and 11 (right), and the third stays 0."""
    lvos_folders(tmp_path, 16, lambda f: True)
    meta = {"v": {"objects": {"1": {"frame_range": {"start": 1, "end": 16, "frame_nums": 5}}}}}
    row = bm.score_lvos(tmp_path / "pred", tmp_path / "gt", meta, unseen=set())["per_object"][0]
    assert row["J-Mean"] == pytest.approx(2 / 3) and row["F-Mean"] == pytest.approx(2 / 3)
    assert row["V-Mean"] == pytest.approx(math.sqrt(round(np.var([1, 1, 0]), 4)))


def test_lvos_skips_each_objects_first_and_last_annotated_frames(tmp_path):
    """Wrong predictions on frames 1 and 16 (the range's first and last annotated frames)
    do not count; one on frame 11 does."""
    meta = {"v": {"objects": {"1": {"frame_range": {"start": 1, "end": 21, "frame_nums": 4}}}}}
    lvos_folders(tmp_path, 21, lambda f: True, lambda f: f not in (1, 16))
    assert bm.score_lvos(tmp_path / "pred", tmp_path / "gt", meta, set())["per_object"][0]["J-Mean"] == 1
    lvos_folders(tmp_path, 21, lambda f: True, lambda f: f != 11)
    assert bm.score_lvos(tmp_path / "pred", tmp_path / "gt", meta, set())["per_object"][0]["J-Mean"] == 0.5


def test_lvos_v_rounds_the_variance_before_the_root():
    """A variance of 0.00004 rounds to 0: V = 0, where the unrounded root is 0.0063."""
    jf = np.array([0.5, 0.5 + 2 * math.sqrt(0.00004)])
    assert np.var(jf) == pytest.approx(0.00004)
    assert bm.lvos_v(jf, jf) == 0.0


def test_lvos_means_average_the_seen_and_the_unseen_groups(tmp_path):
    """Two seen objects with J 1 and one unseen with J 0.5: J-Mean is (1 + 0.5) / 2 = 0.75,
    not the mean over objects (0.833)."""
    shape = (20, 30)
    meta = {}
    for video, wrong in (("a", None), ("b", None), ("c", 11)):
        meta[video] = {"objects": {"1": {"frame_range": {"start": 1, "end": 21, "frame_nums": 4}}}}
        for frame in range(1, 22):
            right = box(shape, 5, 12, 5, 12)
            write(tmp_path / "pred" / video, f"{frame:08d}.png", right * 0 if frame == wrong else right)
            if frame % 5 == 1:
                write(tmp_path / "gt" / video, f"{frame:08d}.png", right)
    overall = bm.score_lvos(tmp_path / "pred", tmp_path / "gt", meta, unseen={"c"})["overall"]
    assert (overall["J-seen-Mean"], overall["J-unseen-Mean"]) == (1.0, 0.5)
    assert overall["J-Mean"] == 0.75


# ---- VOST -----------------------------------------------------------------------------------


def vost_scores(tmp_path, gt, pred):
    for t in range(len(gt)):
        write(tmp_path / "gt" / "v", f"{t:05d}.png", gt[t])
        write(tmp_path / "pred" / "v", f"{t:05d}.png", pred[t])
    return bm.score_vost(tmp_path / "pred", tmp_path / "gt", ["v"])["per_object"]


def test_vost_void_is_background_and_first_last_frames_are_skipped(tmp_path):
    """Object 1 in a void band: predicting the band costs J; empty first and last
    predictions cost nothing."""
    shape = (20, 30)
    gt = np.stack([box(shape, 10, 12, 0, 30, 255, box(shape, 2, 8, 2, 12))] * 4)
    pred = np.stack([box(shape, 10, 12, 0, 30, 1, box(shape, 2, 8, 2, 12))] * 4)
    pred[0] = pred[-1] = 0
    (row,) = vost_scores(tmp_path, gt, pred)
    assert row["J-Mean"] == pytest.approx(60 / (60 + 60))


def test_vost_j_last_is_the_last_quarter(tmp_path):
    """10 frames, 8 scored: J_last covers scored frames 6-7 (floor(0.75 x 8) on); a miss on
    scored frame 4 lowers J, not J_last."""
    shape = (20, 30)
    gt = np.stack([box(shape, 2, 8, 2, 12)] * 10)
    pred = gt.copy()
    pred[5] = 0  # scored frame 4
    (row,) = vost_scores(tmp_path, gt, pred)
    assert row["J-Mean"] == pytest.approx(7 / 8) and row["J_last-Mean"] == 1.0


# ---- SA-V -----------------------------------------------------------------------------------


def sav_scores(tmp_path, gts, preds):
    for k, (g, p) in enumerate(zip(gts, preds)):
        write(tmp_path / "gt" / "v" / "000", f"{4 * k:05d}.png", g * 255)
        write(tmp_path / "pred" / "v" / "000", f"{4 * k:05d}.png", p * 255)
    return bm.score_sav(tmp_path / "pred", tmp_path / "gt", ["v"])["per_object"][0]


def test_sav_object_starts_at_its_first_ground_truth_or_prediction(tmp_path):
    """Scored frames 1-4 (of 0-5): empty in both on frame 1 (not counted), a prediction
    before the object appears on frame 2 (counted: J 0), right on frames 3-4."""
    shape = (20, 30)
    obj, empty = box(shape, 5, 10, 5, 10), np.zeros(shape, np.uint8)
    gts = [obj, empty, empty, obj, obj, obj]
    preds = [empty, empty, obj, obj, obj, empty]  # the first and last frames are not scored
    row = sav_scores(tmp_path, gts, preds)
    assert row["J"] == pytest.approx(2 / 3) and row["F"] == pytest.approx(2 / 3)
    official = ref.sav_overall([(preds[1:-1], gts[1:-1])])
    assert row["J&F"] * 100 == pytest.approx(official[0])
