"""MOSE v2, LVOS, VOST and SA-V scores, computed as each benchmark's official tool computes
them (MOSE v1 is scored by the DAVIS definitions, ``util.metrics``).

Each ``score_*`` function reads predicted and ground-truth PNG folders and returns
``{"overall": {metric: value}, "per_object": [{"object": name, metric: value, ...}]}``, with
the metric names the official tool prints. Values are fractions in [0, 1] (the tools print
MOSE v2 and SA-V in percent); a mean over no object (e.g. LVOS's unseen group when no video
is unseen) is ``nan``, as the tools compute it. What differs between the benchmarks:

- MOSE v2: frames paired by position in the sorted prediction listing, first and last
  skipped; J = (inter + 1) / (union + 1); F at an adaptive boundary width (ceil(0.1 *
  sqrt(object area)), at most the DAVIS width 0.008 * diagonal) as ``F_new``, the DAVIS one
  as ``F``; J&F over the frames where an object has disappeared and where it has reappeared.
- LVOS: each object inside its ``frame_range`` on every 5th frame, its first and last such
  frame skipped; J, F (DAVIS) per object; V = standard deviation of per-frame (J + F) / 2
  (the variance rounded to 4 decimals first); means over seen and unseen videos, averaged.
- VOST: J only; 255 is background (predictions there count against J); the objects are
  those of the first annotation; J_last over the last quarter of the scored frames.
- SA-V: one binary PNG per object and frame; an object's frames count from the first where
  its ground truth or prediction is non-empty; J, F in DAVIS' definitions.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from util.metrics import boundary_f, region_j, statistics
from util.palette import read_mask

DAVIS_BOUNDARY = 0.008  # boundary width, fraction of the image diagonal
MOSE2_BOUNDARY = 0.1  # adaptive boundary width, fraction of sqrt(object area)
LVOS_STEP = 5  # LVOS annotates every 5th frame


def _labels(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: mask not found")
    return read_mask(path)


def _pngs(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: folder not found")
    return sorted(p.name for p in folder.iterdir() if p.suffix == ".png" and not p.name.startswith("."))


def _summary(per_object: list[dict], keys: list[str]) -> dict[str, float]:
    return {k: float(np.mean([o[k] for o in per_object])) for k in keys}


# ---- MOSE v2 ----------------------------------------------------------------------------

MOSE2_METRICS = ["J&F_new", "J", "F_new", "disappear_J&F_new", "reappear_J&F_new", "F", "J&F"]


def mose2_j(pred: np.ndarray, gt: np.ndarray) -> float:
    """(inter + 1) / (union + 1); 1 when both are empty."""
    union = np.logical_or(pred, gt).sum()
    if union == 0:
        return 1.0
    return float(min(1.0, (np.logical_and(pred, gt).sum() + 1) / (union + 1)))


def mose2_f(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """(F at the DAVIS width, F at the adaptive width). The DAVIS width is ceil(0.008 *
    diagonal) when the adaptive one is smaller, else 0.008 * diagonal unrounded (a disk of
    fractional radius, as skimage draws it)."""
    davis = DAVIS_BOUNDARY * float(np.linalg.norm(pred.shape))
    if gt.any():
        adaptive = math.ceil(MOSE2_BOUNDARY * math.sqrt(int(gt.sum())))
    else:
        adaptive = math.ceil(MOSE2_BOUNDARY * float(np.linalg.norm(pred.shape)))
    adaptive = min(davis, adaptive)
    if adaptive < davis:
        return boundary_f(pred, gt, radius=math.ceil(davis)), boundary_f(pred, gt, radius=adaptive)
    f = boundary_f(pred, gt, radius=davis)
    return f, f


def mose2_segments(j: np.ndarray, f: np.ndarray, empty_gt: np.ndarray) -> tuple[float | None, ...]:
    """Mean (J, F) over the disappearance segments (from a frame where the object's ground
    truth becomes empty up to its reappearance; not one that starts on the first scored
    frame) and over the reappearance segments (up to the next disappearance); each a
    mean of per-segment means, None when there is none. Returns (dis_J, dis_F, re_J, re_F)."""
    disappear = list(np.where(~empty_gt[:-1] & empty_gt[1:])[0] + 1)
    if empty_gt[0]:
        disappear.insert(0, 0)
    reappear = list(np.where(empty_gt[:-1] & ~empty_gt[1:])[0] + 1)
    gone = []
    for i, start in enumerate(disappear):
        end = reappear[i] if i < len(reappear) else len(empty_gt)
        if start > 0:
            gone.append((j[start:end].mean(), f[start:end].mean()))
    back = []
    for i, start in enumerate(reappear):
        end = disappear[i + 1] if i + 1 < len(disappear) else len(empty_gt)
        back.append((j[start:end].mean(), f[start:end].mean()))
    out: list[float | None] = []
    for segments in (gone, back):
        out += (
            [float(np.mean([s[0] for s in segments])), float(np.mean([s[1] for s in segments]))]
            if segments
            else [None, None]
        )
    return tuple(out)


def score_mose2(pred_root: Path, gt_root: Path, meta: dict) -> dict:
    """MOSE v2: ``meta`` is meta.json's ``videos`` ({video: {"length", "objects": [ids]}}) of
    the videos to score; ``gt_root/<video>`` holds every frame's annotation."""
    per_object = []
    for video in sorted(meta):
        length, objects = int(meta[video]["length"]), [int(o) for o in meta[video]["objects"]]
        gt_count = len(_pngs(gt_root / video))
        if gt_count != length:
            raise ValueError(f"{gt_root / video}: {gt_count} annotations, meta.json says {length} frames")
        names = sorted(_pngs(pred_root / video), key=lambda n: int(n.split(".")[0]))
        if len(names) < length - 1:
            raise ValueError(f"{pred_root / video}: {len(names)} masks for a video of {length} frames")
        frames = [(_labels(pred_root / video / n), _labels(gt_root / video / n)) for n in names[1 : length - 1]]
        for obj in objects:
            j, f, f_new, empty = [], [], [], []
            for pred, gt in frames:
                p, g = pred == obj, gt == obj
                j.append(mose2_j(p, g))
                classic, adaptive = mose2_f(p, g)
                f.append(classic)
                f_new.append(adaptive)
                empty.append(not g.any())
            if not j:  # a video of two frames or fewer has nothing to score: the tool counts 0
                j, f, f_new = [0.0], [0.0], [0.0]
                segments: tuple = (None,) * 4
            else:
                segments = mose2_segments(np.array(j), np.array(f_new), np.array(empty))
            per_object.append(
                {
                    "object": f"{video}_{obj}",
                    "J": float(np.mean(j)),
                    "F_new": float(np.mean(f_new)),
                    "F": float(np.mean(f)),
                    "disappear_J": segments[0],
                    "disappear_F_new": segments[1],
                    "reappear_J": segments[2],
                    "reappear_F_new": segments[3],
                }
            )

    def mean_of(key: str) -> float:
        values = [o[key] for o in per_object if o[key] is not None]
        return float(np.mean(values)) if values else math.nan

    j, f_new, f = mean_of("J"), mean_of("F_new"), mean_of("F")
    overall = {
        "J&F_new": (j + f_new) / 2,
        "J": j,
        "F_new": f_new,
        "disappear_J&F_new": (mean_of("disappear_J") + mean_of("disappear_F_new")) / 2,
        "reappear_J&F_new": (mean_of("reappear_J") + mean_of("reappear_F_new")) / 2,
        "F": f,
        "J&F": (j + f) / 2,
    }
    return {"overall": overall, "per_object": per_object}


# ---- LVOS -------------------------------------------------------------------------------

LVOS_METRICS = [
    "J&F-Mean",
    "J-Mean",
    "J-seen-Mean",
    "J-unseen-Mean",
    "F-Mean",
    "F-seen-Mean",
    "F-unseen-Mean",
    "V-Mean",
    "V-seen-Mean",
    "V-unseen-Mean",
]


def lvos_frames(frame_range: dict) -> list[int]:
    """The scored frame numbers (1-based, as the file names) of one object: every 5th from
    ``start`` below ``end``, without the first and the ``frame_nums``-th."""
    count = int(frame_range["frame_nums"])
    every = list(range(int(frame_range["start"]), int(frame_range["end"]), LVOS_STEP))
    if len(every) > count:
        raise ValueError(f"frame_range {frame_range}: more annotated frames than frame_nums")
    return [f for k, f in enumerate(every) if 0 < k < count - 1]


def lvos_v(j: np.ndarray, f: np.ndarray) -> float:
    """V: sqrt of the variance of per-frame (J + F) / 2, rounded to 4 decimals first."""
    jf = (j + f) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        variance = np.nansum((np.nanmean(jf) - jf) ** 2) / len(jf) if len(jf) else math.nan
    return math.sqrt(round(float(variance), 4))


def score_lvos(pred_root: Path, gt_root: Path, meta: dict, unseen: set[str]) -> dict:
    """LVOS v1/v2: ``meta`` is ``<split>_meta.json``'s ``videos`` ({video: {"objects": {id:
    {"frame_range": {"start", "end", "frame_nums"}}}}}); ``unseen``: the videos of unseen
    categories. Objects are named ``<video>_<n>`` (n: 1-based position in the meta)."""
    per_object = []
    for video in sorted(meta):
        objects = list(meta[video]["objects"].items())
        # frames past an object's range score 0; each frame is read once, for all its objects
        j = [np.zeros(max(int(info["frame_range"]["frame_nums"]) - 2, 0)) for _, info in objects]
        f = [np.zeros(len(scores)) for scores in j]
        uses: dict[int, list[tuple[int, int]]] = {}  # frame -> (object position, its k-th scored frame)
        for i, (_, info) in enumerate(objects):
            for k, frame in enumerate(lvos_frames(info["frame_range"])):
                uses.setdefault(frame, []).append((i, k))
        for frame in sorted(uses):
            gt_labels = _labels(gt_root / video / f"{frame:08d}.png")
            pred_labels = _labels(pred_root / video / f"{frame:08d}.png")
            for i, k in uses[frame]:
                gt, pred = gt_labels == int(objects[i][0]), pred_labels == int(objects[i][0])
                j[i][k], f[i][k] = region_j(pred, gt), boundary_f(pred, gt)
        for n, (oj, of) in enumerate(zip(j, f), start=1):
            with np.errstate(invalid="ignore"):
                jm = float(np.nanmean(oj)) if len(oj) else math.nan
                fm = float(np.nanmean(of)) if len(of) else math.nan
            per_object.append(
                {
                    "object": f"{video}_{n}",
                    "seen": video not in unseen,
                    "J-Mean": jm,
                    "F-Mean": fm,
                    "V-Mean": lvos_v(oj, of),
                }
            )

    def group_mean(key: str, seen: bool) -> float:
        values = [o[key] for o in per_object if o["seen"] == seen]
        return float(np.mean(values)) if values else math.nan

    overall = {}
    for m in ("J", "F", "V"):
        seen, unseen_mean = group_mean(f"{m}-Mean", True), group_mean(f"{m}-Mean", False)
        overall.update({f"{m}-Mean": (seen + unseen_mean) / 2, f"{m}-seen-Mean": seen, f"{m}-unseen-Mean": unseen_mean})
    overall["J&F-Mean"] = (
        overall["J-seen-Mean"] + overall["F-seen-Mean"] + overall["J-unseen-Mean"] + overall["F-unseen-Mean"]
    ) / 4
    return {"overall": {k: overall[k] for k in LVOS_METRICS}, "per_object": per_object}


# ---- VOST -------------------------------------------------------------------------------

VOST_METRICS = ["J-Mean", "J-Recall", "J-Decay", "J_last-Mean", "J_last-Recall", "J_last-Decay"]
VOID_LABEL = 255


def score_vost(pred_root: Path, gt_root: Path, videos: list[str]) -> dict:
    """VOST: every annotated frame of ``gt_root/<video>`` but the first and last; the objects
    are 1..max id of the first annotation (255 = void = background)."""
    per_object = []
    for video in videos:
        names = _pngs(gt_root / video)
        first = _labels(gt_root / video / names[0])
        num_objects = int(np.where(first == VOID_LABEL, 0, first).max())
        names = names[1:-1]
        last_quarter = int(math.floor(len(names) * 0.75))
        gts = [_labels(gt_root / video / n) for n in names]
        preds = [_labels(pred_root / video / n) for n in names]
        for obj in range(1, num_objects + 1):
            j = np.array([region_j(p == obj, g == obj) for p, g in zip(preds, gts)])
            jm, jr, jd = statistics(j)
            lm, lr, ld = statistics(j[last_quarter:])
            per_object.append(
                {
                    "object": f"{video}_{obj}",
                    "J-Mean": jm,
                    "J-Recall": jr,
                    "J-Decay": jd,
                    "J_last-Mean": lm,
                    "J_last-Recall": lr,
                    "J_last-Decay": ld,
                }
            )
    return {"overall": _summary(per_object, VOST_METRICS), "per_object": per_object}


# ---- SA-V -------------------------------------------------------------------------------

SAV_METRICS = ["J&F", "J", "F"]


def sav_object(preds: list[np.ndarray], gts: list[np.ndarray]) -> tuple[float, float] | None:
    """Mean (J, F) of one object over its scored frames (binary masks), counted from the
    first frame where the ground truth or the prediction is non-empty; None when the
    ground truth is empty on every scored frame (the tool then has no score for it)."""
    j, f, started, in_gt = [], [], False, False
    for pred, gt in zip(preds, gts):
        started = started or bool(pred.any() or gt.any())
        in_gt = in_gt or bool(gt.any())
        if started:
            j.append(region_j(pred, gt))
            f.append(boundary_f(pred, gt))
    return (float(np.mean(j)), float(np.mean(f))) if in_gt else None


def score_sav(pred_root: Path, gt_root: Path, videos: list[str]) -> dict:
    """SA-V: ``<root>/<video>/<object>/<frame>.png`` binary masks; each object on its
    annotated frames but the first and last."""
    per_object = []
    for video in videos:
        for obj in sorted(p.name for p in (gt_root / video).iterdir() if p.is_dir()):
            names = _pngs(gt_root / video / obj)[1:-1]
            gts = [_labels(gt_root / video / obj / n) > 0 for n in names]
            preds = [_labels(pred_root / video / obj / n) > 0 for n in names]
            scores = sav_object(preds, gts)
            if scores is None:
                raise ValueError(
                    f"{gt_root / video / obj}: the object is empty on every scored frame; the SA-V "
                    f"tool cannot score it either"
                )
            per_object.append(
                {"object": f"{video}/{obj}", "J": scores[0], "F": scores[1], "J&F": (scores[0] + scores[1]) / 2}
            )
    overall = _summary(per_object, ["J", "F"])
    return {"overall": {"J&F": (overall["J"] + overall["F"]) / 2, **overall}, "per_object": per_object}
