"""Evaluate on DAVIS 2017 val, test-dev or test-challenge; writes <output>/<video>/<frame>.png (palette).

python eval_davis.py --model saves/gsfm.pth --davis_path data/DAVIS/2017 --output output/d17
torchrun --nproc_per_node=4 eval_davis.py ...     # the videos shared among 4 processes
"""

from pathlib import Path

from benchmarks.registry import BENCHMARKS, run_benchmark
from evaluation.run import add_common_args
from util import cli


def main(argv=None) -> None:
    parser = cli.argument_parser(__doc__)
    add_common_args(parser)
    parser.add_argument("--davis_path", default="data/DAVIS/2017", help="folder holding trainval/ and test-dev/")
    parser.add_argument("--split", default="val", choices=BENCHMARKS["davis2017"].splits)
    args = parser.parse_args(argv)
    run_benchmark(args, "davis2017", Path(args.davis_path), args.split)


if __name__ == "__main__":
    cli.run(main)
