"""Segment your own video: a folder of frames (or a video file) plus a first-frame mask.

    python eval_generic.py --model saves/gsfm.pth --frames my_video/ --mask first.png --output output/mine [--overlay]

The mask is an indexed (palette) PNG with one id per object, or a 0/255 PNG for a single
object. Writes <output>/<name>/<frame>.png with the mask's palette; with --overlay also
<output>/<name>_overlay/<frame>.jpg and <output>/<name>_overlay.mp4.
"""
import argparse
from pathlib import Path

import torch
from PIL import Image

from datasets.eval_datasets import generic_video
from util.atomic import atomic_save
from util.evaluation import add_common_args, cli_main, load_eval_network, run_evaluation, settings_from_args
from util.overlay import overlay, write_mp4
from util.palette import image_files, read_image, read_mask


def write_overlays(frames_source: Path, mask_dir: Path, palette: list[int]) -> Path:
    out_dir = mask_dir.parent / f"{mask_dir.name}_overlay"
    frames = []
    for mask_path in sorted(mask_dir.glob("*.png")):
        if frames_source.is_dir():
            match = [p for p in image_files(frames_source) if p.stem == mask_path.stem]
            rgb = read_image(match[0])
        else:
            rgb = _video_frame(frames_source, int(mask_path.stem))
        picture = overlay(rgb, read_mask(mask_path), palette)
        frames.append(picture)
        atomic_save(lambda tmp: Image.fromarray(picture).save(tmp, format="JPEG", quality=90),
                    out_dir / f"{mask_path.stem}.jpg")
    write_mp4(frames, out_dir)
    return out_dir


def _video_frame(path: Path, index: int):
    import cv2
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, bgr = cap.read()
    cap.release()
    return bgr[:, :, ::-1].copy()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--frames", required=True, type=Path, help="folder of frames or a video file")
    parser.add_argument("--mask", required=True, type=Path, help="first-frame mask (palette or 0/255 PNG)")
    parser.add_argument("--name", help="output name (default: the frames' folder or file name)")
    parser.add_argument("--overlay", action="store_true", help="also write overlay images and an mp4")
    args = parser.parse_args(argv)
    settings = settings_from_args(args)
    video, palette = generic_video(args.frames, args.mask, args.name)
    device = torch.device(args.device)
    network = load_eval_network(args.model, device)
    out = Path(args.output)
    run_evaluation(network, [video], palette, out, settings, device)
    if args.overlay:
        print(f"overlays: {write_overlays(args.frames, out / video.name, palette)}")


if __name__ == "__main__":
    cli_main(main)
