"""Benchmark readers: DAVIS 2017/2016, YouTube-VOS and a user's own video.

Each reader lists ``EvalVideo`` objects: where the frames are (an image folder or a video
file), which annotations are inputs, the video's objects and the frames whose output is
wanted. ``EvalVideo.read`` is the one frame reader for every layout: frames are decoded
one at a time, so a long video is never held in memory, and every problem with a file
raises ``DatasetError`` naming the file and what is wrong. Nothing here runs a network.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
from PIL import Image

from util.errors import DatasetError
from util.log import get_logger
from util.palette import davis_palette, image_files, read_image, read_mask, read_palette
from util.paths import checked_names

logger = get_logger(__name__)
DIGITS = re.compile(r"\d+")  # frame names differ in their digits: 00005, frame_0005
VOID_LABEL = 255  # DAVIS: "don't care" pixels, counted as background
BINARY_THRESHOLD = 128  # 0/255 masks: foreground from this value on
SIZE_TOLERANCE = 2  # pixels an annotation may differ from its frame (rounding in real clips)
# an indexed mask with more ids than this, or more than TINY_IDS ids covering less than
# TINY_FRACTION of the image each, is probably anti-aliased: a warning counts them
MANY_IDS = 20
TINY_IDS = 2
TINY_FRACTION = 0.0005


# ---- frames -------------------------------------------------------------------------


class FrameSource:
    """A video's frames in order: a folder of images (sorted by name) or a video file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if self.path.is_dir():
            self.files: list[Path] | None = image_files(self.path)
            if not self.files:
                raise DatasetError(f"{self.path}: no frames (.jpg/.png) in this folder")
            self.names = [p.stem for p in self.files]
            self.fps: float | None = None  # a folder of frames has no rate
        elif self.path.is_file():
            self.files = None
            capture = cv2.VideoCapture(str(self.path))
            count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
            self.fps = (capture.get(cv2.CAP_PROP_FPS) or None) if count > 0 else None
            capture.release()
            if count <= 0:
                raise DatasetError(f"{self.path}: not a readable video file")
            self.names = [f"{i:05d}" for i in range(count)]
        else:
            raise DatasetError(f"{self.path}: no such frame folder or video file")

    def __len__(self) -> int:
        return len(self.names)

    def index_of(self, stem: str) -> int | None:
        """The frame an annotation named ``<stem>.png`` belongs to: the frame of that file
        stem, or for a video file frame ``int(stem)``."""
        if self.files is not None:
            return self.names.index(stem) if stem in self.names else None
        return int(stem) if stem.isdigit() and int(stem) < len(self) else None

    def describe(self, index: int) -> str:
        return str(self.files[index]) if self.files is not None else f"{self.path} frame {index}"

    def __iter__(self) -> Iterator[np.ndarray]:
        """(H, W, 3) uint8 RGB frames, decoded one at a time."""
        if self.files is not None:
            for path in self.files:
                try:
                    yield read_image(path)
                except ValueError as e:
                    raise DatasetError(str(e)) from None
            return
        capture = cv2.VideoCapture(str(self.path))
        try:
            for index in range(len(self)):
                ok, bgr = capture.read()
                if not ok:
                    raise DatasetError(
                        f"{self.path}: frame {index} could not be decoded (the file says it has {len(self)} frames)"
                    )
                yield np.ascontiguousarray(bgr[:, :, ::-1])
        finally:
            capture.release()


# ---- annotations --------------------------------------------------------------------


def load_annotation(path: Path, binary: bool = False) -> np.ndarray:
    """An annotation PNG -> (H, W) uint8 object ids, cleaned.

    A greyscale mask, or one whose values are only 0 and 255 (DAVIS 2016 style, or a user's
    binary mask), is one object; in-between values (anti-aliased edges) are counted in a
    warning and thresholded at 128. An indexed mask keeps every id as an object (as the
    reference), with a warning when many ids or several tiny ones suggest anti-aliasing;
    255 is void (background).
    """
    try:
        labels = read_mask(path)
    except ValueError as e:
        raise DatasetError(str(e)) from None
    values, counts = np.unique(labels, return_counts=True)
    with Image.open(path) as img:
        greyscale = img.mode in ("L", "LA")  # RGB colour masks were mapped to ids by read_mask
    if binary or greyscale or set(values.tolist()) <= {0, VOID_LABEL}:
        stray = int(((labels > 0) & (labels < VOID_LABEL)).sum())
        if stray:
            warnings.warn(
                f"{path}: {stray} pixels with values between 0 and 255 (anti-aliased edges?); "
                f"thresholded at {BINARY_THRESHOLD}"
            )
        return (labels >= BINARY_THRESHOLD).astype(np.uint8)
    ids = [int(v) for v in values if v not in (0, VOID_LABEL)]
    tiny = [int(v) for v, c in zip(values, counts) if v not in (0, VOID_LABEL) and c < TINY_FRACTION * labels.size]
    if len(ids) > MANY_IDS or len(tiny) > TINY_IDS:
        warnings.warn(
            f"{path}: {len(ids)} object ids, {len(tiny)} of them covering almost no pixels "
            f"({tiny[:10]}): anti-aliased edges? Masks must be indexed PNGs with one id per object; "
            f"every id is treated as an object"
        )
    return np.where(labels == VOID_LABEL, 0, labels).astype(np.uint8)


def fit_to_frame(labels: np.ndarray, path: Path, frame_size: tuple[int, int], frame: str) -> np.ndarray:
    """An annotation at its frame's size: off by up to SIZE_TOLERANCE pixels it is resized
    (nearest) with a warning; more is an error naming both sizes."""
    if labels.shape == frame_size:
        return labels
    (h, w), (fh, fw) = labels.shape, frame_size
    if abs(h - fh) > SIZE_TOLERANCE or abs(w - fw) > SIZE_TOLERANCE:
        raise DatasetError(f"{path}: annotation size {w}x{h} differs from the frame size {fw}x{fh} ({frame})")
    warnings.warn(
        f"{path}: annotation size {w}x{h} differs from the frame size {fw}x{fh} by "
        f"{abs(w - fw)}x{abs(h - fh)} pixels; resized (nearest)"
    )
    return cv2.resize(labels, (fw, fh), interpolation=cv2.INTER_NEAREST)


# ---- videos ---------------------------------------------------------------------------


@dataclass
class FrameInput:
    index: int
    name: str  # file stem (or the frame number of a video file): the output PNG's name
    rgb: np.ndarray  # (H, W, 3) uint8
    labels: np.ndarray | None = None  # (H, W) uint8 object ids, when this frame is annotated


@dataclass
class EvalVideo:
    """A video to segment. Its annotations are read once, when it is segmented (not when
    it is listed): ``object_ids`` reads them all (the engine must know every object before
    the first frame, to order its channels as the reference does) and keeps them until
    ``read`` has handed each one to its frame."""

    name: str
    frames: FrameSource
    annotations: dict[int, Path]  # frame index -> annotation PNG that is an input
    outputs: set[int] | None = None  # frames whose masks are written (None: every frame)
    binary: bool = False  # annotations are 0/255 masks of one object (DAVIS 2016)
    gt_dir: Path | None = None  # full ground truth, for J&F
    # frame index -> the ids its annotation inputs, the others' pixels set to background
    # (None: every id). LVOS ships every object on every 5th frame; only each object's first
    # appearance is an input.
    input_objects: dict[int, list[int]] | None = None
    _labels: dict[int, np.ndarray] | None = field(default=None, init=False, repr=False)
    _object_ids: list[int] | None = field(default=None, init=False, repr=False)

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    @property
    def object_ids(self) -> list[int]:
        """Every object of the video (every id in its input annotations), sorted; the first
        annotation must show one."""
        if self._object_ids is None:
            ids: set[int] = set()
            for index, labels in sorted(self._annotation_labels().items()):
                if not ids and not labels.any():
                    raise DatasetError(f"{self.annotations[index]}: the first annotated mask contains no object")
                ids |= set(np.unique(labels).tolist()) - {0}
            self._object_ids = sorted(ids)
        return self._object_ids

    def _annotation_labels(self) -> dict[int, np.ndarray]:
        if self._labels is None:
            self._labels = {index: self.annotation(index) for index in self.annotations}
        return self._labels

    def annotation(self, index: int) -> np.ndarray:
        """The input labels of annotated frame ``index``, restricted to ``input_objects``."""
        labels = load_annotation(self.annotations[index], self.binary)
        if self.input_objects is not None and index in self.input_objects:
            labels = np.where(np.isin(labels, self.input_objects[index]), labels, 0).astype(np.uint8)
        return labels

    @property
    def first_annotated(self) -> int:
        return min(self.annotations)

    def wants(self, index: int) -> bool:
        return self.outputs is None or index in self.outputs

    def read(self) -> Iterator[FrameInput]:
        """Every frame in order, with its annotation when it has one. All frames must have the
        first frame's size; annotations are fitted to it (``fit_to_frame``)."""
        size = None
        for index, rgb in enumerate(self.frames):
            if size is None:
                size = rgb.shape[:2]
            elif rgb.shape[:2] != size:
                raise DatasetError(
                    f"{self.frames.describe(index)}: frame size {rgb.shape[1]}x{rgb.shape[0]} "
                    f"differs from the first frame's {size[1]}x{size[0]}"
                )
            frame = FrameInput(index, self.frames.names[index], rgb)
            if index in self.annotations:
                frame.labels = fit_to_frame(
                    self._annotation_labels()[index], self.annotations[index], size, self.frames.describe(index)
                )
            yield frame
        self._labels = None  # each was handed to its frame: not kept for the rest of the job


def first_appearances(annotations: list[Path]) -> dict[Path, list[int]]:
    """The annotations (in frame order) that show an object for the first time, each with
    the ids it shows first: what the engine is given when every frame is annotated (the
    later annotations are ground truth, not inputs)."""
    seen: set[int] = set()
    firsts: dict[Path, list[int]] = {}
    for path in annotations:
        new = sorted(set(np.unique(load_annotation(path)).tolist()) - {0} - seen)
        if new:
            firsts[path] = new
            seen |= set(new)
    return firsts


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DatasetError(f"{path}: {what} folder not found")
    return path


def read_image_set(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetError(f"{path}: image set file not found")
    return checked_names([line.strip() for line in path.read_text().splitlines() if line.strip()], path)


def find_palette(candidates: list[Path], annotation_root: Path) -> list[int]:
    """The reference's fixed palette file when present, else the first annotation found."""
    for path in candidates:
        if path.is_file():
            return read_palette(path)
    for path in sorted(annotation_root.rglob("*.png")):
        try:
            return read_palette(path)
        except (ValueError, OSError):
            continue
    raise DatasetError(f"no indexed annotation PNG under {annotation_root} to take the palette from")


def first_frame_video(name: str, image_dir: Path, mask_dir: Path, binary: bool = False) -> EvalVideo:
    """A video whose first frame's annotation is the input; when every frame is annotated,
    the annotations are also its ground truth (DAVIS, MOSE). Some but not all frames
    annotated is an error (an incomplete download)."""
    frames = FrameSource(require_dir(image_dir, "frame"))
    masks = sorted(mask_dir.glob("*.png")) if mask_dir.is_dir() else []
    if not masks or masks[0].stem != frames.names[0]:
        raise DatasetError(f"{mask_dir / (frames.names[0] + '.png')}: first-frame annotation not found")
    if len(masks) > 1 and len(masks) != len(frames):
        raise DatasetError(f"{mask_dir}: {len(masks)} annotations for {len(frames)} frames in {image_dir}")
    return EvalVideo(name, frames, {0: masks[0]}, binary=binary, gt_dir=mask_dir if len(masks) == len(frames) else None)


def davis_videos(
    root: Path, image_set: Path, binary: bool = False, resolution: str = "480p"
) -> tuple[list[EvalVideo], list[int]]:
    """Videos of a DAVIS folder (JPEGImages/480p, Annotations/480p) listed in ``image_set``:
    the first frame's annotation is the input, the others (when all are there) the ground
    truth. ``binary``: DAVIS 2016, one object (the union of the annotation). Returns the
    videos and the palette for the outputs."""
    image_root = require_dir(root / "JPEGImages" / resolution, "DAVIS JPEGImages")
    mask_root = require_dir(root / "Annotations" / resolution, "DAVIS Annotations")
    videos = [
        first_frame_video(name, image_root / name, mask_root / name, binary) for name in read_image_set(image_set)
    ]
    palette = (
        davis_palette()
        if binary
        else find_palette(
            [
                root / "Annotations" / resolution / "blackswan" / "00000.png",
                root.parent / "trainval" / "Annotations" / resolution / "blackswan" / "00000.png",
            ],
            mask_root,
        )
    )
    return videos, palette


def davis_2016_image_set(davis_path: Path) -> Path:
    """Where the official downloads put the DAVIS 2016 val list; a clear error if nowhere."""
    candidates = [
        davis_path.parent / "2017" / "trainval" / "ImageSets" / "2016" / "val.txt",
        davis_path / "ImageSets" / "2016" / "val.txt",
        davis_path / "ImageSets" / "val.txt",
    ]
    for path in candidates:
        if path.is_file():
            return path
    raise DatasetError(
        "DAVIS 2016 image set not found; tried:\n  "
        + "\n  ".join(map(str, candidates))
        + "\n  (it ships with the DAVIS 2017 trainval download as ImageSets/2016/val.txt)"
    )


def youtube_videos(
    yv_path: Path, split: str, sparse_frames: bool = False
) -> tuple[list[EvalVideo], list[int], dict[str, dict]]:
    """YouTube-VOS 2018/2019 ``valid`` or ``test`` split: frames from the all-frames archive
    (``all_frames/<split>_all_frames/JPEGImages``; its absence is an error, since the
    every-5th-frame ``<split>/JPEGImages`` give results comparable with no one's, unless
    ``sparse_frames`` asks for exactly that), sparse annotations, meta.json. Returns the
    videos (every frame wanted; which ones the benchmark asks for is the protocol's
    decision, ``inference_core_yv``), the palette and meta.json's ``videos``."""
    split_root = require_dir(yv_path / split, f"YouTube-VOS {split}")
    mask_root = require_dir(split_root / "Annotations", "YouTube-VOS Annotations")
    meta_path = split_root / "meta.json"
    if not meta_path.is_file():
        raise DatasetError(f"{meta_path}: YouTube-VOS meta.json not found")
    try:
        meta = json.loads(meta_path.read_text())["videos"]
    except (json.JSONDecodeError, KeyError) as e:
        raise DatasetError(f"{meta_path}: not a YouTube-VOS meta.json ({e})") from None
    checked_names(meta, meta_path)
    if sparse_frames:
        image_root = require_dir(split_root / "JPEGImages", "YouTube-VOS JPEGImages")
    else:
        image_root = require_dir(
            yv_path / "all_frames" / f"{split}_all_frames" / "JPEGImages",
            "YouTube-VOS all-frames JPEGImages (the all-frames archive, extracted; "
            "--sparse_frames reads the every-5th-frame JPEGImages instead)",
        )
    videos = []
    for name in sorted(meta):
        frames = FrameSource(require_dir(image_root / name, "frame"))
        annotations = matched_annotations(
            sorted((mask_root / name).glob("*.png")) if (mask_root / name).is_dir() else [], frames, mask_root / name
        )
        videos.append(EvalVideo(name, frames, annotations))
    palette = find_palette([yv_path / "valid" / "Annotations" / "0a49f5265b" / "00000.png"], mask_root)
    return videos, palette, meta


def matched_annotations(paths: list[Path], frames: FrameSource, folder: Path) -> dict[int, Path]:
    """Annotation files -> the frames they belong to (by name); an unmatched file is an error."""
    if not paths:
        raise DatasetError(f"{folder}: no annotation for this video")
    matched = {}
    for path in paths:
        index = frames.index_of(path.stem)
        if index is None:
            raise DatasetError(f"{path}: annotation for a frame that is not in {frames.path}")
        matched[index] = path
    return matched


def single_mask_frame(mask: Path, frames: FrameSource) -> int:
    """The frame a single annotation file is for: the frame of its name; the first frame
    when its name is not a frame name (``first.png``, said once). A name that looks like one
    of the clip's frame names (the same with other digits: ``00099.png``) but names no frame
    is an error naming both, not silently the first frame."""
    index = frames.index_of(mask.stem)
    if index is not None:
        return index
    if DIGITS.sub("#", mask.stem) in {DIGITS.sub("#", name) for name in frames.names}:
        raise DatasetError(
            f"{mask}: named like a frame, but {frames.path} has no such frame (it has {len(frames)}: "
            f"{frames.names[0]} to {frames.names[-1]}); name it after the frame it annotates, or "
            f"anything else (first.png) for the first frame"
        )
    logger.info(f"{mask}: not named after a frame, so it annotates the first frame, {frames.describe(0)}")
    return 0


def generic_video(frames_path: Path, mask: Path, name: str | None = None) -> tuple[EvalVideo, list[int]]:
    """A user's video: a folder of frames or a video file, and its annotations: one PNG (it
    annotates the frame of its name, else the first frame: ``single_mask_frame``) or a folder of PNGs named after
    their frames (``00005.png``: the frame whose file stem is 00005, or frame 5 of a video
    file). Every frame's mask is written; frames before the first annotation are segmented
    backwards from it. The palette is the first annotation's (the DAVIS one if it has none)."""
    frames = FrameSource(frames_path)
    if mask.is_dir():
        annotations = matched_annotations(
            sorted(p for p in mask.glob("*.png") if not p.name.startswith(".")), frames, mask
        )
    elif mask.is_file():
        annotations = {single_mask_frame(mask, frames): mask}
    else:
        raise DatasetError(f"{mask}: annotation (PNG file or folder) not found")
    first = annotations[min(annotations)]
    with Image.open(first) as img:
        palette = img.getpalette() if img.mode == "P" else davis_palette()
    return EvalVideo(name or frames.path.stem, frames, annotations), palette
