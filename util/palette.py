"""Indexed (palette) PNG masks: the DAVIS palette, reading and writing."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from util.atomic import atomic_save
from util.errors import DatasetError, UnreadableImage


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
            raise DatasetError(f"{path}: not an indexed (palette) PNG, cannot take its palette")
        return img.getpalette()


def write_indexed_png(mask: np.ndarray, palette: list[int], path: str | os.PathLike) -> None:
    img = Image.fromarray(mask.astype(np.uint8), mode="P")
    # a full 256-colour palette: with a shorter one PIL renumbers ids that have no colour
    img.putpalette(list(palette)[:768] + [0] * (768 - len(palette)))
    atomic_save(lambda tmp: img.save(tmp, format="PNG"), path)


def write_binary_png(mask: np.ndarray, path: str | os.PathLike) -> None:
    """A 0/255 greyscale PNG of a boolean mask (DAVIS 2016, SA-V's per-object masks)."""
    img = Image.fromarray(mask.astype(np.uint8) * 255, mode="L")
    atomic_save(lambda tmp: img.save(tmp, format="PNG"), path)


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """A label map from an indexed PNG (or 0/255 greyscale); clear error when unreadable."""
    try:
        with Image.open(path) as img:
            if img.mode in ("P", "L"):
                arr = np.array(img)
            elif img.mode == "LA":
                arr = np.array(img.getchannel("L"))
            elif img.mode in ("I;16", "I;16B", "I"):
                arr = np.array(img).astype(np.int64)
                if arr.max() > 255:
                    raise DatasetError(f"{path}: 16-bit mask with ids up to {arr.max()} (at most 255 supported)")
                arr = arr.astype(np.uint8)
            else:
                arr = _colour_mask_ids(path, np.array(img.convert("RGB")))
    except (OSError, SyntaxError) as e:
        raise DatasetError(f"{path}: unreadable mask ({e})") from None
    return arr.astype(np.uint8)


def _colour_mask_ids(path: str | os.PathLike, rgb: np.ndarray) -> np.ndarray:
    """An RGB colour mask -> ids: each colour's index in the DAVIS palette when every colour
    is in it; otherwise black is 0 and the other colours get 1, 2, ... in sorted order."""
    colours, inverse = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)
    palette = {tuple(c): i for i, c in enumerate(np.array(davis_palette()).reshape(-1, 3).tolist())}
    ids = [palette.get(tuple(c)) for c in colours.tolist()]
    if None in ids:
        ids = list(range(len(colours))) if not colours[0].any() else list(range(1, len(colours) + 1))
        if len(colours) > 20:
            warnings.warn(
                f"{path}: RGB mask with {len(colours)} colours (anti-aliased edges?); save masks as "
                f"indexed PNGs with one id per object"
            )
    if max(ids) > 255:
        raise DatasetError(f"{path}: RGB mask with {len(colours)} colours (at most 255 objects supported)")
    return np.array(ids, dtype=np.uint8)[inverse.reshape(-1)].reshape(rgb.shape[:2])


def open_image(path: str | os.PathLike, mode: str) -> Image.Image:
    """The image decoded and converted to ``mode``; ``UnreadableImage`` naming the file when
    it cannot be opened or decoded (PIL reports these as OSError, SyntaxError for a broken
    PNG, ValueError or DecompressionBombError), and only then."""
    try:
        with Image.open(path) as img:
            return img.convert(mode)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise UnreadableImage(f"{path}: unreadable image ({e})") from None


def read_image(path: str | os.PathLike) -> np.ndarray:
    """(H, W, 3) uint8 RGB; greyscale and RGBA are converted; clear error when unreadable."""
    return np.array(open_image(path, "RGB"))


def image_files(folder: str | os.PathLike) -> list[Path]:
    """Frame files of a folder, sorted; non-image files are ignored."""
    return sorted(
        p
        for p in Path(folder).iterdir()
        if p.suffix.lower() in (".jpg", ".jpeg", ".png") and not p.name.startswith(".")
    )
