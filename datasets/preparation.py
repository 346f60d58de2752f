"""Dataset preparation shared by ``scripts/resize_youtube.py`` and ``scripts/resize_length.py``,
each with the reference's rule for its sets:

- YouTube-VOS (PIL): short side to 480, ``int(w * 480 / short)``; frames bicubic, saved as
  JPEG at PIL's default quality (75); masks nearest, so ids and palettes survive.
- Large static images, BIG and HRSOD (OpenCV): short side to 384, ``int(w / (short / 384))``,
  with ``INTER_AREA`` for images and masks alike, smaller images enlarged too; read as
  3-channel BGR and written by ``cv2.imwrite`` (JPEG quality 95, its default). Masks come
  out with soft edges; the static training set reads them as greyscale and keeps them soft.

Every output file is written atomically, so an existing output is a complete one: an
interrupted run resumes by skipping what exists.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import cv2
from PIL import Image
from tqdm import tqdm

from util.atomic import atomic_save
from util.errors import DatasetError
from util.log import get_logger

logger = get_logger(__name__)


@dataclass(frozen=True)
class ResizeJob:
    src: Path
    dst: Path
    is_mask: bool


Resize = Callable[[ResizeJob], None]


def short_side_size(w: int, h: int, short: int) -> tuple[int, int]:
    """The YouTube-VOS rule's output size: the short side becomes ``short``."""
    ratio = short / min(w, h)
    return int(w * ratio), int(h * ratio)


def min_length_size(w: int, h: int, min_length: int) -> tuple[int, int]:
    """The static-image rule's output size (its own rounding: divided by the scale)."""
    scale = min(h, w) / min_length
    return int(w / scale), int(h / scale)


def resize_short_side_pil(job: ResizeJob, short: int) -> None:
    """One YouTube-VOS frame (bicubic, JPEG at PIL's default quality) or mask (nearest)."""
    try:
        with Image.open(job.src) as img:
            img.load()
    except (OSError, SyntaxError) as e:
        raise DatasetError(f"{job.src}: unreadable image ({e})") from None
    resample = Image.Resampling.NEAREST if job.is_mask else Image.Resampling.BICUBIC
    img = img.resize(short_side_size(*img.size, short), resample)
    fmt = "PNG" if job.dst.suffix.lower() == ".png" else "JPEG"
    atomic_save(lambda tmp: img.save(tmp, format=fmt), job.dst)


def resize_min_length_cv2(job: ResizeJob, min_length: int) -> None:
    """One static image or mask: short side to ``min_length`` with INTER_AREA."""
    img = cv2.imread(str(job.src))
    if img is None:
        raise DatasetError(f"{job.src}: unreadable image")
    h, w = img.shape[:2]
    img = cv2.resize(img, min_length_size(w, h, min_length), interpolation=cv2.INTER_AREA)

    def write(tmp: Path) -> None:
        if not cv2.imwrite(str(tmp), img):  # the temporary name keeps the extension, which picks the format
            raise OSError(f"cv2.imwrite could not write {tmp}")

    atomic_save(write, job.dst)


def run_jobs(jobs: list[ResizeJob], resize: Resize, workers: int = 1, desc: str = "resizing") -> dict:
    """Resize every job whose output does not exist yet; returns counts."""
    todo = [job for job in jobs if not job.dst.exists()]
    logger.info(f"{len(jobs)} files, {len(jobs) - len(todo)} already done")
    progress = tqdm(total=len(todo), desc=desc, unit="file")
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            for _ in pool.map(resize, todo, chunksize=16):
                progress.update(1)
    else:
        for job in todo:
            resize(job)
            progress.update(1)
    progress.close()
    return {"files": len(jobs), "resized": len(todo), "skipped": len(jobs) - len(todo)}


def youtube_jobs(src_split: Path, dst_split: Path) -> list[ResizeJob]:
    """<split>/JPEGImages/<video>/*.jpg and <split>/Annotations/<video>/*.png."""
    jobs = []
    for sub, is_mask, pattern in (("JPEGImages", False, "*.jpg"), ("Annotations", True, "*.png")):
        folder = src_split / sub
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: YouTube-VOS {sub} folder not found")
        jobs += [
            ResizeJob(p, dst_split / sub / p.parent.name / p.name, is_mask) for p in sorted(folder.glob(f"*/{pattern}"))
        ]
    return jobs


def flat_folder_jobs(src: Path, dst: Path) -> list[ResizeJob]:
    """Static-image folders: X.jpg (image) and X.png (mask) side by side, or in class subfolders."""
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: image folder not found")
    files = sorted(p for p in src.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return [ResizeJob(p, dst / p.relative_to(src), p.suffix.lower() == ".png") for p in files]


def youtube_resize(short: int) -> Resize:
    return partial(resize_short_side_pil, short=short)


def static_resize(min_length: int) -> Resize:
    return partial(resize_min_length_cv2, min_length=min_length)
