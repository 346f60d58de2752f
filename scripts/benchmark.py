"""Speed and memory benchmark: this implementation against the reference's formulation.

Inference: a synthetic 854x480 video (``--frames``, ``--objects``) is written once under
``<output>/videos/``; each implementation then runs in its own process (so peak memory is
its own) with fixed deterministic weights and the default settings (top 50, mem_every 3):
- ``engine``: the evaluation scripts' path (frames streamed from disk through
  ``evaluation.video.segment_video`` and ``InferenceCore.step`` into PNGs);
- ``oracle``: ``reference/inference.py``, the reference's DAVIS inference (whole video in
  memory, concatenated memory, dense top-k affinity, boundary head computed).
Reported: frames/s, per-stage seconds (key encoding, memory read, decoding, value encoding,
writing; the device synchronised around each), peak memory while the video is processed
(peak RSS on CPU, max allocated on CUDA; from when the weights are loaded) and the working
memory (that peak minus what was in use then: libraries and weights, which both share),
the agreement of the two outputs, and the arithmetic: GFLOP per frame (convolutions and
dense matrix products, counted with torch.utils.flop_counter over the first frames), this
machine's measured throughput on the decoder's dominant convolution, and the fraction of it
each implementation reaches.

Mixed precision (``--amp``): this implementation also runs with ``--amp`` in the plain
(NCHW) layout (``engine_amp_nchw``) and in channels-last (``engine_amp``, what ``--amp``
does), each with the agreement of its masks with float32; the precisions and layouts are
also timed on their own: the decoder's 3x3 convolution and the key encoder on one padded
frame, in float32 and autocast, NCHW and channels-last. ``--amp`` here insists on bfloat16
on a CPU without bfloat16 instructions (it measures what was asked; the report lists the
CPU's instruction sets).

Training (``--train``): seconds per optimisation step at ``--crop`` (384 as the reference)
for each ``--train_batch``, with AMP on CUDA as the reference trains:
``model.train_forward.clip_forward`` on ``GSFM`` against the reference's training verbs
(``reference/training.py``).

    python -m scripts.benchmark                      # 60 frames, 1 and 3 objects, + oracle
    python -m scripts.benchmark --frames 60 200 --train
Results: a table on the console, ``<output>/benchmark.json`` and ``<output>/benchmark.md``.
The measuring is ``scripts/benchmarking.py``'s, the tables ``scripts/benchmark_report.py``'s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from scripts.benchmark_report import log_row, markdown
from scripts.benchmarking import (
    AMP_ROLES,
    REPO,
    compare,
    make_benchmark_video,
    measure,
    use_process_time,
)
from util import cli
from util.atomic import atomic_save
from util.errors import ConfigError
from util.log import get_logger
from util.precision import cpu_bfloat16_instructions
from util.stamp import machine_stamp

logger = get_logger(__name__)


def worker(args: argparse.Namespace) -> None:
    """One role in this process; its figures into ``--result``."""
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.cpu_time:
        use_process_time()
    result = Path(args.result)
    figures = measure(
        args.worker,
        torch.device(args.device),
        video=Path(args.video) if args.video else None,
        out_dir=result.parent / "masks",
        amp=args.amp,
        height=args.height,
        width=args.width,
        batch=args.train_batch[0],
        crop=args.crop,
        iterations=args.iterations,
    )
    result.write_text(json.dumps(figures))


def launch(args: argparse.Namespace, role: str, result: Path, extra: list[str]) -> dict:
    """``role`` in a process of its own (so that its peak memory is its own)."""
    if args.reuse and result.exists():
        logger.info(f"  reusing {result}")
        return json.loads(result.read_text())
    result.parent.mkdir(parents=True, exist_ok=True)
    cmd = (
        [sys.executable, "-m", "scripts.benchmark", "--worker", role, "--result", str(result)]
        + ["--device", args.device, "--threads", str(args.threads)]
        + (["--cpu_time"] if args.cpu_time else [])
        + extra
    )
    logger.info(f"  running {role} {' '.join(extra)}")
    subprocess.run(cmd, check=True, cwd=REPO)
    return json.loads(result.read_text())


def parser() -> argparse.ArgumentParser:
    p = cli.argument_parser(__doc__)
    p.add_argument("--frames", type=int, nargs="+", default=[60])
    p.add_argument("--objects", type=int, nargs="+", default=[1, 3])
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=854)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument(
        "--cpu_time",
        action="store_true",
        help="time in CPU seconds of the measuring process instead of "
        "wall seconds (CPU only): on a busy shared machine, with --threads 1, close to what a quiet one's "
        "wall clock shows, as the other processes' load stretches wall time, not CPU time",
    )
    p.add_argument("--no_oracle", action="store_true", help="only this implementation")
    p.add_argument(
        "--amp",
        action="store_true",
        help="also this implementation with --amp (bfloat16 autocast on "
        "CPU, float16 on CUDA: changes outputs; agreement reported)",
    )
    p.add_argument("--no_inference", action="store_true", help="skip the inference benchmark")
    p.add_argument("--train", action="store_true", help="also the training-step benchmark")
    p.add_argument("--train_batch", type=int, nargs="+", default=[1, 4])
    p.add_argument("--crop", type=int, default=384)
    p.add_argument("--iterations", type=int, default=3, help="timed training iterations (after 1 warm-up)")
    p.add_argument("--output", default=str(REPO / "output" / "benchmark"))
    p.add_argument(
        "--reuse",
        action="store_true",
        help="reuse finished runs found in --output (delete a run's folder under runs/ to redo it)",
    )
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--video", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> dict:
    args = parser().parse_args(argv)
    if args.cpu_time and args.device != "cpu":
        raise ConfigError("--cpu_time measures CPU work: --device cpu only")
    if args.worker:
        worker(args)
        return {}
    out = Path(args.output)
    stamp = machine_stamp(args.device, args.threads)
    report = {
        "device": args.device,
        "device_name": stamp["gpu"] or stamp["cpu"],
        "torch": torch.__version__,
        "threads": stamp["threads"],
        "stamp": stamp,
        "clock": "process CPU time" if args.cpu_time else "wall",
        "cpu_bfloat16_instructions": cpu_bfloat16_instructions(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "weights": "synthetic (model/synthetic_weights.py)",
        "inference": [],
        "training": [],
    }
    size = ["--height", str(args.height), "--width", str(args.width)]
    report.update(launch(args, "throughput", out / "runs" / "throughput.json", size + (["--amp"] if args.amp else [])))
    roles = ["engine"] if args.no_oracle else ["engine", "oracle"]
    for frames in [] if args.no_inference else args.frames:
        for objects in args.objects:
            video = make_benchmark_video(out / "videos", frames, objects, args.height, args.width)
            row = {"frames": frames, "objects": objects}
            video_roles = roles + (list(AMP_ROLES) if args.amp else [])
            for role in video_roles:
                row[role] = launch(
                    args, role, out / "runs" / f"{video.name}_{role}" / "result.json", ["--video", str(video)]
                )
            compare(row, out / "runs", video.name, report["conv_gflops"])
            report["inference"].append(row)
            log_row(row)
    for batch in args.train_batch if args.train else []:
        row = {"batch": batch, "crop": args.crop}
        for role in roles:
            row[role] = launch(
                args,
                f"train_{role}",
                out / "runs" / f"train_b{batch}_{role}.json",
                ["--train_batch", str(batch), "--crop", str(args.crop), "--iterations", str(args.iterations)],
            )
        if "oracle" in row:
            row["speedup"] = round(row["oracle"]["seconds_per_iteration"] / row["engine"]["seconds_per_iteration"], 2)
        report["training"].append(row)
        logger.info(json.dumps(row))
    out.mkdir(parents=True, exist_ok=True)
    atomic_save(lambda tmp: tmp.write_text(json.dumps(report, indent=1)), out / "benchmark.json")
    atomic_save(lambda tmp: tmp.write_text(markdown(report)), out / "benchmark.md")
    logger.info(f"written: {out / 'benchmark.json'}, {out / 'benchmark.md'}")
    return report


def runs_the_reference(argv: list[str]) -> bool:
    """Whether this process is a worker of one of the reference's roles (``oracle``,
    ``train_oracle``)."""
    return "--worker" in argv[:-1] and argv[argv.index("--worker") + 1].endswith("oracle")


if __name__ == "__main__":
    # the reference's roles with the C library's allocator as it is by default, as the reference's code runs
    cli.run(main, keep_freed_memory=not runs_the_reference(sys.argv))
