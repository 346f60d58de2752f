"""scripts/make_mask: polygons (LabelMe, COCO), RLEs (uncompressed and compressed) and
binary images become the indexed PNG the evaluation reads, the same objects back."""

import json

import cv2
import numpy as np
import pytest
from PIL import Image

from datasets.mask_formats import rle_counts
from scripts import make_mask
from util.cli import run as cli_run
from util.palette import read_mask


def objects():
    """Two objects on 40x60: a rectangle and a triangle (polygons whose fill is exact)."""
    labels = np.zeros((40, 60), np.uint8)
    labels[5:20, 8:30] = 1
    cv2.fillPoly(labels, [np.array([[35, 10], [55, 10], [45, 35]], np.int32)], 2)
    return labels


def encode_counts(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed counts: runs over the column-major pixels, background first."""
    flat = mask.T.ravel().astype(np.int8)
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    return np.diff(np.concatenate([[0], changes])).tolist()


def compress(counts: list[int]) -> str:
    """COCO's compressed string (maskApi.c's rleToString)."""
    out = []
    for i, x in enumerate(counts):
        x = x - counts[i - 2] if i > 2 else x
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            out.append(chr((c | (0x20 if more else 0)) + 48))
    return "".join(out)


def convert(tmp_path, data, *extra):
    source = tmp_path / "in.json"
    source.write_text(json.dumps(data))
    labels = make_mask.main([str(source), "--output", str(tmp_path / "out.png"), *map(str, extra)])
    assert np.array_equal(read_mask(tmp_path / "out.png"), labels)
    return labels


def polygon(labels, obj):
    contours, _ = cv2.findContours((labels == obj).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1, 2).tolist() for c in contours]


def test_polygons_round_trip(tmp_path):
    labels = objects()
    shapes = [{"label": f"obj{i}", "points": p, "shape_type": "polygon"} for i in (1, 2) for p in polygon(labels, i)]
    labelme = {"shapes": shapes, "imageHeight": 40, "imageWidth": 60}
    assert np.array_equal(convert(tmp_path, labelme), labels)
    coco = {
        "images": [{"id": 3, "height": 40, "width": 60}],
        "annotations": [
            {"id": 10 + i, "image_id": 3, "category_id": 1, "segmentation": [sum(polygon(labels, i)[0], [])]}
            for i in (1, 2)
        ],
    }
    assert np.array_equal(convert(tmp_path, coco), labels)
    with pytest.raises(SystemExit, match=r"in.json: annotations of 2 images; choose one with --image_id"):
        coco["annotations"][1]["image_id"] = 4
        cli_run(lambda: convert(tmp_path, coco))


def test_rles_round_trip(tmp_path):
    labels = objects()
    counts = [encode_counts(labels == i) for i in (1, 2)]
    assert rle_counts(compress(counts[0])) == counts[0]
    uncompressed = [{"size": [40, 60], "counts": c} for c in counts]
    assert np.array_equal(convert(tmp_path, uncompressed), labels)
    compressed = {
        "annotations": [
            {"id": i, "image_id": 1, "segmentation": {"size": [40, 60], "counts": compress(c)}}
            for i, c in enumerate(counts)
        ]
    }
    assert np.array_equal(convert(tmp_path, compressed), labels)
    single = convert(tmp_path, uncompressed[1])
    assert np.array_equal(single, (labels == 2).astype(np.uint8))
    with pytest.raises(SystemExit, match=r"in.json: RLE counts cover 2399 pixels, its size 40x60 has 2400"):
        cli_run(lambda: convert(tmp_path, {"size": [40, 60], "counts": [2399]}))


def test_binary_image_and_size_check(tmp_path):
    labels = objects()
    Image.fromarray(((labels > 0) * 255).astype(np.uint8)).save(tmp_path / "binary.png")
    Image.new("RGB", (60, 40)).save(tmp_path / "frame.jpg")
    out = make_mask.main(
        [str(tmp_path / "binary.png"), "--output", str(tmp_path / "m.png"), "--like", str(tmp_path / "frame.jpg")]
    )
    assert np.array_equal(out, (labels > 0).astype(np.uint8))
    Image.new("RGB", (64, 40)).save(tmp_path / "wide.jpg")
    with pytest.raises(SystemExit, match=r"binary.png: the mask is 60x40, the frame 64x40"):
        cli_run(
            lambda: make_mask.main(
                [
                    str(tmp_path / "binary.png"),
                    "--output",
                    str(tmp_path / "m.png"),
                    "--like",
                    str(tmp_path / "wide.jpg"),
                ]
            )
        )
