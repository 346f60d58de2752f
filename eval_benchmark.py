"""Evaluate on MOSE, MOSE v2, LVOS v1/v2, VOST or SA-V, each read as downloaded, run by
its protocol, written in the layout its evaluator or server reads and, where the ground
truth is on disk, scored as its official tool scores it (<output>/scores.json).

    python eval_benchmark.py --benchmark lvos --data_path data/LVOS --split valid --model saves/gsfm.pth --output out/lvos
    torchrun --nproc_per_node=4 eval_benchmark.py ...     # the videos shared among 4 processes

See docs/BENCHMARKS.md for each benchmark's layout, protocol, metrics and where to submit.
"""
import argparse
from pathlib import Path

from datasets.benchmarks import BENCHMARKS, BenchmarkSink
from evaluation.run import add_common_args, evaluate, inference_config, start
from util import cli
from util.errors import ConfigError


def parser() -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:7} {b.summary} (splits: {', '.join(b.splits)})" for name, b in BENCHMARKS.items())
    p = argparse.ArgumentParser(description=__doc__, epilog="benchmarks:\n" + listing,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("--benchmark", required=True, choices=sorted(BENCHMARKS), help="see the list below")
    p.add_argument("--data_path", required=True, type=Path, help="the benchmark's folder, as downloaded")
    p.add_argument("--split", help="default: the benchmark's first split (its validation set)")
    p.add_argument("--size", type=int, help="short side the frames are resized to for the network (-1: keep; "
                   "default: the benchmark's, 480); masks are written at the original size")
    p.add_argument("--dense_frames", action="store_true", help="VOST: infer on JPEGImages_10fps, write and score "
                   "the 5 fps frames")
    return p


def main(argv=None) -> None:
    args = parser().parse_args(argv)
    benchmark = BENCHMARKS[args.benchmark]
    split = args.split or benchmark.splits[0]
    if split not in benchmark.splits:
        raise ConfigError(f"--split {split}: {args.benchmark} has the splits {', '.join(benchmark.splits)}")
    size = benchmark.short_side if args.size is None else (None if args.size < 0 else args.size)
    config = inference_config(args, short_side=size)
    data = benchmark.read(args.data_path, split, args.dense_frames)
    processes, network = start(args)
    evaluate(network, data.videos, args.output, config, processes, BenchmarkSink(benchmark, data),
             overwrite=args.overwrite)


if __name__ == "__main__":
    cli.run(main)
