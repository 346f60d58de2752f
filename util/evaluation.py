"""The one evaluation loop behind eval_davis.py, eval_davis_2016.py, eval_youtube.py and
eval_generic.py: frames stream from a reader through the engine into PNGs.

Each video is written into a hidden temporary folder and moved into place when complete,
so an interrupted run never leaves a folder that looks finished; a rerun skips finished
videos (``--overwrite`` recomputes them). Frames/s and peak memory are printed and written
to ``eval_stats.json``; with ground truth, J&F to ``jf_results.json``.
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from tqdm import tqdm

from datasets.eval_datasets import EvalVideo, resize_short_side
from inference_core import InferenceCore, output_prob
from model.checkpoint import load_network_file
from util.errors import GSFMError
from model.network import GSFM
from util.atomic import atomic_save, check_writable, publish_dir
from util.metrics import evaluate_folders, format_results
from util.palette import write_indexed_png


@dataclass
class EvalSettings:
    top_k: int = 50
    mem_every: int = 3
    include_last: bool = False
    amp: bool = False
    overwrite: bool = False
    binary_output: bool = False  # DAVIS 2016: 0/255 greyscale instead of palette PNGs
    # options that change outputs (off by default)
    max_memory_frames: int | None = None
    max_size: int | None = None


def add_common_args(parser: argparse.ArgumentParser, top_k: int = 50) -> None:
    parser.add_argument("--model", required=True, help="network weights (.pth)")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--top", type=int, default=top_k, help="top-k memory entries per query pixel")
    parser.add_argument("--mem_every", type=int, default=3, help="a permanent memory frame every N frames")
    parser.add_argument("--include_last", action="store_true", help="also keep the last frame as temporary memory")
    parser.add_argument("--amp", action="store_true",
                        help="autocast: float16 on CUDA as the reference; bfloat16 on CPU (changes numerics)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--overwrite", action="store_true", help="recompute videos already in the output folder")
    parser.add_argument("--max_memory_frames", type=int, help="bounded memory: keep the first frame and the most "
                        "recent N-1 memory frames (changes outputs; memory stays flat on long videos)")
    parser.add_argument("--max_size", type=int, help="internal resolution cap: downscale frames whose short side "
                        "exceeds this before the network, upscale the masks back (changes outputs; faster)")


def settings_from_args(args: argparse.Namespace, **extra) -> EvalSettings:
    if args.top < 1:
        raise SystemExit(f"error: --top must be >= 1, got {args.top}")
    if args.mem_every < 1:
        raise SystemExit(f"error: --mem_every must be >= 1, got {args.mem_every}")
    if args.max_memory_frames is not None and args.max_memory_frames < 2:
        raise SystemExit(f"error: --max_memory_frames must be >= 2, got {args.max_memory_frames}")
    if args.max_size is not None and args.max_size < 16:
        raise SystemExit(f"error: --max_size must be >= 16, got {args.max_size}")
    return EvalSettings(args.top, args.mem_every, args.include_last, args.amp, args.overwrite, **extra,
                        max_memory_frames=args.max_memory_frames, max_size=args.max_size)


def load_eval_network(path: str | Path, device: torch.device) -> GSFM:
    network = GSFM(single_object=False)
    report = load_network_file(network, path, for_training=False)
    if report.kind != "gsfm":
        print(f"{path}: {report.describe()}", file=sys.stderr)
    return network.to(device).eval()


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _writer(settings: EvalSettings, palette: list[int]) -> Callable[[np.ndarray, Path], None]:
    if settings.binary_output:
        return lambda labels, path: Image.fromarray(((labels > 0) * 255).astype(np.uint8), mode="L").save(path)
    return lambda labels, path: write_indexed_png(labels, palette, path)


def segment_video(network: GSFM, video: EvalVideo, settings: EvalSettings, device: torch.device,
                  on_mask: Callable[[int, str, np.ndarray], None],
                  on_prob: Callable[[int, torch.Tensor], None] | None = None) -> int:
    """Propagate through one video, calling ``on_mask(index, frame name, labels)`` for each
    frame the benchmark wants (and ``on_prob(index, (K+1, H, W) probabilities)`` at the
    output size, when given). Returns the number of frames the network processed."""
    core = InferenceCore(network, video.num_objects, settings.top_k, settings.mem_every, settings.include_last,
                         video.required_frames, video.num_frames, settings.max_memory_frames)
    processed = 0
    autocast_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    for frame in tqdm(video.read_frames(), total=video.num_frames, desc=video.name, unit="frame", leave=False):
        image, mask = frame.image, frame.mask
        if settings.max_size is not None and min(image.shape[-2:]) > settings.max_size:
            image = resize_short_side(image, settings.max_size, InterpolationMode.BILINEAR)
            mask = None if mask is None else resize_short_side(mask, settings.max_size, InterpolationMode.NEAREST)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=settings.amp):
            mask = None if mask is None else mask.to(device)
            prob = core.step(image.to(device), mask, frame.new_objects, end=frame.index == video.num_frames - 1)
        if prob is not None:
            processed += 1
        if frame.write:
            if prob is None:  # skipped frame: the reference's untouched initial probabilities, unpadded
                prob, pad = core.initial_prob(image.shape[-2:], device), (0, 0, 0, 0)
            else:
                pad = core.pad
            prob = output_prob(prob.float(), pad, video.output_size)
            if on_prob is not None:
                on_prob(frame.index, prob[:, 0])
            indices = torch.argmax(prob[:, 0], dim=0).to(torch.uint8).cpu().numpy()
            on_mask(frame.index, frame.name, video.mapping.to_labels(indices))
    return processed


def run_evaluation(network: GSFM, videos: list[EvalVideo], palette: list[int], out_root: Path,
                   settings: EvalSettings, device: torch.device, masks_subdir: str = "") -> dict:
    """Segment every video into ``out_root/masks_subdir/<video>/<frame>.png``; returns stats."""
    check_writable(out_root)
    mask_root = out_root / masks_subdir
    write = _writer(settings, palette)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    total_frames, total_time, done, skipped = 0, 0.0, 0, 0
    progress = tqdm(videos, desc="videos", unit="video")
    for video in progress:
        final_dir = mask_root / video.name
        if final_dir.is_dir() and not settings.overwrite:
            skipped += 1
            continue
        tmp_dir = mask_root / f".tmp_{video.name}"
        shutil.rmtree(tmp_dir, ignore_errors=True)
        tmp_dir.mkdir(parents=True)
        progress.set_postfix(video=video.name)
        _sync(device)
        start = time.perf_counter()
        frames = segment_video(network, video, settings, device,
                               lambda i, name, labels: write(labels, tmp_dir / f"{name}.png"))
        _sync(device)
        total_time += time.perf_counter() - start
        total_frames += frames
        publish_dir(tmp_dir, final_dir)
        done += 1
    stats = {"videos_processed": done, "videos_skipped": skipped, "frames": total_frames,
             "seconds": round(total_time, 3), "fps": round(total_frames / total_time, 3) if total_time else None,
             "peak_memory_mb": round(peak_memory_mb(device), 1), "device": str(device),
             "settings": settings.__dict__}
    print(f"{done} videos ({skipped} already done), {total_frames} frames, "
          f"{stats['fps']} frames/s, peak memory {stats['peak_memory_mb']} MB ({device})")
    atomic_save(lambda tmp: tmp.write_text(json.dumps(stats, indent=1)), out_root / "eval_stats.json")
    return stats


def score_if_ground_truth(videos: list[EvalVideo], out_root: Path, binary: bool = False) -> dict | None:
    """J&F when every video has full ground truth (DAVIS val); written to jf_results.json."""
    if not videos or any(v.gt_dir is None for v in videos):
        return None
    gt_root = videos[0].gt_dir.parent
    results = evaluate_folders(out_root, gt_root, [v.name for v in videos], binary)
    print(format_results(results))
    atomic_save(lambda tmp: tmp.write_text(json.dumps(results, indent=1)), out_root / "jf_results.json")
    return results


def cli_main(main: Callable[[], None]) -> None:
    """Run a script's main with one-line errors for bad data, checkpoints and arguments."""
    try:
        main()
    except (GSFMError, OSError) as e:  # OSError: missing files, disk full
        sys.exit(f"error: {e}")
