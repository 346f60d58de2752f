"""Benchmark readers: DAVIS 2017/2016, YouTube-VOS and a user's own video.

Each reader lists ``EvalVideo`` objects; a video reads its frames lazily, one at a time,
so a long video is never held in memory. Problems with the files raise ``DatasetError``
naming the file and what is wrong.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from inference_core_yv import LabelMapping
from util.errors import DatasetError
from util.palette import davis_palette, image_files, read_image, read_mask, read_palette
from util.tensor_util import normalise_rgb

VOID_LABEL = 255


@dataclass
class FrameInput:
    index: int
    name: str  # file stem, used for the output PNG
    image: torch.Tensor  # (3, H, W) normalised (resized for YouTube-VOS)
    mask: torch.Tensor | None = None  # (K, H, W) one-hot of this frame's annotation
    new_objects: list[int] = field(default_factory=list)  # 1-based objects first labelled here
    write: bool = True  # whether the benchmark wants this frame's output


@dataclass
class EvalVideo:
    name: str
    num_frames: int
    mapping: LabelMapping
    output_size: tuple[int, int]
    read_frames: Callable[[], Iterator[FrameInput]]
    required_frames: set[int] | None = None  # None: every frame's output is needed
    gt_dir: Path | None = None  # full ground truth, for J&F

    @property
    def num_objects(self) -> int:
        return len(self.mapping)


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DatasetError(f"{path}: {what} folder not found")
    return path


def _frames_in(folder: Path) -> list[Path]:
    files = image_files(require_dir(folder, "frame"))
    if not files:
        raise DatasetError(f"{folder}: no frames (.jpg/.png) in this folder")
    return files


def _load_image(path: Path) -> np.ndarray:
    try:
        return read_image(path)
    except ValueError as e:
        raise DatasetError(str(e)) from None


def load_label_map(path: Path, expected_size: tuple[int, int] | None = None) -> np.ndarray:
    try:
        labels = read_mask(path)
    except ValueError as e:
        raise DatasetError(str(e)) from None
    if expected_size is not None and labels.shape != tuple(expected_size):
        raise DatasetError(f"{path}: mask size {labels.shape[1]}x{labels.shape[0]} differs from the frame size "
                           f"{expected_size[1]}x{expected_size[0]}")
    return labels


def first_frame_labels(path: Path, labels: np.ndarray, binary: bool = False) -> np.ndarray:
    """Clean a given first-frame label map: 0/255 masks and anti-aliased edges.

    A greyscale mask whose values are only 0 and 255 (DAVIS 2016 style, or a user's
    binary mask) is one object; in a binary mask, in-between values (anti-aliased edges)
    are counted in a warning and thresholded at 128. An indexed mask with many ids or
    several tiny ones gets a warning that counts them (likely anti-aliasing); every id
    stays an object, as in the reference. 255 is void (background).
    """
    values, counts = np.unique(labels, return_counts=True)
    with Image.open(path) as img:
        greyscale = img.mode in ("L", "LA")  # RGB colour masks were mapped to ids by read_mask
    if binary or greyscale or set(values.tolist()) <= {0, 255}:
        stray = int(((labels > 0) & (labels < 255)).sum())
        if stray:
            warnings.warn(f"{path}: {stray} pixels with values between 0 and 255 (anti-aliased edges?); "
                          f"thresholded at 128")
        labels = (labels >= 128).astype(np.uint8)
    else:
        labels = _checked_indexed_labels(path, labels, values, counts)
    if not labels.any():
        raise DatasetError(f"{path}: the first-frame mask contains no object")
    return labels


def _checked_indexed_labels(path: Path, labels: np.ndarray, values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    ids = [int(v) for v in values if v not in (0, VOID_LABEL)]
    tiny = [int(v) for v, c in zip(values, counts) if v not in (0, VOID_LABEL) and c < 0.0005 * labels.size]
    if len(ids) > 20 or len(tiny) > 2:
        warnings.warn(f"{path}: {len(ids)} object ids, {len(tiny)} of them covering almost no pixels "
                      f"({tiny[:10]}): anti-aliased edges? Masks must be indexed PNGs with one id per object; "
                      f"every id is treated as an object")
    return np.where(labels == VOID_LABEL, 0, labels).astype(np.uint8)


def read_image_set(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetError(f"{path}: image set file not found")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


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


def davis_videos(root: Path, image_set: Path, binary: bool = False,
                 resolution: str = "480p") -> tuple[list[EvalVideo], list[int]]:
    """Videos of a DAVIS folder (JPEGImages/480p, Annotations/480p) listed in ``image_set``.

    ``binary``: DAVIS 2016, one object (the union of the annotation). Returns the videos
    and the palette for the outputs.
    """
    image_root = require_dir(root / "JPEGImages" / resolution, "DAVIS JPEGImages")
    mask_root = require_dir(root / "Annotations" / resolution, "DAVIS Annotations")
    videos = []
    for name in read_image_set(image_set):
        frames = _frames_in(image_root / name)
        masks = sorted((mask_root / name).glob("*.png")) if (mask_root / name).is_dir() else []
        if not masks or masks[0].stem != frames[0].stem:
            raise DatasetError(f"{mask_root / name / (frames[0].stem + '.png')}: first-frame annotation not found")
        if len(masks) > 1 and len(masks) != len(frames):
            raise DatasetError(f"{mask_root / name}: {len(masks)} annotations for {len(frames)} frames "
                               f"in {image_root / name}")
        first = first_frame_labels(masks[0], load_label_map(masks[0]), binary)
        mapping = LabelMapping(np.unique(first))
        videos.append(EvalVideo(name, len(frames), mapping, first.shape,
                                _davis_reader(frames, masks[0], first, mapping),
                                gt_dir=(mask_root / name) if len(masks) == len(frames) else None))
    palette = davis_palette() if binary else find_palette(
        [root / "Annotations" / resolution / "blackswan" / "00000.png",
         root.parent / "trainval" / "Annotations" / resolution / "blackswan" / "00000.png"], mask_root)
    return videos, palette


def _davis_reader(frames: list[Path], first_mask: Path, first_labels: np.ndarray,
                  mapping: LabelMapping) -> Callable[[], Iterator[FrameInput]]:
    def read() -> Iterator[FrameInput]:
        for i, path in enumerate(frames):
            rgb = _load_image(path)
            if rgb.shape[:2] != first_labels.shape:
                raise DatasetError(f"{path}: frame size {rgb.shape[1]}x{rgb.shape[0]} differs from the annotation "
                                   f"{first_mask} ({first_labels.shape[1]}x{first_labels.shape[0]})")
            frame = FrameInput(i, path.stem, normalise_rgb(rgb))
            if i == 0:
                frame.mask = mapping.one_hot(first_labels)
                frame.new_objects = list(range(1, len(mapping) + 1))
            yield frame
    return read


def davis_2016_image_set(davis_path: Path) -> Path:
    """Where the official downloads put the DAVIS 2016 val list; a clear error if nowhere."""
    candidates = [davis_path.parent / "2017" / "trainval" / "ImageSets" / "2016" / "val.txt",
                  davis_path / "ImageSets" / "2016" / "val.txt",
                  davis_path / "ImageSets" / "val.txt"]
    for path in candidates:
        if path.is_file():
            return path
    raise DatasetError("DAVIS 2016 image set not found; tried:\n  " + "\n  ".join(map(str, candidates))
                       + "\n  (it ships with the DAVIS 2017 trainval download as ImageSets/2016/val.txt)")


def resize_short_side(x: torch.Tensor, size: int, interpolation: InterpolationMode) -> torch.Tensor:
    """torchvision Resize(size) semantics (short side to ``size``); identity if size <= 0."""
    if size <= 0:
        return x
    return TF.resize(x, size, interpolation=interpolation, antialias=True)


def youtube_videos(yv_path: Path, split: str, short_side: int = 480,
                   output_all: bool = False) -> tuple[list[EvalVideo], list[int]]:
    """YouTube-VOS 2018/2019 ``valid`` or ``test`` split (meta.json, sparse annotations)."""
    split_root = require_dir(yv_path / split, f"YouTube-VOS {split}")
    mask_root = require_dir(split_root / "Annotations", "YouTube-VOS Annotations")
    all_frames = yv_path / "all_frames" / f"{split}_all_frames" / "JPEGImages"
    image_root = all_frames if all_frames.is_dir() else require_dir(split_root / "JPEGImages", "YouTube-VOS JPEGImages")
    meta_path = split_root / "meta.json"
    if not meta_path.is_file():
        raise DatasetError(f"{meta_path}: YouTube-VOS meta.json not found")
    try:
        meta = json.loads(meta_path.read_text())["videos"]
    except (json.JSONDecodeError, KeyError) as e:
        raise DatasetError(f"{meta_path}: not a YouTube-VOS meta.json ({e})") from None
    videos = []
    for name in sorted(meta):
        frames = _frames_in(image_root / name)
        annotations = {p.stem: p for p in sorted((mask_root / name).glob("*.png"))} if (mask_root / name).is_dir() else {}
        if not annotations:
            raise DatasetError(f"{mask_root / name}: no annotation for this video")
        stems = [f.stem for f in frames]
        unknown = [s for s in annotations if s not in stems]
        if unknown:
            raise DatasetError(f"{mask_root / name / (unknown[0] + '.png')}: annotation for a frame that is not in "
                               f"{image_root / name}")
        first_ann = load_label_map(next(iter(annotations.values())))
        labels = set()
        for path in annotations.values():
            labels |= set(np.unique(load_label_map(path, first_ann.shape)).tolist())
        mapping = LabelMapping(labels)
        requested = {f for obj in meta[name]["objects"].values() for f in obj["frames"]}
        first_index = min(stems.index(s) for s in annotations)
        required = {i for i, s in enumerate(stems) if s in requested}
        write = {i for i in range(len(stems)) if i >= first_index and (output_all or i in required)}
        videos.append(EvalVideo(name, len(frames), mapping, first_ann.shape,
                                _youtube_reader(frames, annotations, mapping, first_ann.shape, short_side, write),
                                required_frames=None if output_all else required))
    palette = find_palette([yv_path / "valid" / "Annotations" / "0a49f5265b" / "00000.png"], mask_root)
    return videos, palette


def _youtube_reader(frames: list[Path], annotations: dict[str, Path], mapping: LabelMapping, size: tuple[int, int],
                    short_side: int, write: set[int]) -> Callable[[], Iterator[FrameInput]]:
    def read() -> Iterator[FrameInput]:
        seen: set[int] = set()
        for i, path in enumerate(frames):
            image = resize_short_side(normalise_rgb(_load_image(path)), short_side, InterpolationMode.BICUBIC)
            frame = FrameInput(i, path.stem, image, write=i in write)
            if path.stem in annotations:
                labels = load_label_map(annotations[path.stem], size)
                one_hot = resize_short_side(mapping.one_hot(labels), short_side, InterpolationMode.NEAREST)
                frame.mask = one_hot
                frame.new_objects = [o for o in mapping.objects_in(labels) if o not in seen]
                seen |= set(frame.new_objects)
            yield frame
    return read


def generic_video(frames_source: Path, first_mask: Path, name: str | None = None) -> tuple[EvalVideo, list[int]]:
    """A user's video: a folder of frames or a video file, plus a first-frame mask."""
    if not frames_source.exists():
        raise DatasetError(f"{frames_source}: no such frame folder or video file")
    if not first_mask.is_file():
        raise DatasetError(f"{first_mask}: first-frame mask not found")
    raw = load_label_map(first_mask)
    with Image.open(first_mask) as img:
        palette = img.getpalette() if img.mode == "P" else davis_palette()
    labels = first_frame_labels(first_mask, raw)
    mapping = LabelMapping(np.unique(labels))
    if frames_source.is_dir():
        files = _frames_in(frames_source)
        count = len(files)
        rgb_frames = lambda: ((p.stem, _load_image(p)) for p in files)  # noqa: E731
    else:
        count, rgb_frames = _video_file_frames(frames_source)

    def read() -> Iterator[FrameInput]:
        for i, (stem, rgb) in enumerate(rgb_frames()):
            if rgb.shape[:2] != labels.shape:
                raise DatasetError(f"{frames_source} frame {stem}: size {rgb.shape[1]}x{rgb.shape[0]} differs from "
                                   f"the mask {first_mask} ({labels.shape[1]}x{labels.shape[0]})")
            frame = FrameInput(i, stem, normalise_rgb(rgb))
            if i == 0:
                frame.mask = mapping.one_hot(labels)
                frame.new_objects = list(range(1, len(mapping) + 1))
            yield frame

    video = EvalVideo(name or frames_source.stem, count, mapping, labels.shape, read)
    return video, palette


def _video_file_frames(path: Path):
    import cv2
    cap = cv2.VideoCapture(str(path))
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    if count <= 0:
        raise DatasetError(f"{path}: not a readable video file")

    def frames():
        cap = cv2.VideoCapture(str(path))
        try:
            i = 0
            while True:
                ok, bgr = cap.read()
                if not ok:
                    break
                yield f"{i:05d}", bgr[:, :, ::-1].copy()
                i += 1
        finally:
            cap.release()
    return count, frames
