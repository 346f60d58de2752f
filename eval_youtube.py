"""Evaluate on YouTube-VOS 2018/2019 valid or test; writes <output>/Annotations/<video>/*.png
and a ready-to-upload <output>/submission.zip.

    python eval_youtube.py --model saves/gsfm.pth --yv_path data/YouTube --output output/yv
    torchrun --nproc_per_node=8 eval_youtube.py ...    # the videos shared among 8 processes
"""
import zipfile
from pathlib import Path

from datasets.eval_datasets import youtube_videos
from evaluation.run import add_common_args, inference_config, mask_writer, run_evaluation, start
from util import cli
from util.atomic import atomic_save


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
    print(f"submission: {path}")
    return path


def main(argv=None) -> None:
    parser = cli.argument_parser(__doc__)
    add_common_args(parser)
    parser.add_argument("--yv_path", default="data/YouTube", help="folder holding valid/ (or test/) and all_frames/")
    parser.add_argument("--split", default="valid", choices=["valid", "test"])
    parser.add_argument("--output_all", action="store_true", help="write every frame, not only the requested ones")
    parser.add_argument("--size", type=int, default=480, help="short side the frames are resized to (-1: keep)")
    parser.add_argument("--no_antialias", action="store_true", help="resize without antialiasing, as the "
                        "torchvision the authors used (< 0.17) did: how the published YouTube-VOS numbers were made")
    args = parser.parse_args(argv)
    config = inference_config(args, short_side=args.size if args.size > 0 else None, antialias=not args.no_antialias)
    videos, palette = youtube_videos(Path(args.yv_path), args.split, args.output_all)
    processes, network = start(args)
    run_evaluation(network, videos, args.output, config, processes, mask_writer(palette), masks_subdir="Annotations",
                   overwrite=args.overwrite, summarise=lambda: write_submission_zip(args.output))


if __name__ == "__main__":
    cli.run(main)
