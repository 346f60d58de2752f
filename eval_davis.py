"""Evaluate on DAVIS 2017 val, test-dev or test-challenge; writes <output>/<video>/<frame>.png (palette).

python eval_davis.py --model saves/gsfm.pth --davis_path data/DAVIS/2017 --output output/d17
torchrun --nproc_per_node=4 eval_davis.py ...     # the videos shared among 4 processes
"""

from pathlib import Path

from datasets.eval_datasets import davis_videos
from evaluation.run import add_common_args, evaluate_from_arguments
from evaluation.sinks import DavisScores
from util import cli

# split -> (folder under --davis_path, image set); test-dev and test-challenge are scored by the server only
SPLITS = {
    "val": ("trainval", "val.txt"),
    "testdev": ("test-dev", "test-dev.txt"),
    "test-challenge": ("test-challenge", "test-challenge.txt"),
}


def main(argv=None) -> None:
    parser = cli.argument_parser(__doc__)
    add_common_args(parser)
    parser.add_argument("--davis_path", default="data/DAVIS/2017", help="folder holding trainval/ and test-dev/")
    parser.add_argument("--split", default="val", choices=sorted(SPLITS))
    args = parser.parse_args(argv)
    folder, image_set = SPLITS[args.split]
    root = Path(args.davis_path) / folder
    videos, palette = davis_videos(root, root / "ImageSets" / "2017" / image_set)
    evaluate_from_arguments(args, videos, DavisScores(palette), {"benchmark": "davis2017", "split": args.split})


if __name__ == "__main__":
    cli.run(main)
