"""Evaluate on YouTube-VOS 2018/2019 valid or test; writes <output>/Annotations/<video>/*.png
and a ready-to-upload <output>/submission.zip.

    python eval_youtube.py --model saves/gsfm.pth --yv_path data/YouTube --output output/yv
"""
import argparse
import zipfile
from pathlib import Path

import torch

from datasets.eval_datasets import youtube_videos
from util.atomic import atomic_save
from util.evaluation import add_common_args, cli_main, load_eval_network, run_evaluation, settings_from_args


def write_submission_zip(out: Path) -> Path:
    """Zip <output>/Annotations/ (the layout the server expects), atomically."""
    annotations = out / "Annotations"

    def write(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for png in sorted(annotations.glob("*/*.png")):
                if not png.parent.name.startswith("."):
                    zf.write(png, png.relative_to(out).as_posix())

    path = out / "submission.zip"
    atomic_save(write, path)
    return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--yv_path", default="data/YouTube", help="folder holding valid/ (or test/) and all_frames/")
    parser.add_argument("--split", default="valid", choices=["valid", "test"])
    parser.add_argument("--output_all", action="store_true", help="write every frame, not only the requested ones")
    parser.add_argument("--size", type=int, default=480, help="short side the frames are resized to (-1: keep)")
    args = parser.parse_args(argv)
    settings = settings_from_args(args)
    videos, palette = youtube_videos(Path(args.yv_path), args.split, args.size, args.output_all)
    device = torch.device(args.device)
    network = load_eval_network(args.model, device)
    out = Path(args.output)
    run_evaluation(network, videos, palette, out, settings, device, masks_subdir="Annotations")
    print(f"submission: {write_submission_zip(out)}")


if __name__ == "__main__":
    cli_main(main)
