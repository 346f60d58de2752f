"""Any method's masks scored against a benchmark's ground truth, with the official tools'
numbers and units, per video and per object, and the confidence intervals of
``evaluation.statistics``.

The scores come from the scorers the evaluation uses (``util.metrics`` for DAVIS, the
``benchmarks.readers``' scorers for the rest), one video at a time (a progress bar, and
``processes`` to share the videos among processes). The overall numbers are then the
object-weighted means the tools compute, rebuilt from the per-object values by the metric
definitions in ``METRICS`` (a test holds them equal to the scorers' own overall numbers).

Units are the official tool's: MOSE v2 and SA-V in percent (as their tools print them),
the others as fractions in [0, 1].
"""

from __future__ import annotations

import json
import math
import multiprocessing
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

import numpy as np
from PIL import Image
from tqdm import tqdm

from benchmarks.readers import BenchmarkSet, SavVideo
from benchmarks.scoring import LVOS_METRICS, VOST_METRICS
from datasets.eval_datasets import EvalVideo
from evaluation.statistics import bootstrap_ci, paired_difference
from util.errors import DatasetError
from util.log import get_logger
from util.metrics import evaluate_folders
from util.palette import read_mask

logger = get_logger(__name__)

DAVIS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
_LVOS = {
    "J&F-Mean": ("J-Mean@seen", "F-Mean@seen", "J-Mean@unseen", "F-Mean@unseen"),
    **{f"{m}-Mean": (f"{m}-Mean@seen", f"{m}-Mean@unseen") for m in "JFV"},
    **{f"{m}-{g}-Mean": (f"{m}-Mean@{g}",) for m in "JFV" for g in ("seen", "unseen")},
}
# metric -> its terms: per-object values ("key" or "key@group") whose means it averages, as
# each official tool computes its overall numbers
METRICS: dict[str, dict[str, tuple[str, ...]]] = {
    "davis2017": {m: ("J-Mean", "F-Mean") if m == "J&F-Mean" else (m,) for m in DAVIS},
    "davis2016": {m: ("J-Mean", "F-Mean") if m == "J&F-Mean" else (m,) for m in DAVIS},
    # MOSE v1: the DAVIS definitions, in the order util.metrics.summarise writes them
    "mose": {m: ("J-Mean", "F-Mean") if m == "J&F-Mean" else (m,) for m in DAVIS[1:] + DAVIS[:1]},
    "mose2": {
        "J&F_new": ("J", "F_new"),
        "J": ("J",),
        "F_new": ("F_new",),
        "disappear_J&F_new": ("disappear_J", "disappear_F_new"),
        "reappear_J&F_new": ("reappear_J", "reappear_F_new"),
        "F": ("F",),
        "J&F": ("J", "F"),
    },
    "lvos": {m: _LVOS[m] for m in LVOS_METRICS},
    "lvos2": {m: _LVOS[m] for m in LVOS_METRICS},
    "vost": {m: (m,) for m in VOST_METRICS},
    "sav": {"J&F": ("J", "F"), "J": ("J",), "F": ("F",)},
}
PERCENT = {"mose2", "sav"}  # the tools print these in percent
NOT_SCORES = {"object", "video", "seen", "area"}  # per-object fields that are no metric
AREA_SAMPLES = 5  # ground-truth frames read per video for the objects' areas


@dataclass
class Target:
    """A benchmark split with its ground truth: the videos and a scorer of one video."""

    benchmark: str
    videos: list[EvalVideo]
    score_video: Callable[[Path, str], list[dict]]  # (predictions root, video) -> per-object rows
    per_object_png: bool = False  # SA-V: <video>/<object>/<frame>.png
    binary: bool = False  # DAVIS 2016: 0/255 masks of one object
    lvos_objects: dict[str, list[str]] = field(default_factory=dict)  # LVOS: row number -> label id

    @property
    def metrics(self) -> dict[str, tuple[str, ...]]:
        return METRICS[self.benchmark]

    @property
    def headline(self) -> str:
        """The number papers quote: J&F (MOSE v2: J&F_new; VOST: J)."""
        return next(m for m in ("J&F-Mean", "J&F_new", "J&F", "J-Mean") if m in self.metrics)

    @property
    def scale(self) -> float:
        return 100.0 if self.benchmark in PERCENT else 1.0

    @property
    def layout(self) -> str:
        if self.per_object_png:
            return "DIR/<video>/<object>/<frame>.png (one binary PNG per object folder of the ground truth)"
        kind = "0/255 PNG" if self.binary else "indexed PNG, pixel value = object id"
        return f"DIR/<video>/<frame>.png ({kind}; the ground truth's frame names)"

    def object_label(self, video: str, row: dict) -> tuple[str, int]:
        """(sub-folder of the video's ground truth, label there) of a per-object row."""
        if self.per_object_png:
            return row["object"].rsplit("/", 1)[1], 1
        number = row["object"].rsplit("_", 1)[1]
        if self.lvos_objects:
            return "", int(self.lvos_objects[video][int(number) - 1])
        return "", 1 if self.binary else int(number)


def davis_target(videos: list[EvalVideo], binary: bool = False) -> Target:
    """DAVIS 2017 (label maps) or 2016 (``binary``) videos with full ground truth."""
    if any(v.gt_dir is None for v in videos):
        raise DatasetError("the ground truth of every frame is needed to score")
    gt_root = videos[0].gt_dir.parent

    def davis_video(pred: Path, video: str) -> list[dict]:
        per_object = evaluate_folders(pred, gt_root, [video], binary)["per_object"]
        return [{"object": k, **v} for k, v in per_object.items()]

    return Target("davis2016" if binary else "davis2017", videos, davis_video, binary=binary)


def benchmark_target(benchmark: str, data: BenchmarkSet, root: Path, split: str) -> Target:
    """A benchmark's split (``data``, read from ``root`` by its ``benchmarks.readers`` reader)
    to score."""
    if data.score is None:
        raise DatasetError(f"{root}: {benchmark} {split} has no ground truth on disk (its server scores it)")
    lvos_objects = {}
    if benchmark.startswith("lvos"):
        meta = json.loads((Path(root) / split / f"{split}_meta.json").read_text())["videos"]
        lvos_objects = {v: list(info["objects"]) for v, info in meta.items()}
    return Target(
        benchmark,
        data.videos,
        lambda pred, video: data.score(pred, [video])["per_object"],
        per_object_png=any(isinstance(v, SavVideo) for v in data.videos),
        lvos_objects=lvos_objects,
    )


# ---- the predictions -------------------------------------------------------------------


@contextmanager
def prediction_folder(path: Path) -> Iterator[Path]:
    """``path`` itself, or a zip's contents in a temporary folder while the block runs
    (member names are checked before they become paths)."""
    path = Path(path)
    if path.is_dir():
        yield path
        return
    if not path.is_file() or not zipfile.is_zipfile(path):
        raise DatasetError(f"{path}: neither a folder of predictions nor a zip of one")
    with zipfile.ZipFile(path) as zf, tempfile.TemporaryDirectory(prefix="gsfm-score-") as tmp:
        for member in zf.namelist():
            parts = PurePosixPath(member).parts
            if member.startswith("/") or ".." in parts or "\\" in member or ":" in member:
                raise DatasetError(f"{path}: unsafe member name {member!r}")
        zf.extractall(tmp)
        yield Path(tmp)


def find_videos(target: Target, folder: Path) -> tuple[Path, set[str]]:
    """The folder under ``folder`` (itself, or up to two levels down, e.g. a zip's
    ``Annotations/``) holding the most of the benchmark's video folders, and those videos."""
    names = {v.name for v in target.videos}
    best: tuple[Path, set[str]] = (folder, set())
    candidates = (p for level in ([folder], folder.glob("*"), folder.glob("*/*")) for p in sorted(level) if p.is_dir())
    for candidate in candidates:
        present = {p.name for p in candidate.iterdir() if p.is_dir()} & names
        if len(present) > len(best[1]):
            best = (candidate, present)
        if present == names:
            break  # every video is here: no need to look deeper
    if not best[1]:
        example = sorted(names)[0] if names else "<video>"
        raise DatasetError(
            f"{folder}: no prediction of any {target.benchmark} video; expected {target.layout}, "
            f"e.g. {folder / example}/"
        )
    return best


def require_all(target: Target, root: Path, present: set[str]) -> None:
    """Every video is scored: a folder that lacks one is an error naming them."""
    missing = sorted({v.name for v in target.videos} - present)
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise DatasetError(
            f"{root}: no predictions for {len(missing)} of {len(target.videos)} videos ({shown}); "
            f"every video is scored (expected {target.layout})"
        )


# ---- scoring ----------------------------------------------------------------------------

_JOB: tuple[Target, Path] | None = None  # what the forked workers score


def _score_one(video: EvalVideo) -> tuple[str, list[dict]]:
    target, pred = _JOB
    try:
        rows = target.score_video(pred, video.name)
    except ValueError as e:  # shapes, ids: the scorers' messages, with the file or video they are about
        message = _size_mismatch(video, pred / video.name) or str(e)
        raise DatasetError(message if str(pred) in message else f"{pred / video.name}: {message}") from None
    areas = _object_areas(target, video, rows)
    return video.name, [{"video": video.name, **r, "area": areas[r["object"]]} for r in rows]


def _size_mismatch(video: EvalVideo, folder: Path) -> str | None:
    """The first prediction whose size differs from its ground truth's (headers only)."""
    for gt in sorted(video.gt_dir.rglob("*.png")):
        path = folder / gt.relative_to(video.gt_dir)
        if path.is_file():
            with Image.open(gt) as a, Image.open(path) as b:
                if a.size != b.size:
                    return f"{path}: {b.size[0]}x{b.size[1]} mask, the ground truth is {a.size[0]}x{a.size[1]}"
    return None


def _object_areas(target: Target, video: EvalVideo, rows: list[dict]) -> dict[str, float]:
    """Each object's mean share of the frame where it is present, on up to AREA_SAMPLES
    ground-truth frames spread over the video (for the size terciles)."""
    cache: dict[str, list[np.ndarray]] = {}
    out = {}
    for row in rows:
        folder, label = target.object_label(video.name, row)
        if folder not in cache:
            files = sorted((video.gt_dir / folder).glob("*.png"))
            picks = sorted({int(i) for i in np.linspace(0, len(files) - 1, min(AREA_SAMPLES, len(files)))})
            cache[folder] = [read_mask(files[i]) for i in picks]
        if target.binary:
            masks = [m > 127 for m in cache[folder]]
        else:  # SA-V's per-object folders hold 0/1 or 0/255
            masks = [(m > 0) if folder else (m == label) for m in cache[folder]]
        shares = [float(m.mean()) for m in masks if m.any()]
        out[row["object"]] = float(np.mean(shares)) if shares else 0.0
    return out


@dataclass
class Scores:
    target: Target
    predictions: Path
    per_object: list[dict]  # the scorers' rows (fractions) with "video" and "area"

    @property
    def videos(self) -> list[str]:
        return [v.name for v in self.target.videos]


def score(target: Target, predictions: Path, processes: int = 1, label: str = "") -> Scores:
    """Every video of ``target`` scored on the masks in ``predictions`` (already located:
    ``find_videos``)."""
    global _JOB
    _JOB = (target, predictions)
    try:
        progress = dict(total=len(target.videos), desc=f"scoring {label or predictions.name}", unit="video")
        if processes > 1:
            with multiprocessing.get_context("fork").Pool(processes) as pool:
                results = dict(tqdm(pool.imap_unordered(_score_one, target.videos), **progress))
        else:
            results = dict(tqdm(map(_score_one, target.videos), **progress))
    finally:
        _JOB = None
    return Scores(target, predictions, [row for v in target.videos for row in results[v.name]])


def _value(row: dict, term: str) -> float:
    key, _, group = term.partition("@")
    if group and row.get("seen") != (group == "seen"):
        return math.nan
    value = row.get(key)
    return math.nan if value is None else float(value)


def term_values(scores: Scores, terms: list[str]) -> np.ndarray:
    """(objects, K) each object's value of each term; nan where it has none."""
    return np.array([[_value(r, t) for t in terms] for r in scores.per_object]).reshape(-1, len(terms))


def term_table(scores: Scores, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(V, K) sums and counts of the objects' term values per video (nan: not counted)."""
    index = {v: i for i, v in enumerate(scores.videos)}
    where = np.array([index[r["video"]] for r in scores.per_object], int)
    sums, counts = np.zeros((len(index), values.shape[1])), np.zeros((len(index), values.shape[1]))
    np.add.at(sums, where, np.nan_to_num(values))
    np.add.at(counts, where, np.isfinite(values))
    return sums, counts


def _layout(target: Target) -> tuple[list[str], list[list[int]]]:
    terms = sorted({t for ts in target.metrics.values() for t in ts})
    return terms, [[terms.index(t) for t in ts] for ts in target.metrics.values()]


def _strata(scores: Scores) -> np.ndarray:
    """LVOS: seen and unseen videos resampled apart (the metric averages the two groups)."""
    unseen = {r["video"] for r in scores.per_object if r.get("seen") is False}
    return np.array([v in unseen for v in scores.videos], int)


def overall_values(scores: Scores) -> dict[str, float]:
    """The official overall numbers (fractions), from the per-object values."""
    terms, metrics = _layout(scores.target)
    sums, counts = term_table(scores, term_values(scores, terms))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums.sum(0) / counts.sum(0)
    return {m: float(np.mean(means[idx])) for m, idx in zip(scores.target.metrics, metrics)}


def per_video(scores: Scores) -> list[dict]:
    """Each video's metrics over its own objects (a metric's terms of groups the video is
    not in are left out; null when none is left), in the tool's units."""
    terms, metrics = _layout(scores.target)
    sums, counts = term_table(scores, term_values(scores, terms))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    out = []
    for v, video in enumerate(scores.videos):
        row: dict = {"video": video, "objects": int(sum(r["video"] == video for r in scores.per_object))}
        for m, idx in zip(scores.target.metrics, metrics):
            finite = means[v, idx][np.isfinite(means[v, idx])]
            row[m] = float(finite.mean()) * scores.target.scale if len(finite) else None
        out.append(row)
    return out


def scores_json(scores: Scores, resamples: int = 1000, seed: int = 0) -> dict:
    """scores.json: overall, ci95 (video bootstrap), per_video, per_object; nan as null."""
    terms, metrics = _layout(scores.target)
    sums, counts = term_table(scores, term_values(scores, terms))
    interval = bootstrap_ci(sums, counts, metrics, resamples, seed, _strata(scores))
    scale = scores.target.scale
    out = {
        "units": "percent" if scale == 100 else "fraction",
        "overall": {m: v * scale for m, v in overall_values(scores).items()},
        "ci95": {m: list(interval[i] * scale) for i, m in enumerate(scores.target.metrics)},
        "bootstrap": {"resamples": resamples, "seed": seed, "over": "videos"},
        "per_video": per_video(scores),
        "per_object": [
            {k: (v * scale if k not in NOT_SCORES and isinstance(v, float) else v) for k, v in r.items()}
            for r in scores.per_object
        ],
    }
    return nan_as_null(out)


def comparison_json(a: Scores, b: Scores, names: tuple[str, str], resamples: int = 1000, seed: int = 0) -> dict:
    """B - A on the same videos and objects: paired bootstrap interval, sign-flip p-value,
    and per video the headline metric of each and who wins."""
    if a.videos != b.videos or [r["object"] for r in a.per_object] != [r["object"] for r in b.per_object]:
        raise DatasetError(f"{a.predictions} and {b.predictions}: not the same objects to compare")
    terms, metrics = _layout(a.target)
    values_a, values_b = term_values(a, terms), term_values(b, terms)
    # an object counts where both methods have a value (a tool's nan on one side drops it)
    neither = ~(np.isfinite(values_a) & np.isfinite(values_b))
    values_a[neither] = values_b[neither] = math.nan
    sums_a, counts = term_table(a, values_a)
    sums_b, _ = term_table(b, values_b)
    diff, interval, p = paired_difference(sums_a, sums_b, counts, metrics, resamples, seed, _strata(a))
    scale = a.target.scale
    overall_a, overall_b = overall_values(a), overall_values(b)
    headline = a.target.headline
    videos_a, videos_b = per_video(a), per_video(b)
    rows = []
    for va, vb in zip(videos_a, videos_b):
        sa, sb = va[headline], vb[headline]
        winner = None if sa is None or sb is None else ("b" if sb > sa else "a" if sa > sb else "tie")
        rows.append(
            {
                "video": va["video"],
                "a": sa,
                "b": sb,
                "difference": None if winner is None else sb - sa,
                "winner": winner,
            }
        )
    return nan_as_null(
        {
            "benchmark": a.target.benchmark,
            "units": "percent" if scale == 100 else "fraction",
            "names": {"a": names[0], "b": names[1]},
            "predictions": {"a": str(a.predictions), "b": str(b.predictions)},
            "test": f"sign-flip permutation over videos, {resamples} flips (two-sided)",
            "interval": f"paired video bootstrap, {resamples} resamples, seed {seed}",
            "metrics": {
                m: {
                    "a": overall_a[m] * scale,
                    "b": overall_b[m] * scale,
                    "difference": diff[i] * scale,
                    "ci95": list(interval[i] * scale),
                    "p_value": p[i],
                }
                for i, m in enumerate(a.target.metrics)
            },
            "headline": headline,
            "wins": {k: sum(r["winner"] == k for r in rows) for k in ("a", "b", "tie")},
            "per_video": rows,
        }
    )


def nan_as_null(value):
    """JSON has no nan: the tools' nan (a mean over nothing) is written as null."""
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, dict):
        return {k: nan_as_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [nan_as_null(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    return value
