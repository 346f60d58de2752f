"""Evaluate on DAVIS 2016 val (single object, top-k 20); writes 0/255 PNGs.

    python eval_davis_2016.py --model saves/gsfm.pth --davis_path data/DAVIS/2016 --output output/d16

The video list is ../2017/trainval/ImageSets/2016/val.txt beside the 2016 folder (where the
official DAVIS 2017 download ships it), or ImageSets/2016/val.txt inside it.
"""
import argparse
from pathlib import Path

import torch

from datasets.eval_datasets import davis_2016_image_set, davis_videos
from util.evaluation import (add_common_args, cli_main, load_eval_network, run_evaluation, score_if_ground_truth,
                             settings_from_args)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser, top_k=20)
    parser.add_argument("--davis_path", default="data/DAVIS/2016", help="the DAVIS 2016 folder")
    args = parser.parse_args(argv)
    settings = settings_from_args(args, binary_output=True)
    root = Path(args.davis_path)
    videos, palette = davis_videos(root, davis_2016_image_set(root), binary=True)
    device = torch.device(args.device)
    network = load_eval_network(args.model, device)
    out = Path(args.output)
    run_evaluation(network, videos, palette, out, settings, device)
    score_if_ground_truth(videos, out, binary=True)


if __name__ == "__main__":
    cli_main(main)
