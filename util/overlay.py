"""Pictures a person can look at: masks drawn over frames, videos, GIFs, contact sheets."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import cv2
import numpy as np
from PIL import Image

from util.atomic import atomic_save


def overlay(rgb: np.ndarray, labels: np.ndarray, palette: list[int], alpha: float = 0.5) -> np.ndarray:
    """(H, W, 3) uint8 frame with each object tinted in its palette colour and outlined."""
    colours = np.array(palette[:768], dtype=np.float32).reshape(-1, 3)
    out = rgb.astype(np.float32)
    fg = labels > 0
    out[fg] = (1 - alpha) * out[fg] + alpha * colours[labels[fg]]
    edges = cv2.morphologyEx((labels > 0).astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    out[edges] = colours[np.maximum(labels, cv2.dilate(labels, np.ones((3, 3), np.uint8)))[edges]]
    return out.clip(0, 255).astype(np.uint8)


def write_mp4(frames: Iterable[np.ndarray], path: Path, fps: float = 10.0) -> None:
    """RGB frames (all of one size), consumed one at a time, into an mp4 written atomically."""

    def write(tmp: Path) -> None:
        writer = None
        try:
            for f in frames:
                if writer is None:
                    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (f.shape[1], f.shape[0]))
                writer.write(np.ascontiguousarray(f[:, :, ::-1]))
        finally:
            if writer is not None:
                writer.release()

    atomic_save(write, path.with_suffix(".mp4"))


def write_gif(frames: list[np.ndarray], path: Path, fps: float = 6.0) -> None:
    images = [Image.fromarray(f) for f in frames]
    atomic_save(
        lambda tmp: images[0].save(
            tmp, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0
        ),
        path,
    )


def contact_sheet(rows: list[list[np.ndarray]], path: Path) -> None:
    """A grid image: one row per video, frames left to right (padded to equal sizes)."""
    h = max(f.shape[0] for row in rows for f in row)
    w = max(f.shape[1] for row in rows for f in row)
    cols = max(len(row) for row in rows)
    sheet = np.full((len(rows) * (h + 4), cols * (w + 4), 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, f in enumerate(row):
            sheet[r * (h + 4) : r * (h + 4) + f.shape[0], c * (w + 4) : c * (w + 4) + f.shape[1]] = f
    atomic_save(lambda tmp: Image.fromarray(sheet).save(tmp, format="PNG"), path)
