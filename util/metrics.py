"""J&F with the official DAVIS 2017 semi-supervised definitions.

    python -m util.metrics PRED_DIR GT_DIR [--videos a b ...]

J: region IoU (1 when both masks are empty). F: boundary F-measure, boundaries by the
DAVIS ``seg2bmap`` rule, matched within ceil(0.008 * image diagonal) pixels (a disk, as
skimage.morphology.disk, dilated with cv2). First and last frames are excluded; per object
Mean, Recall (> 0.5) and Decay (first quarter minus last quarter); J&F-Mean averages the
per-object J-Mean and F-Mean over all objects.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import cv2
import numpy as np

from util import cli
from util.atomic import atomic_save
from util.errors import DatasetError
from util.log import get_logger
from util.palette import read_mask

logger = get_logger(__name__)


def disk(radius: float) -> np.ndarray:
    """skimage.morphology.disk(radius) as uint8. A fractional radius gives skimage's grid
    ``arange(-radius, radius + 1)`` (not centred on a pixel), as the MOSE v2 scorer uses."""
    grid = np.arange(-radius, radius + 1)
    x, y = np.meshgrid(grid, grid)
    return (x * x + y * y <= radius * radius).astype(np.uint8)


def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """Boundary pixels: a pixel differs from its right, bottom or bottom-right neighbour."""
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


def region_j(pred: np.ndarray, gt: np.ndarray) -> float:
    inter = np.logical_and(pred, gt).sum()
    union = np.logical_or(pred, gt).sum()
    return 1.0 if union == 0 else float(inter / union)


def boundary_f(pred: np.ndarray, gt: np.ndarray, bound_th: float = 0.008, radius: float | None = None) -> float:
    """Boundary F-measure; boundaries match within ``radius`` pixels (default
    ceil(bound_th * image diagonal))."""
    if radius is None:
        radius = int(math.ceil(bound_th * np.linalg.norm(pred.shape)))
    fg, gt_b = seg2bmap(pred), seg2bmap(gt)
    se = disk(radius)
    fg_dil = cv2.dilate(fg.astype(np.uint8), se)
    gt_dil = cv2.dilate(gt_b.astype(np.uint8), se)
    n_fg, n_gt = fg.sum(), gt_b.sum()
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1.0, 0.0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0.0, 1.0
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    else:
        precision = float((fg * gt_dil).sum() / n_fg)
        recall = float((gt_b * fg_dil).sum() / n_gt)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def statistics(values: np.ndarray) -> tuple[float, float, float]:
    """(Mean, Recall, Decay) of per-frame values, as db_statistics. Its bin bounds are uint8
    there (the DAVIS, VOST and LVOS tools alike): past 256 frames they wrap, and so do these
    (then used as NumPy 1, which the tools were written for, adds to a uint8: without overflow)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = float(np.nanmean(values))
        recall = float(np.nanmean(values > 0.5))
        ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(np.uint8).astype(int)
        bins = [values[ids[i] : ids[i + 1] + 1] for i in range(4)]
        decay = float(np.nanmean(bins[0]) - np.nanmean(bins[3]))
    return mean, recall, decay


def evaluate_video(pred: np.ndarray, gt: np.ndarray) -> dict[int, dict[str, list[float]]]:
    """Per-object per-frame J and F for (T, H, W) label maps; frames 0 and T-1 excluded.

    Objects are 1..max id of the first ground-truth frame (255 = void = background).
    """
    gt = np.where(gt == 255, 0, gt)
    num_objects = int(gt[0].max())
    if pred.shape != gt.shape:
        raise DatasetError(f"prediction shape {pred.shape} differs from ground truth {gt.shape}")
    if int(pred.max(initial=0)) > num_objects:
        raise DatasetError(f"prediction has id {int(pred.max())} but the ground truth has {num_objects} objects")
    out = {}
    for obj in range(1, num_objects + 1):
        js = [region_j(pred[t] == obj, gt[t] == obj) for t in range(1, len(gt) - 1)]
        fs = [boundary_f(pred[t] == obj, gt[t] == obj) for t in range(1, len(gt) - 1)]
        out[obj] = {"J": js, "F": fs}
    return out


def read_video_masks(folder: Path, names: list[str]) -> np.ndarray:
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: missing {len(missing)} masks, e.g. {missing[0]}")
    return np.stack([read_mask(folder / n) for n in names])


def evaluate_folders(pred_root: Path, gt_root: Path, videos: list[str] | None = None, binary: bool = False) -> dict:
    """J&F of the videos in ``pred_root`` (one folder of PNGs each) against ``gt_root``.

    ``binary``: 0/255 masks of one object (DAVIS 2016), read as foreground > 127.
    """
    videos = (
        videos
        if videos is not None
        else sorted(p.name for p in pred_root.iterdir() if p.is_dir() and not p.name.startswith("."))
    )
    per_object = {}
    for video in videos:
        names = sorted(p.name for p in (gt_root / video).glob("*.png"))
        gt = read_video_masks(gt_root / video, names)
        pred = read_video_masks(pred_root / video, names)
        if binary:
            gt, pred = (gt > 127).astype(np.uint8), (pred > 127).astype(np.uint8)
        per_object.update(object_scores(video, pred, gt))
    if not per_object:
        raise DatasetError(f"no object to evaluate in {pred_root}")
    return summarise(per_object)


def object_scores(video: str, pred: np.ndarray, gt: np.ndarray) -> dict[str, dict[str, float]]:
    """``<video>_<object>`` -> J and F Mean, Recall and Decay, for (T, H, W) label maps."""
    out = {}
    for obj, scores in evaluate_video(pred, gt).items():
        j = statistics(np.array(scores["J"]))
        f = statistics(np.array(scores["F"]))
        out[f"{video}_{obj}"] = {
            "J-Mean": j[0],
            "J-Recall": j[1],
            "J-Decay": j[2],
            "F-Mean": f[0],
            "F-Recall": f[1],
            "F-Decay": f[2],
        }
    return out


def summarise(per_object: dict[str, dict[str, float]]) -> dict:
    """The overall means over every object (J&F-Mean: of the J and F Means), and the objects."""
    keys = ["J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
    overall = {k: float(np.mean([o[k] for o in per_object.values()])) for k in keys}
    overall["J&F-Mean"] = (overall["J-Mean"] + overall["F-Mean"]) / 2
    return {"overall": overall, "per_object": per_object}


def format_results(results: dict) -> str:
    """The J&F table: overall, then each object by its full name (``<video>_<id>``)."""
    keys = ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
    width = max([len("overall")] + [len(name) for name in results["per_object"]])
    lines = [f"{'object':<{width}}" + "".join(f"{k:>10}" for k in keys)]
    o = results["overall"]
    lines.append(f"{'overall':<{width}}" + "".join(f"{o[k]:10.4f}" for k in keys))
    for name, r in results["per_object"].items():
        jf = (r["J-Mean"] + r["F-Mean"]) / 2
        lines.append(f"{name:<{width}}{jf:10.4f}" + "".join(f"{r[k]:10.4f}" for k in keys[1:]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = cli.argument_parser("J&F of predicted masks against DAVIS-style ground truth")
    p.add_argument("pred_dir", type=Path, help="predicted masks: <video>/<frame>.png")
    p.add_argument("gt_dir", type=Path, help="ground truth in the same layout (e.g. DAVIS's Annotations/480p)")
    p.add_argument("--videos", nargs="*", help="videos to score (default: every video folder in pred_dir)")
    p.add_argument("--binary", action="store_true", help="0/255 single-object masks (DAVIS 2016)")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    for d in (args.pred_dir, args.gt_dir):
        if not d.is_dir():
            raise DatasetError(f"{d}: folder not found")
    results = evaluate_folders(args.pred_dir, args.gt_dir, args.videos, args.binary)
    logger.info(format_results(results))
    if args.json:
        atomic_save(lambda tmp: tmp.write_text(json.dumps(results, indent=1)), args.json)


if __name__ == "__main__":
    cli.run(main)
