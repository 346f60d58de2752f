"""Throughput of ``--videos_per_device N``: a generated DAVIS 2017 validation set evaluated
whole (``evaluation.run.evaluate``, the eval scripts' path, writing the masks) once per N,
each into a fresh folder, in this process, after a one-video warm-up. Reported per N: the run's frames/s over its wall
time, its peak memory (GPU: max allocated; CPU: peak resident set), and whether every mask
equals N = 1's.

    python -m scripts.videos_per_device --device cuda [--counts 1 2 4 8] [--videos 8] [--frames 30]
Results: ``<output>/videos_per_device.json`` (with the machine stamp); ``scripts.gpu_check``
runs it on a GPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from datasets.eval_datasets import davis_videos
from datasets.synthetic import SyntheticConfig, generate
from evaluation.run import evaluate
from evaluation.sinks import DavisScores
from scripts.benchmarking import REPO, benchmark_network
from util import cli
from util.atomic import atomic_save
from util.configuration import InferenceConfig
from util.log import get_logger
from util.stamp import machine_stamp

logger = get_logger(__name__)


def parser() -> argparse.ArgumentParser:
    p = cli.argument_parser(__doc__)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4, 8], help="the N to measure")
    p.add_argument("--videos", type=int, default=8)
    p.add_argument("--frames", type=int, default=30, help="frames per video")
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=854)
    p.add_argument("--output", type=Path, default=REPO / "output" / "videos_per_device")
    return p


def same_masks(folder: Path, reference: Path) -> bool:
    pngs = sorted(p.relative_to(reference) for p in reference.glob("*/*.png"))
    return bool(pngs) and all(
        (folder / png).is_file()
        and np.array_equal(np.array(Image.open(folder / png)), np.array(Image.open(reference / png)))
        for png in pngs
    )


def measure(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    data = generate(
        SyntheticConfig(
            args.output / "data",
            seed=7,
            height=args.height,
            width=args.width,
            frames=args.frames,
            train_videos=1,
            val_videos=args.videos,
            static_images=1,
        )
    )
    root = data / "DAVIS" / "2017" / "trainval"
    network = benchmark_network(device)
    report = {
        "stamp": machine_stamp(device.type, torch.get_num_threads()),
        "weights": "synthetic (model/synthetic_weights.py)",
        "videos": args.videos,
        "frames_per_video": args.frames,
        "size": [args.height, args.width],
        "rows": [],
    }
    videos, palette = davis_videos(root, root / "ImageSets" / "2017" / "val.txt")
    # warm-up (oneDNN primitives, cuDNN's choices), so that the first N measured pays none
    shutil.rmtree(args.output / "runs", ignore_errors=True)
    evaluate(network, videos[:1], args.output / "runs" / "warm_up", InferenceConfig(), DavisScores(palette))
    first = None
    for index, count in enumerate(args.counts):
        out = args.output / "runs" / f"{index}_n{count}"
        videos, palette = davis_videos(root, root / "ImageSets" / "2017" / "val.txt")
        stats = evaluate(network, videos, out, InferenceConfig(), DavisScores(palette), videos_per_device=count)
        first = first or out
        row = {
            "videos_per_device": count,
            "frames": stats["frames"],
            "wall_seconds": stats["wall_seconds"],
            "throughput_fps": stats["throughput_fps"],
            "peak_memory_mb": stats["peak_memory_mb"],
            "masks_equal_to_first": same_masks(out, first),
        }
        logger.info(f"videos_per_device {count}: {row}")
        report["rows"].append(row)
    return report


def main(argv: list[str] | None = None) -> dict:
    args = parser().parse_args(argv)
    report = measure(args)
    atomic_save(lambda tmp: tmp.write_text(json.dumps(report, indent=1)), args.output / "videos_per_device.json")
    return report


if __name__ == "__main__":
    cli.run(main)
