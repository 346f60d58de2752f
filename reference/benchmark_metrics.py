"""The official scorers of MOSE v2, LVOS, VOST and SA-V, transcribed plainly on in-memory
arrays: the oracles ``tests/test_benchmarks.py`` checks ``benchmarks.scoring`` against.

Written from the definitions of MOSE-api (``MOSEv2/.../tools/score.py``, ``metricsv2.py``),
lvos-evaluation (``lvos/evaluation.py``, ``metrics.py`` on its Python path, ``utils.py``),
VOST (``evaluation/source``) and SAM2 (``sav_dataset/utils/sav_benchmark.py``), step by step
as those tools do it (per-frame loops, their edge cases), sharing nothing with the project.
Masks are (H, W) integer arrays: label maps (ids), or binary masks for SA-V.
"""

from __future__ import annotations

import math
import warnings

import cv2
import numpy as np


def disk(radius):
    """skimage.morphology.disk: the grid arange(-radius, radius + 1) (fractional radii too)."""
    grid = np.arange(-radius, radius + 1)
    x, y = np.meshgrid(grid, grid)
    return np.array((x**2 + y**2) <= radius**2, dtype=np.uint8)


def seg2bmap(seg):
    seg = seg.astype(bool)
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = seg ^ e | seg ^ s | seg ^ se
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = 0
    return b


def f_measure(foreground_mask, gt_mask, bound_pix):
    fg_boundary = seg2bmap(foreground_mask).astype(np.uint8)
    gt_boundary = seg2bmap(gt_mask).astype(np.uint8)
    fg_dil = cv2.dilate(fg_boundary, disk(bound_pix))
    gt_dil = cv2.dilate(gt_boundary, disk(bound_pix))
    gt_match = gt_boundary * fg_dil
    fg_match = fg_boundary * gt_dil
    n_fg = np.sum(fg_boundary)
    n_gt = np.sum(gt_boundary)
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1, 0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0, 1
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1, 1
    else:
        precision = np.sum(fg_match) / float(n_fg)
        recall = np.sum(gt_match) / float(n_gt)
    if precision + recall == 0:
        return 0
    return 2 * precision * recall / (precision + recall)


def davis_f(foreground_mask, gt_mask):
    return f_measure(foreground_mask, gt_mask, np.ceil(0.008 * np.linalg.norm(foreground_mask.shape)))


def db_statistics(per_frame_values):
    """Mean, recall, decay; the bin bounds uint8 (added to as NumPy 1 did: no overflow)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        M = np.nanmean(per_frame_values)
        R = np.nanmean(per_frame_values > 0.5)
        ids = np.round(np.linspace(1, len(per_frame_values), 5) + 1e-10) - 1
        ids = ids.astype(np.uint8)
        D_bins = [per_frame_values[int(ids[i]) : int(ids[i + 1]) + 1] for i in range(0, 4)]
        D = np.nanmean(D_bins[0]) - np.nanmean(D_bins[3])
    return M, R, D


# ---- MOSE v2 (score.py, metricsv2.py) -----------------------------------------------------


def mose2_iou(annotation, segmentation):
    inters = np.sum(np.logical_and(segmentation, annotation))
    union = np.sum(np.logical_or(segmentation, annotation))
    j = np.clip((inters + 1) / (union + 1), 0, 1)
    j = 1 if np.isclose(union, 0) else j
    return j, np.sum(annotation) == 0


def mose2_f_adaptive(foreground_mask, gt_mask, bound_th=0.1):
    diag = np.linalg.norm(foreground_mask.shape)
    if np.any(gt_mask):
        bound_pix = np.ceil(bound_th * np.sqrt(np.sum(gt_mask > 0)))
    else:
        bound_pix = np.ceil(bound_th * diag)
    bound_pix = min(0.008 * diag, bound_pix)
    if bound_pix < 0.008 * diag:
        f = f_measure(foreground_mask, gt_mask, np.ceil(0.008 * diag))
        f_ = f_measure(foreground_mask, gt_mask, bound_pix)
    else:
        f = f_measure(foreground_mask, gt_mask, 0.008 * diag)
        f_ = f
    return f, f_


def mose2_object(gt_frames, pred_frames, anno_id):
    """One object of one video: all frames (T, H, W) label maps; returns
    [j, f, f_, disappear_j, disappear_f, reappear_j, reappear_f] as merge_chunk_results."""
    vid_len = len(gt_frames)
    j_list, f_list, f_list_, empty_gt = [], [], [], []
    for frame_idx in range(1, vid_len - 1):
        gt = (gt_frames[frame_idx] == anno_id).astype(np.uint8)
        pred = (pred_frames[frame_idx] == anno_id).astype(np.uint8)
        j, empty = mose2_iou(gt, pred)
        f_classic, f_adaptive = mose2_f_adaptive(pred, gt)
        j_list.append(j)
        empty_gt.append(empty)
        f_list_.append(f_classic)
        f_list.append(f_adaptive)
    if not j_list:
        return [0, 0, 0, None, None, None, None]
    j_list, f_list, f_list_ = np.array(j_list), np.array(f_list), np.array(f_list_)
    empty_gt = np.array(empty_gt, dtype=bool)
    j, f, f_ = j_list.mean(), f_list.mean(), f_list_.mean()
    disappear_frames = np.where(~empty_gt[:-1] & empty_gt[1:])[0] + 1
    if empty_gt[0] == 1:
        disappear_frames = np.insert(disappear_frames, 0, 0)
    reappear_frames = np.where(empty_gt[:-1] & ~empty_gt[1:])[0] + 1
    disappear_j, disappear_f = None, None
    if len(disappear_frames) > 0:
        segments = []
        for i, start_frame in enumerate(disappear_frames):
            end_frame = reappear_frames[i] if i < len(reappear_frames) else len(empty_gt)
            if start_frame > 0:
                segments.append((j_list[start_frame:end_frame].mean(), f_list[start_frame:end_frame].mean()))
        if segments:
            disappear_j = np.mean([s[0] for s in segments])
            disappear_f = np.mean([s[1] for s in segments])
    reappear_j, reappear_f = None, None
    if len(reappear_frames) > 0:
        segments = []
        for i, start_frame in enumerate(reappear_frames):
            end_frame = disappear_frames[i + 1] if i + 1 < len(disappear_frames) else len(empty_gt)
            segments.append((j_list[start_frame:end_frame].mean(), f_list[start_frame:end_frame].mean()))
        reappear_j = np.mean([s[0] for s in segments])
        reappear_f = np.mean([s[1] for s in segments])
    return [j, f, f_, disappear_j, disappear_f, reappear_j, reappear_f]


def mose2_overall(results):
    """``results``: mose2_object's lists of every object; the printed scores (as fractions)."""
    j = [r[0] for r in results]
    f = [r[1] for r in results]
    f_ = [r[2] for r in results]
    dj = [r[3] for r in results if r[3] is not None]
    df = [r[4] for r in results if r[4] is not None]
    rj = [r[5] for r in results if r[5] is not None]
    rf = [r[6] for r in results if r[6] is not None]
    with np.errstate(invalid="ignore"):
        mean = lambda v: np.mean(v) if len(v) else np.nan  # noqa: E731  (np.mean([]) is nan, with a warning)
        return {
            "J&F_new": (mean(j) + mean(f)) / 2,
            "J": mean(j),
            "F_new": mean(f),
            "disappear_J&F_new": (mean(dj) + mean(df)) / 2,
            "reappear_J&F_new": (mean(rj) + mean(rf)) / 2,
            "F": mean(f_),
            "J&F": (mean(j) + mean(f_)) / 2,
        }


# ---- LVOS (lvos-evaluation, semi-supervised) ----------------------------------------------


def lvos_iou(annotation, segmentation):
    inters = np.sum(segmentation.astype(bool) & annotation.astype(bool))
    union = np.sum(segmentation.astype(bool) | annotation.astype(bool))
    return 1 if np.isclose(union, 0) else inters / union


def lvos_object(gt_by_frame, pred_by_frame, frame_range, obj):
    """``*_by_frame``: frame number -> (H, W) label map. Returns the (1, n-2) J and F rows."""
    frame_num = int(frame_range["frame_nums"])
    j_res = np.zeros((1, frame_num - 2))
    f_res = np.zeros((1, frame_num - 2))
    oidx = 0
    for ii in range(int(frame_range["start"]), int(frame_range["end"]), 5):
        if oidx == 0 or oidx == frame_num - 1:
            oidx += 1
            continue
        gt = (gt_by_frame[ii] == obj).astype(np.uint8)
        res = (pred_by_frame[ii] == obj).astype(np.uint8)
        j_res[0, oidx - 1] = lvos_iou(gt, res)
        f_res[0, oidx - 1] = davis_f(res, gt)
        oidx += 1
    return j_res, f_res


def lvos_var(j, f):
    jf = (j + f) / 2
    jfm = np.nanmean(jf)
    var = jfm - jf
    v = np.nansum(var**2) / jf.shape[1]
    return math.sqrt(round(v, 4))


def lvos_overall(objects):
    """``objects``: (J row, F row, unseen) per object; the global table's values."""
    groups = {False: {"J": [], "F": [], "V": []}, True: {"J": [], "F": [], "V": []}}
    with np.errstate(invalid="ignore", divide="ignore"):
        for j, f, unseen in objects:
            groups[unseen]["J"].append(np.nanmean(j))
            groups[unseen]["F"].append(np.nanmean(f))
            groups[unseen]["V"].append(lvos_var(j, f))
        m = {
            (k, unseen): (np.mean(groups[unseen][k]) if groups[unseen][k] else np.nan)
            for k in "JFV"
            for unseen in (False, True)
        }
    return {
        "J&F-Mean": (m["J", False] + m["F", False] + m["J", True] + m["F", True]) / 4,
        "J-Mean": (m["J", False] + m["J", True]) / 2,
        "J-seen-Mean": m["J", False],
        "J-unseen-Mean": m["J", True],
        "F-Mean": (m["F", False] + m["F", True]) / 2,
        "F-seen-Mean": m["F", False],
        "F-unseen-Mean": m["F", True],
        "V-Mean": (m["V", False] + m["V", True]) / 2,
        "V-seen-Mean": m["V", False],
        "V-unseen-Mean": m["V", True],
    }


# ---- VOST (evaluation/source) ---------------------------------------------------------------


def vost_video(gt_masks, res_masks):
    """(T, H, W) ground truth and prediction over every annotated frame; returns
    [(J stats, J_last stats)] per object, stats = (M, R, D)."""
    gt_masks = gt_masks.astype(float).copy()
    gt_masks[gt_masks == 255] = 0
    num_objects = int(np.max(gt_masks[0]))
    gt = (np.arange(1, num_objects + 1)[:, None, None, None] == gt_masks[None]) > 0
    gt = gt[:, 1:-1]
    res = res_masks[1:-1].astype(float)
    num_res = int(np.max(res))
    res = (np.arange(1, num_res + 1)[:, None, None, None] == res[None]) > 0
    if res.shape[0] > gt.shape[0]:
        res = res[: gt.shape[0]]
    elif res.shape[0] < gt.shape[0]:
        res = np.concatenate([res, np.zeros((gt.shape[0] - res.shape[0], *res.shape[1:]), bool)], axis=0)
    last_quarter_ind = int(math.floor(gt.shape[1] * 0.75))
    out = []
    for ii in range(gt.shape[0]):
        j = np.array([lvos_iou(gt[ii, t], res[ii, t]) for t in range(gt.shape[1])])
        out.append((db_statistics(j), db_statistics(j[last_quarter_ind:])))
    return out


# ---- SA-V (sav_benchmark.py) ------------------------------------------------------------------


class SavEvaluator:
    """One object's Evaluator: fed binary (pred, gt) frames, concluded in percent."""

    def __init__(self):
        self.objects_in_gt, self.objects_in_masks = set(), set()
        self.object_iou, self.boundary_f = {}, {}

    def feed_frame(self, mask, gt):
        gt_objects = [o for o in np.unique(gt).tolist() if o != 0]
        mask_objects = [o for o in np.unique(mask).tolist() if o != 0]
        self.objects_in_gt.update(gt_objects)
        self.objects_in_masks.update(mask_objects)
        for obj in self.objects_in_gt | self.objects_in_masks:
            m, g = mask == obj, gt == obj
            inter, total = (m * g).sum(), m.sum() + g.sum()
            iou = 1 if inter == total else inter / (total - inter)
            self.object_iou.setdefault(obj, []).append(iou)
            self.boundary_f.setdefault(obj, []).append(davis_f(m, g))

    def conclude(self):
        return (
            {o: np.mean(self.object_iou[o]) * 100 for o in self.objects_in_gt},
            {o: np.mean(self.boundary_f[o]) * 100 for o in self.objects_in_gt},
        )


def sav_overall(objects):
    """``objects``: (pred frames, gt frames) binary lists per object, the first and last
    annotated frame already dropped. Returns (J&F, J, F) in percent."""
    ious, fs = [], []
    for preds, gts in objects:
        ev = SavEvaluator()
        for p, g in zip(preds, gts):
            ev.feed_frame(p > 0, g > 0)
        iou, f = ev.conclude()
        assert len(iou) == 1
        ious += list(iou.values())
        fs += list(f.values())
    j, f = np.array(ious).mean(), np.array(fs).mean()
    return (j + f) / 2, j, f
