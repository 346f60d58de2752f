"""What a long video (LVOS: minutes, thousands of frames) needs in memory.

The engine keeps nothing between frames but the memory bank: per memory frame, one key
(64 channels) and one value per object (512 channels), float32, at 1/16 of the padded
frame size; a permanent memory frame every ``mem_every`` (3) frames, plus the first and a
temporary one. The bank is reserved once for the video's schedule (``InferenceCore(
num_frames=...)``) and its pages are only touched (resident) as frames are written.

This script computes the bank of a 1-object 854x480 video of ``--length`` frames (3000)
with the default settings and with ``--max_memory_frames``, and checks the arithmetic on a
short run: ``--frames`` frames of a generated 854x480 video streamed from disk through
``InferenceCore`` (deterministic synthetic weights, default settings): the bank the engine
allocates equals the formula for that length, and the resident memory does not grow from
frame to frame once the first frame has been segmented but by the bank's pages as memory
frames fill them (it holds the weights, the libraries, one frame's working buffers and the
bank). The engine reserves the bank uninitialised (at the first memory write), so only the
part already written is resident. ``scripts.render_docs`` renders the report into
docs/BENCHMARKS.md.

    python -m scripts.long_video_memory [--frames 9] [--output docs/results/long_video_memory_cpu.json]
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch

from datasets.eval_datasets import generic_video
from inference_core import InferenceCore
from model.network import KEY_DIM, STRIDE, VALUE_DIM
from scripts.benchmarking import benchmark_network, make_benchmark_video
from util import cli
from util.atomic import atomic_save
from util.configuration import InferenceConfig
from util.log import get_logger
from util.memory import current_memory_mb
from util.stamp import describe, machine_stamp

logger = get_logger(__name__)

HEIGHT, WIDTH = 480, 854
BYTES = 4  # float32


def bank_positions(height: int, width: int) -> int:
    """Memory positions of one frame: the padded frame at 1/16."""
    return math.ceil(height / STRIDE) * math.ceil(width / STRIDE)


def bank_frames(length: int, config: InferenceConfig) -> int:
    """Frames the bank holds at the end of a video (the engine's reservation): every
    mem_every-th, the first, a temporary one; with --max_memory_frames N, N + 2."""
    frames = length // config.mem_every + 2
    return frames if config.max_memory_frames is None else min(frames, config.max_memory_frames + 2)


def bank_bytes(length: int, objects: int, config: InferenceConfig, height: int = HEIGHT, width: int = WIDTH) -> int:
    return bank_frames(length, config) * bank_positions(height, width) * (KEY_DIM + objects * VALUE_DIM) * BYTES


def measure(network, video_dir: Path, frames: int, config: InferenceConfig) -> dict:
    """Stream ``frames`` frames; the resident memory after each."""
    video, _ = generic_video(video_dir / "frames", video_dir / "first.png")
    core = InferenceCore(network, config, video.object_ids, num_frames=frames)
    cpu = torch.device("cpu")
    rss, started = [], time.perf_counter()
    for frame in video.read():
        core.step(frame.rgb, frame.labels, end=frame.index == frames - 1)
        rss.append(current_memory_mb(cpu))
    seconds = time.perf_counter() - started
    allocated = (core.memory._keys.nbytes + core.memory._values.nbytes) / 2**20
    return {
        "settings": {"mem_every": config.mem_every, "max_memory_frames": config.max_memory_frames},
        "frames": len(rss),
        "seconds_per_frame": round(seconds / len(rss), 2),
        "bank_allocated_mb": round(allocated, 1),
        "bank_formula_mb": round(bank_bytes(frames, len(video.object_ids), config) / 2**20, 1),
        "rss_mb": [round(r, 1) for r in rss],
        "rss_min_mb": round(min(rss), 1),
        "rss_max_mb": round(max(rss), 1),
        "rss_growth_after_second_frame_mb": round(rss[-1] - rss[1], 1),
    }


def main(argv: list[str] | None = None) -> dict:
    p = cli.argument_parser(__doc__)
    p.add_argument("--length", type=int, default=3000, help="the long video's frames (the formula's)")
    p.add_argument("--frames", type=int, default=9, help="frames of the check run")
    p.add_argument("--max_memory_frames", type=int, nargs="+", default=[10, 50])
    p.add_argument("--work", type=Path, default=Path("output/long_video_memory"), help="generated video")
    p.add_argument("--output", type=Path, default=Path("docs/results/long_video_memory_cpu.json"))
    args = p.parse_args(argv)
    torch.set_grad_enabled(False)
    configs = [InferenceConfig()] + [InferenceConfig(max_memory_frames=n) for n in args.max_memory_frames]
    formula = [
        {
            "max_memory_frames": c.max_memory_frames,
            "bank_frames": bank_frames(args.length, c),
            "bank_mb": round(bank_bytes(args.length, 1, c) / 2**20, 1),
        }
        for c in configs
    ]
    network = benchmark_network(torch.device("cpu"))
    video_dir = make_benchmark_video(args.work, args.frames, 1, HEIGHT, WIDTH)
    check = measure(network, video_dir, args.frames, configs[0])
    report = {
        "stamp": machine_stamp("cpu"),
        "video": f"{WIDTH}x{HEIGHT}, 1 object, {args.length} frames",
        "positions_per_frame": bank_positions(HEIGHT, WIDTH),
        "bytes_per_position": (KEY_DIM + VALUE_DIM) * BYTES,
        "formula": formula,
        "check": check,
    }
    atomic_save(lambda tmp: tmp.write_text(json.dumps(report, indent=1)), args.output)
    logger.info(f"{report['video']} ({describe(report['stamp'])}):")
    for row in formula:
        logger.info(
            f"  max_memory_frames={row['max_memory_frames']}: {row['bank_frames']} bank frames, {row['bank_mb']} MB"
        )
    logger.info(
        f"  check, {check['frames']} frames: bank allocated {check['bank_allocated_mb']} MB (formula "
        f"{check['bank_formula_mb']}), resident {check['rss_min_mb']}-{check['rss_max_mb']} MB, growth after the "
        f"second frame (the first segmented one) {check['rss_growth_after_second_frame_mb']} MB, "
        f"{check['seconds_per_frame']} s/frame"
    )
    return report


if __name__ == "__main__":
    cli.run(main)
