"""Export GSFM's per-frame networks (key encoder, value encoder, decoder) as ONNX graphs for
one frame size, for the onnxruntime backend of the eval scripts (``--backend onnxruntime
--onnx DIR``). Run again with another size to add it to the same folder.

    python -m scripts.export_onnx --model saves/gsfm.pth --output onnx/gsfm              # 854x480
    python -m scripts.export_onnx --model saves/gsfm.pth --output onnx/gsfm --height 720 --width 1280

``--height``/``--width`` are the frame size the network sees (after any --short_side or
--max_size resize of the eval scripts); it is padded to multiples of 16 as the engine pads.
Needs the packages of requirements-export.txt (onnx, onnxscript; onnxruntime to run them).
"""

from __future__ import annotations

import time
from pathlib import Path

from model.checkpoint import load_network
from model.export import export_size
from model.zoo import resolve_model
from util import cli
from util.log import get_logger

logger = get_logger(__name__)


def main(argv: list[str] | None = None) -> dict:
    parser = cli.argument_parser(__doc__)
    parser.add_argument("--model", required=True, help="network weights (.pth) or a published name (stcn-s012, ...)")
    parser.add_argument("--output", required=True, type=Path, help="export folder (graphs and manifest.json)")
    parser.add_argument("--height", type=int, default=480, help="frame height (padded to a multiple of 16)")
    parser.add_argument("--width", type=int, default=854, help="frame width (padded to a multiple of 16)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    entry = export_size(
        load_network(resolve_model(args.model)), args.output, args.height, args.width, model_name=args.model
    )
    sizes = ", ".join(
        f"{name} {(args.output / file).stat().st_size / 2**20:.0f} MB" for name, file in entry["graphs"].items()
    )
    logger.info(
        f"exported {entry['height']}x{entry['width']} into {args.output} in "
        f"{time.perf_counter() - started:.0f} s: {sizes}"
    )
    return entry


if __name__ == "__main__":
    cli.run(main)
