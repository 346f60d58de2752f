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

from datasets.eval_datasets import generic_video
from evaluation.run import add_common_args, evaluate_from_arguments
from evaluation.sinks import IndexedPngs, IndexedPngsWithOverlays
from util import cli


def main(argv=None) -> None:
    parser = cli.argument_parser(__doc__)
    add_common_args(parser)
    parser.add_argument("--frames", required=True, type=Path, help="folder of frames or a video file")
    parser.add_argument("--mask", required=True, type=Path, help="annotation PNG, or a folder of them")
    parser.add_argument("--name", help="output name (default: the frames' folder or file name)")
    parser.add_argument("--overlay", action="store_true", help="also write overlay images and an mp4")
    args = parser.parse_args(argv)
    video, palette = generic_video(args.frames, args.mask, args.name)
    sink = IndexedPngsWithOverlays(palette, args.output) if args.overlay else IndexedPngs(palette)
    evaluate_from_arguments(
        args, [video], sink, {"benchmark": "generic", "frames": str(args.frames), "mask": str(args.mask)}
    )


if __name__ == "__main__":
    cli.run(main)
