"""The benchmarks' readers: how each download is laid out, what the engine receives and
which frames are written (YouTube-VOS's is ``inference_core_yv.read_youtube``).

A reader turns ``(root, split, **options)`` into a ``BenchmarkSet``: the videos
(``EvalVideo``), the palette of the outputs and, when the ground truth is on disk, the
official tool's scorer (``benchmarks.scoring``) bound to it. ``benchmarks.registry`` pairs
each reader with its sink.

- ``davis2017``: ``ROOT/<trainval|test-dev|test-challenge>/{JPEGImages,Annotations}/480p``
  and ``ImageSets/2017/<split>.txt``; the first frame's mask is the input; scored (J&F, by
  the sink, ``util.metrics``) when every frame is annotated (val).
- ``davis2016``: the same layout, one object (the union of the first mask), its list found
  by ``davis_2016_image_set``.
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
  written, optionally inferred from the 10 fps ones (``dense_frames``); scored where more than
  the first frame is annotated (val, train).
- ``sav``: ``ROOT/JPEGImages_24fps/<video>/``, ``ROOT/Annotations_6fps/<video>/<obj>/`` (one
  binary PNG per object), ``sav_<split>.txt``; inferred at 24 fps from the objects' masks of
  the first annotated frame (overlapping masks: the higher object id is drawn on top, as the
  engine takes one label map), written as one binary PNG per object on the annotated frames.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from benchmarks.scoring import (
    lvos_frames,
    score_lvos,
    score_mose2,
    score_sav,
    score_vost,
)
from datasets.eval_datasets import (
    EvalVideo,
    FrameSource,
    davis_2016_image_set,
    davis_videos,
    find_palette,
    first_appearances,
    first_frame_video,
    matched_annotations,
    read_image_set,
    require_dir,
)
from util.errors import ConfigError, DatasetError
from util.metrics import evaluate_folders
from util.palette import davis_palette, read_mask
from util.paths import checked_names

# (the folder of the output masks, the videos to score or None for all) -> {"overall": ..., "per_object": [...]}
Scorer = Callable[..., dict]


@dataclass
class BenchmarkSet:
    videos: list[EvalVideo]
    palette: list[int]
    score: Scorer | None  # None: no ground truth on disk (a server scores), or the sink scores (DAVIS: DavisScores)


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


# ---- DAVIS 2017 / 2016 ---------------------------------------------------------------------


# split -> (folder under the DAVIS 2017 root, image set); test-dev and test-challenge are scored by the server only
DAVIS_SPLITS = {
    "val": ("trainval", "val.txt"),
    "testdev": ("test-dev", "test-dev.txt"),
    "test-challenge": ("test-challenge", "test-challenge.txt"),
}


def read_davis2017(root: Path, split: str) -> BenchmarkSet:
    folder, image_set = DAVIS_SPLITS[split]
    videos, palette = davis_videos(root / folder, root / folder / "ImageSets" / "2017" / image_set)
    return BenchmarkSet(videos, palette, None)  # scored by its sink (DavisScores)


def read_davis2016(root: Path, split: str) -> BenchmarkSet:
    videos, palette = davis_videos(root, davis_2016_image_set(root), binary=True)
    return BenchmarkSet(videos, palette, None)  # scored by its sink (DavisScores)


# ---- MOSE v1 / v2 -------------------------------------------------------------------------


def _mose_videos(root: Path, split: str) -> tuple[list[EvalVideo], Path, list[int]]:
    split_root = require_dir(root / split, f"MOSE {split}")
    image_root = require_dir(split_root / "JPEGImages", "MOSE JPEGImages")
    mask_root = require_dir(split_root / "Annotations", "MOSE Annotations")
    videos = [first_frame_video(name, image_root / name, mask_root / name) for name in _subfolders(image_root)]
    return videos, mask_root, find_palette([], mask_root)


def read_mose(root: Path, split: str, dense_frames: bool = False) -> BenchmarkSet:
    _no_dense("MOSE", dense_frames)
    videos, mask_root, palette = _mose_videos(root, split)
    names = [v.name for v in videos]

    def score(masks: Path, subset: list[str] | None = None) -> dict:
        results = evaluate_folders(masks, mask_root, subset or names)
        return {
            "overall": results["overall"],
            "per_object": [{"object": k, **v} for k, v in results["per_object"].items()],
        }

    return BenchmarkSet(videos, palette, score if all(v.gt_dir for v in videos) else None)


def read_mose2(root: Path, split: str, dense_frames: bool = False) -> BenchmarkSet:
    _no_dense("MOSE v2", dense_frames)
    videos, mask_root, palette = _mose_videos(root, split)
    meta_path = root / split / "meta.json"
    meta = _json(meta_path) if meta_path.is_file() else {}

    def score(masks: Path, subset: list[str] | None = None) -> dict:
        # without a meta.json entry: every frame, the first mask's objects
        scored = {
            v.name: meta.get(v.name) or {"length": v.num_frames, "objects": v.object_ids}
            for v in videos
            if subset is None or v.name in subset
        }
        return score_mose2(masks, mask_root, scored)

    return BenchmarkSet(videos, palette, score if all(v.gt_dir for v in videos) else None)


# ---- LVOS v1 / v2 ---------------------------------------------------------------------------

# the unseen-category videos of valid, as lvos-evaluation ships them (v1: before its v2 update)
LVOS_UNSEEN = {v: Path(__file__).parent / "lvos_unseen" / f"{v}.txt" for v in ("lvos", "lvos2")}


def read_lvos(root: Path, split: str, dense_frames: bool = False, version: str = "lvos") -> BenchmarkSet:
    _no_dense("LVOS", dense_frames)
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
        # the official scorer's list (the download has none): a copy in the split folder wins
        unseen_path = split_root / "unseen_videos.txt"
        unseen = set(read_image_set(unseen_path if unseen_path.is_file() else LVOS_UNSEEN[version]))

        def score(masks: Path, subset: list[str] | None = None) -> dict:
            return score_lvos(masks, mask_root, {n: meta[n] for n in subset or meta}, unseen)

    return BenchmarkSet(videos, find_palette([], mask_root), score)


# ---- VOST -----------------------------------------------------------------------------------


def read_vost(root: Path, split: str, dense_frames: bool = False) -> BenchmarkSet:
    image_root = require_dir(root / "JPEGImages", "VOST JPEGImages")
    frame_root = require_dir(root / "JPEGImages_10fps", "VOST JPEGImages_10fps") if dense_frames else image_root
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
        videos,
        find_palette([], mask_root),
        (lambda masks, subset=None: score_vost(masks, mask_root, subset or names)) if has_gt else None,
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


def read_sav(root: Path, split: str, dense_frames: bool = False) -> BenchmarkSet:
    _no_dense("SA-V", dense_frames)
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
    return BenchmarkSet(
        videos, davis_palette(), lambda masks, subset=None: score_sav(masks, mask_root, subset or names)
    )
