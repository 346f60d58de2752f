"""Segment your own video: a folder of frames (or a video file) and its annotations.

    python eval_generic.py --model saves/gsfm.pth --frames my_video/ --mask first.png --output output/mine [--overlay]
    python eval_generic.py --model saves/gsfm.pth --frames clip.mp4 --mask annotations/ --output output/clip

--mask is one PNG (it annotates the frame of its name, else the first frame) or a folder of
PNGs named after their frames (00005.png: the frame whose file stem is 00005, or frame 5 of a
video file). Each annotation may bring new objects and re-label existing ones; frames
before the first annotation are segmented backwards from it. Masks are indexed PNGs with one
id per object (or 0/255 for a single object). Writes <output>/<name>/<frame>.png with the
annotation's palette; with --overlay also <output>/<name>_overlay/<frame>.jpg and
<output>/<name>_overlay.mp4.
"""
from pathlib import Path

from PIL import Image

from datasets.eval_datasets import EvalVideo, generic_video
from evaluation.run import add_common_args, inference_config, mask_writer, run_evaluation, start
from evaluation.video import FrameOutput
from util import cli
from util.atomic import atomic_save
from util.overlay import overlay, write_mp4
from util.palette import read_image


def main(argv=None) -> None:
    parser = cli.argument_parser(__doc__)
    add_common_args(parser)
    parser.add_argument("--frames", required=True, type=Path, help="folder of frames or a video file")
    parser.add_argument("--mask", required=True, type=Path, help="annotation PNG, or a folder of them")
    parser.add_argument("--name", help="output name (default: the frames' folder or file name)")
    parser.add_argument("--overlay", action="store_true", help="also write overlay images and an mp4")
    args = parser.parse_args(argv)
    config = inference_config(args)
    video, palette = generic_video(args.frames, args.mask, args.name)
    overlay_dir = args.output / f"{video.name}_overlay"

    def write_overlay(_: EvalVideo, frame: FrameOutput) -> None:  # from the frames as decoded, once
        picture = overlay(frame.rgb, frame.labels, palette)
        atomic_save(lambda tmp: Image.fromarray(picture).save(tmp, format="JPEG", quality=90),
                    overlay_dir / f"{frame.name}.jpg")

    def write_video() -> None:  # in frame order (the backward pass comes last), one frame in memory
        write_mp4((read_image(overlay_dir / f"{name}.jpg") for name in video.frames.names), overlay_dir)
        print(f"overlays: {overlay_dir}/ and {overlay_dir.with_suffix('.mp4')}")

    processes, network = start(args)
    run_evaluation(network, [video], args.output, config, processes, mask_writer(palette), overwrite=args.overwrite,
                   on_output=write_overlay if args.overlay else None, summarise=write_video if args.overlay else None)


if __name__ == "__main__":
    cli.run(main)
