"""Evaluate on YouTube-VOS 2018/2019 valid or test; writes <output>/Annotations/<video>/*.png
and a ready-to-upload <output>/submission.zip. The protocol (resize, objects joining later,
the frames meta.json asks for, the zip) is inference_core_yv.py's.

    python eval_youtube.py --model saves/gsfm.pth --yv_path data/YouTube --output output/yv
    torchrun --nproc_per_node=8 eval_youtube.py ...    # the videos shared among 8 processes
"""

from pathlib import Path

import inference_core_yv
from benchmarks.registry import BENCHMARKS, run_benchmark
from evaluation.run import add_common_args
from util import cli
from util.log import get_logger

logger = get_logger(__name__)


def main(argv=None) -> None:
    parser = cli.argument_parser(__doc__)
    add_common_args(parser)
    parser.add_argument("--yv_path", default="data/YouTube", help="folder holding valid/ (or test/) and all_frames/")
    parser.add_argument("--split", default="valid", choices=BENCHMARKS["youtube-vos"].splits)
    parser.add_argument("--output_all", action="store_true", help="write every frame, not only the requested ones")
    parser.add_argument(
        "--size", type=int, default=inference_core_yv.SHORT_SIDE, help="short side the frames are resized to (-1: keep)"
    )
    parser.add_argument(
        "--no_antialias",
        action="store_true",
        help="resize without antialiasing, as the "
        "torchvision the authors used (< 0.17) did: how the published YouTube-VOS numbers were made",
    )
    parser.add_argument(
        "--sparse_frames",
        action="store_true",
        help="read the every-5th-frame <split>/JPEGImages "
        "instead of the all-frames archive (results not comparable with published ones)",
    )
    args = parser.parse_args(argv)
    if args.sparse_frames:
        logger.info(
            "--sparse_frames: reading the every-5th-frame JPEGImages, not the all-frames archive; the results "
            "are not comparable with published YouTube-VOS numbers (recorded in eval_stats.json)"
        )
    run_benchmark(
        args,
        "youtube-vos",
        Path(args.yv_path),
        args.split,
        inference_core_yv.settings(args.size, not args.no_antialias),
        output_all=args.output_all,
        sparse_frames=args.sparse_frames,
    )


if __name__ == "__main__":
    cli.run(main)
