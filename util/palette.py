"""Indexed (palette) PNG masks: the DAVIS palette, reading and writing."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from util.atomic import atomic_save


def davis_palette() -> list[int]:
    """The 256-colour palette of the DAVIS annotations (the PASCAL VOC bit pattern)."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def read_palette(path: str | os.PathLike) -> list[int]:
    with Image.open(path) as img:
        if img.mode != "P" or img.getpalette() is None:
            raise ValueError(f"{path}: not an indexed (palette) PNG, cannot take its palette")
        return img.getpalette()


def write_indexed_png(mask: np.ndarray, palette: list[int], path: str | os.PathLike) -> None:
    img = Image.fromarray(mask.astype(np.uint8), mode="P")
    img.putpalette(palette)
    atomic_save(lambda tmp: img.save(tmp, format="PNG"), path)


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """A label map from an indexed PNG (or 0/255 greyscale); clear error when unreadable."""
    try:
        with Image.open(path) as img:
            if img.mode in ("P", "L"):
                arr = np.array(img)
            elif img.mode in ("I;16", "I;16B", "I"):
                arr = np.array(img).astype(np.int64)
                if arr.max() > 255:
                    raise ValueError(f"{path}: 16-bit mask with ids up to {arr.max()} (at most 255 supported)")
                arr = arr.astype(np.uint8)
            else:  # RGB(A) colour masks: take the palette index if possible
                arr = np.array(img.convert("L"))
    except (OSError, SyntaxError) as e:
        raise ValueError(f"{path}: unreadable mask ({e})") from None
    return arr.astype(np.uint8)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """(H, W, 3) uint8 RGB; greyscale and RGBA are converted; clear error when unreadable."""
    try:
        with Image.open(path) as img:
            return np.array(img.convert("RGB"))
    except (OSError, SyntaxError) as e:
        raise ValueError(f"{path}: unreadable image ({e})") from None


def image_files(folder: str | os.PathLike) -> list[Path]:
    """Frame files of a folder, sorted; non-image files are ignored."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")
                  and not p.name.startswith("."))
