"""First-frame masks from what annotation tools write, as object-id maps (0 background,
1..N objects) for the indexed PNGs the evaluation scripts read.

- a binary mask image (0 and 255, or any greyscale: from 128 on is the object);
- LabelMe JSON: polygon (and rectangle) shapes; shapes with the same label and group_id
  are one object, objects numbered in order of appearance;
- COCO JSON: the annotations of one image, each an object (in the file's order), its
  segmentation a list of polygons or an RLE (uncompressed counts, or the compressed string);
- an RLE on its own: ``{"size": [h, w], "counts": ...}`` or a list of them (SAM's output),
  each an object.

RLE counts alternate background and foreground run lengths, starting with background, over
the pixels in column-major order (COCO's convention).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from util.errors import DatasetError

MAX_OBJECTS = 255  # ids of an indexed PNG (255 itself is void in DAVIS; the formats rarely reach it)


def rle_counts(counts: list[int] | str) -> list[int]:
    """Run lengths from an uncompressed list or COCO's compressed string (each count in
    6-bit groups offset by 48; from the third on, the difference to the count two before)."""
    if not isinstance(counts, str):
        return [int(c) for c in counts]
    out, p = [], 0
    while p < len(counts):
        x, k, more = 0, 0, True
        while more:
            c = ord(counts[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)  # negative: sign-extend
        if len(out) > 2:
            x += out[-2]
        out.append(x)
    return out


def decode_rle(rle: dict) -> np.ndarray:
    """A COCO RLE -> (H, W) bool mask."""
    try:
        h, w = (int(v) for v in rle["size"])
        counts = rle_counts(rle["counts"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"not an RLE with 'size' [h, w] and 'counts' ({e})") from None
    if sum(counts) != h * w or min(counts, default=0) < 0:
        raise ValueError(f"RLE counts cover {sum(counts)} pixels, its size {h}x{w} has {h * w}")
    values = np.zeros(len(counts), bool)
    values[1::2] = True
    return np.repeat(values, counts).reshape(w, h).T


def polygons_mask(polygons: list[list[float]], size: tuple[int, int]) -> np.ndarray:
    """Polygons of flat ``[x1, y1, x2, y2, ...]`` pixel coordinates -> (H, W) bool mask."""
    canvas = np.zeros(size, np.uint8)
    points = [np.round(np.asarray(p, np.float64).reshape(-1, 2)).astype(np.int32) for p in polygons if len(p) >= 6]
    if not points:
        raise ValueError("no polygon with at least 3 points")
    cv2.fillPoly(canvas, points, 1)
    return canvas.astype(bool)


def stack_objects(masks: list[np.ndarray]) -> np.ndarray:
    """Object masks -> an id map (a later object covers an earlier one where they overlap)."""
    if not masks:
        raise ValueError("no object in it")
    if len(masks) >= MAX_OBJECTS:
        raise ValueError(f"{len(masks)} objects; an indexed PNG holds at most {MAX_OBJECTS - 1}")
    labels = np.zeros(masks[0].shape, np.uint8)
    for i, m in enumerate(masks, start=1):
        if m.shape != labels.shape:
            raise ValueError(f"object {i} is {m.shape[1]}x{m.shape[0]}, object 1 {labels.shape[1]}x{labels.shape[0]}")
        labels[m] = i
    return labels


def labelme_labels(data: dict, size: tuple[int, int] | None) -> tuple[np.ndarray, list[str]]:
    size = size or (int(data["imageHeight"]), int(data["imageWidth"]))
    objects: dict[tuple, list[list[float]]] = {}
    for shape in data["shapes"]:
        kind = shape.get("shape_type", "polygon")
        points = np.asarray(shape["points"], np.float64)
        if kind == "rectangle":
            (x0, y0), (x1, y1) = points
            points = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        elif kind != "polygon":
            raise ValueError(f"shape '{shape.get('label')}' is a {kind}; only polygons and rectangles make masks")
        objects.setdefault((shape.get("label"), shape.get("group_id")), []).append(points.ravel().tolist())
    names = [label if group is None else f"{label} (group {group})" for label, group in objects]
    return stack_objects([polygons_mask(p, size) for p in objects.values()]), names


def coco_labels(data: dict, size: tuple[int, int] | None, image_id: int | None) -> tuple[np.ndarray, list[str]]:
    images = {image["id"]: image for image in data.get("images", [])}
    annotated = list(dict.fromkeys(a["image_id"] for a in data["annotations"]))
    if image_id is None:
        if len(annotated) != 1:
            raise ValueError(f"annotations of {len(annotated)} images; choose one with --image_id ({annotated[:10]})")
        image_id = annotated[0]
    annotations = [a for a in data["annotations"] if a["image_id"] == image_id]
    if not annotations:
        raise ValueError(f"no annotation of image {image_id}")
    if size is None and image_id in images:
        size = (int(images[image_id]["height"]), int(images[image_id]["width"]))
    masks = []
    for a in annotations:
        segmentation = a["segmentation"]
        if isinstance(segmentation, dict):
            masks.append(decode_rle(segmentation))
        elif size is None:
            raise ValueError(f"image {image_id} has no size in 'images'; give --size W H")
        else:
            masks.append(polygons_mask(segmentation, size))
    return stack_objects(masks), [f"annotation {a.get('id')} (category {a.get('category_id')})" for a in annotations]


def binary_labels(path: Path) -> np.ndarray:
    """A mask image as one object: an indexed PNG's non-zero ids, else the pixels from 128
    on in greyscale (0/255 masks, anti-aliased edges, a white object on black)."""
    try:
        with Image.open(path) as img:
            foreground = np.array(img) > 0 if img.mode == "P" else np.array(img.convert("L")) >= 128
    except OSError as e:
        raise ValueError(f"not a readable image ({e})") from None
    if not foreground.any():
        raise ValueError("no object in it (every pixel is background)")
    return foreground.astype(np.uint8)


def read_objects(
    path: Path, size: tuple[int, int] | None = None, image_id: int | None = None
) -> tuple[np.ndarray, list[str]]:
    """The object-id map of an annotation file and its objects' names; ``size`` (H, W)
    for polygons whose file does not say it. DatasetError naming the file when it is none
    of the formats or is inconsistent."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: mask file not found")
    try:
        if path.suffix.lower() != ".json":
            return binary_labels(path), ["object"]
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "shapes" in data:
            return labelme_labels(data, size)
        if isinstance(data, dict) and "annotations" in data:
            return coco_labels(data, size, image_id)
        rles = data if isinstance(data, list) else [data]
        return stack_objects([decode_rle(r) for r in rles]), [f"RLE {i}" for i in range(1, len(rles) + 1)]
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise DatasetError(f"{path}: {e}") from None
