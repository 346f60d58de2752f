"""Evaluate on MOSE, MOSE v2, LVOS v1/v2, VOST or SA-V, each read as downloaded, run by
its protocol, written in the layout its evaluator or server reads and, where the ground
truth is on disk, scored as its official tool scores it (<output>/scores.json).

    python eval_benchmark.py --benchmark lvos --data_path data/LVOS --model saves/gsfm.pth --output out/lvos
    torchrun --nproc_per_node=4 eval_benchmark.py ...     # the videos shared among 4 processes

Each benchmark's rules are one entry of benchmarks/registry.py; docs/BENCHMARKS.md has each
one's layout, protocol, metrics and where to submit.
"""

import argparse
from pathlib import Path

from benchmarks.registry import BENCHMARKS, run_benchmark
from evaluation.run import add_common_args
from util import cli

# the benchmarks this command runs (DAVIS and YouTube-VOS have their own, with their options)
NAMES = [name for name, b in BENCHMARKS.items() if b.command == "eval_benchmark.py"]


def parser() -> argparse.ArgumentParser:
    listing = "\n".join(
        f"  {name:7} {BENCHMARKS[name].summary} (splits: {', '.join(BENCHMARKS[name].splits)})" for name in NAMES
    )
    p = cli.argument_parser(__doc__, epilog="benchmarks:\n" + listing)
    add_common_args(p)
    p.add_argument("--benchmark", required=True, choices=sorted(NAMES), help="see the list below")
    p.add_argument("--data_path", required=True, type=Path, help="the benchmark's folder, as downloaded")
    p.add_argument("--split", help="default: the benchmark's first split (its validation set)")
    p.add_argument(
        "--size",
        type=int,
        help="short side the frames are resized to for the network (-1: keep; "
        "default: the benchmark's, 480); masks are written at the original size",
    )
    p.add_argument(
        "--dense_frames", action="store_true", help="VOST: infer on JPEGImages_10fps, write and score the 5 fps frames"
    )
    return p


def main(argv=None) -> None:
    args = parser().parse_args(argv)
    short_side = BENCHMARKS[args.benchmark].short_side if args.size is None else (None if args.size < 0 else args.size)
    run_benchmark(
        args,
        args.benchmark,
        args.data_path,
        args.split,
        {"short_side": short_side},
        dense_frames=args.dense_frames,
    )


if __name__ == "__main__":
    cli.run(main)
