"""Make the first-frame mask the evaluation scripts read (an indexed PNG, one id per object)
from what annotation tools write: a binary mask image, a LabelMe or COCO polygon JSON, or an
RLE (COCO's uncompressed or compressed counts; SAM's output). docs/OWN_VIDEOS.md says how
to draw one.

    python -m scripts.make_mask mask.png --output first.png                 # a binary mask
    python -m scripts.make_mask frame0.json --output first.png              # LabelMe polygons
    python -m scripts.make_mask instances.json --image_id 7 --output first.png   # COCO
    python -m scripts.make_mask rle.json --like frames/00000.jpg --output first.png

The objects are numbered 1..N in the file's order (listed when written); the palette is DAVIS's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from datasets.mask_formats import read_objects
from util import cli
from util.errors import DatasetError
from util.log import get_logger
from util.palette import davis_palette, write_indexed_png

logger = get_logger("make_mask")


def main(argv: list[str] | None = None) -> np.ndarray:
    parser = cli.argument_parser(__doc__)
    parser.add_argument("input", type=Path, help="mask image, LabelMe/COCO JSON or RLE JSON")
    parser.add_argument("--output", type=Path, required=True, help="the indexed PNG to write")
    parser.add_argument("--image_id", type=int, help="COCO: the image whose annotations to use")
    parser.add_argument("--size", type=int, nargs=2, metavar=("W", "H"), help="polygons: the frame's size")
    parser.add_argument("--like", type=Path, help="polygons: take the size from this frame; the mask must match it")
    args = parser.parse_args(argv)
    size = (args.size[1], args.size[0]) if args.size else None
    if args.like is not None:
        try:
            with Image.open(args.like) as frame:
                size = (frame.height, frame.width)
        except OSError as e:
            raise DatasetError(f"{args.like}: not a readable frame ({e})") from None
    labels, names = read_objects(args.input, size, args.image_id)
    if size is not None and labels.shape != size:
        raise DatasetError(
            f"{args.input}: the mask is {labels.shape[1]}x{labels.shape[0]}, the frame {size[1]}x{size[0]}"
        )
    write_indexed_png(labels, davis_palette(), args.output)  # atomic
    for i, name in enumerate(names, start=1):
        logger.info(f"object {i}: {name}, {int((labels == i).sum())} pixels")
    logger.info(f"{args.output}: {labels.shape[1]}x{labels.shape[0]}, {len(names)} object(s)")
    return labels


if __name__ == "__main__":
    cli.run(main)
