"""Where the annotated videos of a folder given to --videos / --val_videos are: its frames
and masks as DAVIS, YouTube-VOS or this project lay them out, found rather than configured,
so that a downloaded dataset is used as it is.

- ``ROOT/JPEGImages/<video>/`` and ``ROOT/Annotations/<video>/`` (a YouTube-VOS split, a
  custom folder);
- ``ROOT/JPEGImages/480p/<video>/`` and ``ROOT/Annotations/480p/<video>/`` (DAVIS
  ``2017/trainval``; ``Full-Resolution`` when that is the only resolution);
- the same one level down, under ``ROOT/trainval`` (DAVIS ``2017``) or ``ROOT/train_480p``
  / ``ROOT/train`` (the YouTube-VOS root).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from util.errors import DatasetError

IMAGES, ANNOTATIONS = "JPEGImages", "Annotations"
DAVIS_RESOLUTIONS = ("480p", "Full-Resolution")
# a dataset's root, one level above a split (YouTube-VOS: the 480p copy the reference trains on first)
SUBFOLDERS = {"trainval": "DAVIS", "train_480p": "YouTube-VOS", "train": "YouTube-VOS"}


@dataclass(frozen=True)
class VideoLayout:
    images: Path  # the folder of per-video frame folders
    annotations: Path  # the folder of per-video mask folders
    name: str  # which layout it is, for the start-up line

    def describe(self, root: Path) -> str:
        return f"{root}: {self.name} layout ({self.images.relative_to(root)}, {self.annotations.relative_to(root)})"


def _video_folders(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")] if folder.is_dir() else []


def _split_layout(split: Path, dataset: str | None) -> VideoLayout | None:
    """The layout of one split folder (``JPEGImages`` and ``Annotations`` in it), or None."""
    images, annotations = split / IMAGES, split / ANNOTATIONS
    if not images.is_dir():
        return None
    for resolution in DAVIS_RESOLUTIONS:
        if (images / resolution).is_dir():
            return VideoLayout(images / resolution, annotations / resolution, dataset or "DAVIS")
    return VideoLayout(images, annotations, dataset or "plain")


def find_video_layout(root: str | Path) -> VideoLayout:
    """The layout of ``root``; a DatasetError that says what ``root`` holds when none fits."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: video folder not found")
    found = _split_layout(root, None)
    if found is not None:
        return found
    for sub, dataset in SUBFOLDERS.items():
        found = _split_layout(root / sub, dataset)
        if found is not None:
            return found
    return _missing(root)


def _missing(root: Path) -> VideoLayout:
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir() if not p.name.startswith("."))
    held = ", ".join(entries[:8]) + (f" and {len(entries) - 8} more" if len(entries) > 8 else "") or "nothing"
    raise DatasetError(
        f"{root}: no {IMAGES}/ folder here or under {', '.join(f'{s}/' for s in SUBFOLDERS)} (it holds {held}); "
        f"expected {IMAGES}/<video>/ and {ANNOTATIONS}/<video>/, or DAVIS's {IMAGES}/480p/<video>/"
    )


def describe_contents(layout: VideoLayout) -> str:
    """What a layout's folders hold, for an error about an empty set."""
    videos = _video_folders(layout.images)
    annotated = [v for v in videos if any((layout.annotations / v.name).glob("*.png"))]
    return (
        f"{len(videos)} video folders in {layout.images}, {len(annotated)} of them with PNG masks in "
        f"{layout.annotations}"
    )
