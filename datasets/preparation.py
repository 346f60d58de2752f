"""Dataset preparation shared by ``scripts/resize_youtube.py`` and ``scripts/resize_long_edge.py``.

Images are resized with bicubic interpolation, masks (PNG) with nearest neighbour so ids
and palettes survive. Every output file is written atomically, so an existing output is a
complete one: an interrupted run resumes by skipping what exists.
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PIL import Image
from tqdm import tqdm

from util.atomic import atomic_save

SizeRule = Callable[[int, int], tuple[int, int]]


def short_side_rule(short: int) -> SizeRule:
    """The reference's YouTube-VOS rule: scale so the short side is ``short``."""
    def rule(w: int, h: int) -> tuple[int, int]:
        ratio = short / min(w, h)
        return int(w * ratio), int(h * ratio)
    return rule


def long_edge_rule(longest: int) -> SizeRule:
    """Shrink so the long edge is at most ``longest`` (smaller images are kept as they are)."""
    def rule(w: int, h: int) -> tuple[int, int]:
        ratio = longest / max(w, h)
        return (w, h) if ratio >= 1 else (int(w * ratio), int(h * ratio))
    return rule


@dataclass(frozen=True)
class ResizeJob:
    src: Path
    dst: Path
    is_mask: bool


def resize_file(job: ResizeJob, rule: SizeRule) -> None:
    try:
        with Image.open(job.src) as img:
            img.load()
    except (OSError, SyntaxError) as e:
        raise ValueError(f"{job.src}: unreadable image ({e})") from None
    size = rule(*img.size)
    if size != img.size:
        img = img.resize(size, Image.NEAREST if job.is_mask else Image.BICUBIC)  # NEAREST keeps mode P and palette
    fmt = "PNG" if job.dst.suffix.lower() == ".png" else "JPEG"
    options = {"quality": 95} if fmt == "JPEG" else {}
    job.dst.parent.mkdir(parents=True, exist_ok=True)
    atomic_save(lambda tmp: img.save(tmp, format=fmt, **options), job.dst)


def _resize_one(args: tuple[ResizeJob, SizeRule]) -> None:
    resize_file(*args)


def run_jobs(jobs: list[ResizeJob], rule: SizeRule, workers: int = 1, desc: str = "resizing") -> dict:
    """Resize every job whose output does not exist yet; returns counts."""
    todo = [job for job in jobs if not job.dst.exists()]
    print(f"{len(jobs)} files, {len(jobs) - len(todo)} already done")
    progress = tqdm(total=len(todo), desc=desc, unit="file")
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            for _ in pool.map(_resize_one, [(job, rule) for job in todo], chunksize=16):
                progress.update(1)
    else:
        for job in todo:
            resize_file(job, rule)
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
        jobs += [ResizeJob(p, dst_split / sub / p.parent.name / p.name, is_mask) for p in sorted(folder.glob(f"*/{pattern}"))]
    return jobs


def flat_folder_jobs(src: Path, dst: Path) -> list[ResizeJob]:
    """Static-image folders: X.jpg (image) and X.png (mask) side by side, or in class subfolders."""
    if not src.is_dir():
        raise FileNotFoundError(f"{src}: image folder not found")
    files = sorted(p for p in src.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return [ResizeJob(p, dst / p.relative_to(src), p.suffix.lower() == ".png") for p in files]
