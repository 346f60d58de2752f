"""Evaluate on DAVIS 2016 val (single object, top-k 20); writes 0/255 PNGs.

    python eval_davis_2016.py --model saves/gsfm.pth --davis_path data/DAVIS/2016 --output output/d16

The video list is ../2017/trainval/ImageSets/2016/val.txt beside the 2016 folder (where the
official DAVIS 2017 download ships it), or ImageSets/2016/val.txt inside it.
"""

from pathlib import Path

from benchmarks.registry import BENCHMARKS, run_benchmark
from evaluation.run import add_common_args
from util import cli


def main(argv=None) -> None:
    parser = cli.argument_parser(__doc__)
    add_common_args(parser, **BENCHMARKS["davis2016"].inference_defaults)
    parser.add_argument("--davis_path", default="data/DAVIS/2016", help="the DAVIS 2016 folder")
    args = parser.parse_args(argv)
    run_benchmark(args, "davis2016", Path(args.davis_path))


if __name__ == "__main__":
    cli.run(main)
