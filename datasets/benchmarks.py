"""The benchmarks beyond DAVIS and YouTube-VOS, one entry each in ``BENCHMARKS``: how the
download is laid out, what the engine receives, which frames are written where, and how
the official tool scores them (``util.benchmark_metrics``).

A reader turns ``(root, split)`` into a ``BenchmarkSet``: the videos (``EvalVideo``), the
palette of the outputs and, when the ground truth is on disk, a scorer of the output
masks. Adding a benchmark is one reader and one ``Benchmark`` entry.

- ``mose`` / ``mose2``: ``ROOT/<split>/{JPEGImages,Annotations}/<video>/%05d.{jpg,png}``;
  every object is in the first frame's mask, the only input; every frame is written
  (MOSE v2's scorer pairs masks with frames by position). Scored when every frame has its
  annotation (train): MOSE by the DAVIS definitions, MOSE v2 by its own (with
  ``<split>/meta.json`` when present, else lengths and objects from the annotations).
- ``lvos`` / ``lvos2``: ``ROOT/<split>/{JPEGImages,Annotations}/<video>/%08d.{jpg,png}`` and
  ``<split>_meta.json`` (each object's ``frame_range``). valid annotates every object on
  every 5th frame; the engine receives each object's first annotation only (from the
  meta's ``start``; without a meta, the first annotation that shows it), restricted to the
  objects that first appear there. Scored on valid; the unseen videos are listed by
  ``<split>/unseen_videos.txt`` (the scorer's own list, to be copied there).
- ``vost``: ``ROOT/{JPEGImages,JPEGImages_10fps,Annotations,ImageSets/<split>.txt}``; the
  first annotation is the input (255 is void, never an object); the 5 fps frames are
  written, optionally inferred from the 10 fps ones (``dense``); scored where more than
  the first frame is annotated (val, train).
- ``sav``: ``ROOT/JPEGImages_24fps/<video>/``, ``ROOT/Annotations_6fps/<video>/<obj>/`` (one
  binary PNG per object), ``sav_<split>.txt``; inferred at 24 fps from the objects' masks of
  the first annotated frame (overlapping masks: the higher object id is drawn on top, as the
  engine takes one label map), written as one binary PNG per object on the annotated frames.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from datasets.eval_datasets import (
    EvalVideo,
    FrameSource,
    find_palette,
    first_appearances,
    first_frame_video,
    matched_annotations,
    read_image_set,
    require_dir,
)
from util.benchmark_metrics import (
    LVOS_METRICS,
    MOSE2_METRICS,
    SAV_METRICS,
    VOST_METRICS,
    lvos_frames,
    score_lvos,
    score_mose2,
    score_sav,
    score_vost,
)
from util.errors import ConfigError, DatasetError
from util.metrics import evaluate_folders
from util.palette import davis_palette, read_mask
from util.paths import checked_names

Scorer = Callable[[Path], dict]  # the folder of the output masks -> {"overall": ..., "per_object": [...]}


@dataclass
class BenchmarkSet:
    videos: list[EvalVideo]
    palette: list[int]
    score: Scorer | None  # None: no ground truth on disk (a server scores the outputs)


@dataclass(frozen=True)
class Benchmark:
    summary: str  # one line for --help
    splits: tuple[str, ...]
    read: Callable[[Path, str, bool], BenchmarkSet]  # (root, split, dense frames)
    metrics: tuple[str, ...]  # the names the official tool prints
    submit: str  # where the outputs go when there is no ground truth
    per_object_png: bool = False  # one binary PNG per object (SA-V) instead of one label map
    submission_zip: bool = False  # zip the video folders (<video>/...) for a server
    short_side: int | None = 480  # frames resized to this short side for the network (masks: original size)


def _json(path: Path) -> dict:
    try:
        videos = json.loads(path.read_text())["videos"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise DatasetError(f"{path}: not a readable meta file with a 'videos' entry ({e})") from None
    checked_names(videos, path)
    return videos


def _subfolders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _no_dense(name: str, dense: bool) -> None:
    if dense:
        raise ConfigError(f"--dense_frames: {name} ships one frame rate")


# ---- MOSE v1 / v2 -------------------------------------------------------------------------


def _mose_videos(root: Path, split: str) -> tuple[list[EvalVideo], Path, list[int]]:
    split_root = require_dir(root / split, f"MOSE {split}")
    image_root = require_dir(split_root / "JPEGImages", "MOSE JPEGImages")
    mask_root = require_dir(split_root / "Annotations", "MOSE Annotations")
    videos = [first_frame_video(name, image_root / name, mask_root / name) for name in _subfolders(image_root)]
    return videos, mask_root, find_palette([], mask_root)


def read_mose(root: Path, split: str, dense: bool = False) -> BenchmarkSet:
    _no_dense("MOSE", dense)
    videos, mask_root, palette = _mose_videos(root, split)
    names = [v.name for v in videos]

    def score(masks: Path) -> dict:
        results = evaluate_folders(masks, mask_root, names)
        return {
            "overall": results["overall"],
            "per_object": [{"object": k, **v} for k, v in results["per_object"].items()],
        }

    return BenchmarkSet(videos, palette, score if all(v.gt_dir for v in videos) else None)


def read_mose2(root: Path, split: str, dense: bool = False) -> BenchmarkSet:
    _no_dense("MOSE v2", dense)
    videos, mask_root, palette = _mose_videos(root, split)
    meta_path = root / split / "meta.json"
    meta = _json(meta_path) if meta_path.is_file() else {}

    def score(masks: Path) -> dict:  # without a meta.json entry: every frame, the first mask's objects
        scored = {v.name: meta.get(v.name) or {"length": v.num_frames, "objects": v.object_ids} for v in videos}
        return score_mose2(masks, mask_root, scored)

    return BenchmarkSet(videos, palette, score if all(v.gt_dir for v in videos) else None)


# ---- LVOS v1 / v2 ---------------------------------------------------------------------------


def read_lvos(root: Path, split: str, dense: bool = False) -> BenchmarkSet:
    _no_dense("LVOS", dense)
    split_root = require_dir(root / split, f"LVOS {split}")
    image_root = require_dir(split_root / "JPEGImages", "LVOS JPEGImages")
    mask_root = require_dir(split_root / "Annotations", "LVOS Annotations")
    meta_path = split_root / f"{split}_meta.json"
    meta = _json(meta_path) if meta_path.is_file() else None
    videos = []
    for name in sorted(meta) if meta is not None else _subfolders(image_root):
        frames = FrameSource(require_dir(image_root / name, "frame"))
        if meta is not None:
            firsts: dict[Path, list[int]] = {}
            for obj, info in meta[name]["objects"].items():
                path = mask_root / name / f"{int(info['frame_range']['start']):08d}.png"
                if not path.is_file():
                    raise DatasetError(f"{path}: first annotation of object {obj} ({meta_path}) not found")
                if not (read_mask(path) == int(obj)).any():
                    raise DatasetError(f"{path}: object {obj} is not in its first annotation ({meta_path})")
                firsts.setdefault(path, []).append(int(obj))
        else:
            firsts = first_appearances(sorted((mask_root / name).glob("*.png")))
        annotations = matched_annotations(sorted(firsts), frames, mask_root / name)
        inputs = {index: sorted(firsts[path]) for index, path in annotations.items()}
        videos.append(EvalVideo(name, frames, annotations, gt_dir=mask_root / name, input_objects=inputs))
    score = None
    if meta is not None and all(
        (mask_root / name / f"{lvos_frames(o['frame_range'])[-1]:08d}.png").is_file()
        for name in meta
        for o in meta[name]["objects"].values()
        if lvos_frames(o["frame_range"])
    ):
        unseen_path = split_root / "unseen_videos.txt"
        if unseen_path.is_file():
            unseen = set(read_image_set(unseen_path))
        else:
            unseen = set()
            warnings.warn(
                f"{unseen_path} not found: every video counts as seen, so the means over seen and "
                f"unseen videos are nan, as the official scorer gives them (copy its unseen_videos.txt "
                f"there)"
            )
        score = lambda masks: score_lvos(masks, mask_root, meta, unseen)  # noqa: E731
    return BenchmarkSet(videos, find_palette([], mask_root), score)


# ---- VOST -----------------------------------------------------------------------------------


def read_vost(root: Path, split: str, dense: bool = False) -> BenchmarkSet:
    image_root = require_dir(root / "JPEGImages", "VOST JPEGImages")
    frame_root = require_dir(root / "JPEGImages_10fps", "VOST JPEGImages_10fps") if dense else image_root
    mask_root = require_dir(root / "Annotations", "VOST Annotations")
    names = read_image_set(root / "ImageSets" / f"{split}.txt")
    videos = []
    for name in names:
        frames = FrameSource(require_dir(frame_root / name, "frame"))
        scored = [p.stem for p in FrameSource(require_dir(image_root / name, "frame")).files]
        masks = sorted((mask_root / name).glob("*.png")) if (mask_root / name).is_dir() else []
        if not masks:
            raise DatasetError(f"{mask_root / name}: no annotation for this video")
        first = matched_annotations(masks[:1], frames, mask_root / name)
        outputs = {i for i, stem in enumerate(frames.names) if stem in set(scored)}
        # the ground truth: val and train annotate the 5 fps frames, test only the first
        videos.append(
            EvalVideo(name, frames, first, outputs=outputs, gt_dir=(mask_root / name) if len(masks) > 1 else None)
        )
    has_gt = all(v.gt_dir for v in videos)
    return BenchmarkSet(
        videos, find_palette([], mask_root), (lambda masks: score_vost(masks, mask_root, names)) if has_gt else None
    )


# ---- SA-V -----------------------------------------------------------------------------------


def _object_mask(path: Path) -> np.ndarray:
    """An SA-V per-object PNG: foreground where non-zero (as the official scorer reads it)."""
    try:
        return read_mask(path) > 0
    except ValueError as e:
        raise DatasetError(str(e)) from None


@dataclass
class SavVideo(EvalVideo):
    """An SA-V video: the input of an annotated frame is composed of the per-object binary
    masks of that frame (engine id = object folder number + 1; the higher id on top)."""

    object_dirs: dict[int, str] | None = None  # every object folder, by engine id (an output for each)

    def annotation(self, index: int) -> np.ndarray:
        video_dir, name = self.annotations[index].parent.parent, self.annotations[index].name
        labels = None
        for obj, folder in sorted(self.object_dirs.items()):
            if (video_dir / folder / name).is_file():
                mask = _object_mask(video_dir / folder / name)
                labels = np.zeros(mask.shape, np.uint8) if labels is None else labels
                labels[mask] = obj
        return labels


def read_sav(root: Path, split: str, dense: bool = False) -> BenchmarkSet:
    _no_dense("SA-V", dense)
    image_root = require_dir(root / "JPEGImages_24fps", "SA-V JPEGImages_24fps")
    mask_root = require_dir(root / "Annotations_6fps", "SA-V Annotations_6fps")
    names = read_image_set(root / f"sav_{split}.txt")
    videos = []
    for name in names:
        frames = FrameSource(require_dir(image_root / name, "frame"))
        folders = _subfolders(require_dir(mask_root / name, "SA-V annotation"))
        if not folders or not all(f.isdigit() and int(f) < 254 for f in folders):
            raise DatasetError(f"{mask_root / name}: expected object folders 000, 001, ... (at most 254)")
        annotated = sorted({p.stem for f in folders for p in (mask_root / name / f).glob("*.png")})
        index = frames.index_of(annotated[0]) if annotated else None
        if index is None:
            raise DatasetError(f"{mask_root / name}: first annotated frame not found in {frames.path}")
        outputs = {i for i, stem in enumerate(frames.names) if stem in set(annotated)}
        # the annotation path names the frame; SavVideo.annotation composes every object's mask there
        videos.append(
            SavVideo(
                name,
                frames,
                {index: mask_root / name / folders[0] / f"{annotated[0]}.png"},
                outputs=outputs,
                gt_dir=mask_root / name,
                object_dirs={int(f) + 1: f for f in folders},
            )
        )
    return BenchmarkSet(videos, davis_palette(), lambda masks: score_sav(masks, mask_root, names))


BENCHMARKS: dict[str, Benchmark] = {
    "mose": Benchmark(
        "MOSE v1: J&F (DAVIS definitions); valid is scored by the server",
        ("valid", "train"),
        read_mose,
        ("J&F-Mean", "J-Mean", "F-Mean"),
        "MOSE v1 CodaLab server: upload submission.zip",
        submission_zip=True,
    ),
    "mose2": Benchmark(
        "MOSE v2: J&F with the adaptive boundary (J&F_new), classic J&F, disappearance and reappearance J&F",
        ("valid", "train"),
        read_mose2,
        tuple(MOSE2_METRICS),
        "MOSE v2 Codabench server: upload submission.zip",
        submission_zip=True,
    ),
    "lvos": Benchmark(
        "LVOS v1: J, F (seen/unseen) and V inside each object's frame range",
        ("valid", "test"),
        read_lvos,
        tuple(LVOS_METRICS),
        "LVOS CodaLab server (test): upload submission.zip",
        submission_zip=True,
    ),
    "lvos2": Benchmark(
        "LVOS v2: as LVOS v1 (same scorer)",
        ("valid", "test"),
        read_lvos,
        tuple(LVOS_METRICS),
        "LVOS CodaLab server (test): upload submission.zip",
        submission_zip=True,
    ),
    "vost": Benchmark(
        "VOST: J and J_last (last 25% of the frames), no F",
        ("val", "train", "test"),
        read_vost,
        tuple(VOST_METRICS),
        "VOST: val is scored here; test by the authors' server",
    ),
    "sav": Benchmark(
        "SA-V: J, F, J&F over the annotated frames, one binary PNG per object",
        ("val", "test"),
        read_sav,
        tuple(SAV_METRICS),
        "SA-V: val and test are scored here (ground truth is public)",
        per_object_png=True,
    ),
}
