"""Evaluate on DAVIS 2017 val or test-dev; writes <output>/<video>/<frame>.png (palette).

    python eval_davis.py --model saves/gsfm.pth --davis_path data/DAVIS/2017 --output output/d17
"""
import argparse
from pathlib import Path

import torch

from datasets.eval_datasets import davis_videos
from util.evaluation import (add_common_args, cli_main, load_eval_network, run_evaluation, score_if_ground_truth,
                             settings_from_args)

SPLITS = {"val": ("trainval", "val.txt"), "testdev": ("test-dev", "test-dev.txt")}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--davis_path", default="data/DAVIS/2017", help="folder holding trainval/ and test-dev/")
    parser.add_argument("--split", default="val", choices=sorted(SPLITS))
    args = parser.parse_args(argv)
    settings = settings_from_args(args)
    folder, image_set = SPLITS[args.split]
    root = Path(args.davis_path) / folder
    videos, palette = davis_videos(root, root / "ImageSets" / "2017" / image_set)
    device = torch.device(args.device)
    network = load_eval_network(args.model, device)
    out = Path(args.output)
    run_evaluation(network, videos, palette, out, settings, device)
    score_if_ground_truth(videos, out)


if __name__ == "__main__":
    cli_main(main)
