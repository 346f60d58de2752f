"""Pictures a person can look at: masks drawn over frames, videos, GIFs, contact sheets."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable

import av
import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from util.atomic import atomic_save

LABEL_HEIGHT = 16  # pixels above the columns for their labels
DEFAULT_FPS = 10.0  # an overlay video's rate when its source has none (a folder of frames)


def overlay(rgb: np.ndarray, labels: np.ndarray, palette: list[int], alpha: float = 0.5) -> np.ndarray:
    """(H, W, 3) uint8 frame with each object tinted in its palette colour and outlined."""
    colours = np.array(palette[:768], dtype=np.float32).reshape(-1, 3)
    out = rgb.astype(np.float32)
    fg = labels > 0
    out[fg] = (1 - alpha) * out[fg] + alpha * colours[labels[fg]]
    edges = cv2.morphologyEx((labels > 0).astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    out[edges] = colours[np.maximum(labels, cv2.dilate(labels, np.ones((3, 3), np.uint8)))[edges]]
    return out.clip(0, 255).astype(np.uint8)


def write_mp4(frames: Iterable[np.ndarray], path: Path, fps: float = DEFAULT_FPS) -> None:
    """RGB frames (all of one size), consumed one at a time, into an H.264 mp4 at ``fps``
    frames per second (yuv420p, which browsers and slide software play), written atomically.
    Odd sizes gain a last row or column (the encoding needs even ones)."""

    def write(tmp: Path) -> None:
        container = av.open(str(tmp), mode="w", format="mp4")
        try:
            stream = None
            for f in frames:
                f = np.pad(f, ((0, f.shape[0] % 2), (0, f.shape[1] % 2), (0, 0)), mode="edge")
                if stream is None:
                    stream = container.add_stream("h264", rate=Fraction(fps).limit_denominator(1001))
                    stream.width, stream.height, stream.pix_fmt = f.shape[1], f.shape[0], "yuv420p"
                container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")))
            if stream is not None:
                container.mux(stream.encode(None))  # flush the encoder's delayed frames
        finally:
            container.close()

    atomic_save(write, path.with_suffix(".mp4"))


def write_gif(frames: list[np.ndarray], path: Path, fps: float = 6.0) -> None:
    images = [Image.fromarray(f) for f in frames]
    atomic_save(
        lambda tmp: images[0].save(
            tmp, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0
        ),
        path,
    )


def contact_sheet(
    rows: list[list[np.ndarray]],
    path: Path,
    row_labels: list[str] | None = None,
    column_labels: list[str] | None = None,
) -> None:
    """A grid image: one row per video, frames left to right (padded to equal sizes), with
    the rows' labels on the left and the columns' above when given."""
    h = max(f.shape[0] for row in rows for f in row)
    w = max(f.shape[1] for row in rows for f in row)
    cols = max(len(row) for row in rows)
    font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left = max((int(measure.textlength(t, font=font)) + 8 for t in row_labels), default=0) if row_labels else 0
    top = LABEL_HEIGHT if column_labels else 0
    sheet = np.full((top + len(rows) * (h + 4), left + cols * (w + 4), 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for c, f in enumerate(row):
            y, x = top + r * (h + 4), left + c * (w + 4)
            sheet[y : y + f.shape[0], x : x + f.shape[1]] = f
    image = Image.fromarray(sheet)
    draw = ImageDraw.Draw(image)
    for r, text in enumerate(row_labels or []):
        draw.text((4, top + r * (h + 4) + h // 2), text, fill=(0, 0, 0), font=font, anchor="lm")
    for c, text in enumerate(column_labels or []):
        draw.text((left + c * (w + 4) + 2, top // 2), text, fill=(0, 0, 0), font=font, anchor="lm")
    atomic_save(lambda tmp: image.save(tmp, format="PNG"), path)
