"""Evaluate on MOSE, MOSE v2, LVOS v1/v2, VOST or SA-V, each read as downloaded, run by
its protocol, written in the layout its evaluator or server reads and, where the ground
truth is on disk, scored as its official tool scores it (<output>/scores.json).

    python eval_benchmark.py --benchmark lvos --data_path data/LVOS --model saves/gsfm.pth --output out/lvos
    torchrun --nproc_per_node=4 eval_benchmark.py ...     # the videos shared among 4 processes

Each benchmark's rules are one entry of datasets/benchmarks.py; docs/BENCHMARKS.md has each
one's layout, protocol, metrics and where to submit.
"""

import argparse
from pathlib import Path

from datasets.benchmarks import BENCHMARKS, BenchmarkSet
from datasets.eval_datasets import EvalVideo
from evaluation.report import write_scores
from evaluation.run import add_common_args, evaluate_from_arguments
from evaluation.scoring import benchmark_target
from evaluation.sinks import IndexedPngs, write_zip
from evaluation.video import FrameOutput
from util import cli
from util.errors import ConfigError
from util.log import get_logger
from util.palette import write_binary_png

logger = get_logger(__name__)


class BenchmarkOutputs(IndexedPngs):
    """``<video>/<frame>.png`` label maps (the dataset's palette), or for SA-V one 0/255 PNG
    per object folder of the ground truth (``<video>/<object>/<frame>.png``); at the end
    ``submission.zip`` of the video folders for a server, and ``scores.json`` where the
    ground truth is on disk, with report.html (``evaluation.report.write_scores``, as
    score.py writes them: the official metric names and units; nan as null)."""

    def __init__(self, name: str, data: BenchmarkSet, root: Path, split: str):
        super().__init__(data.palette)
        self.name, self.benchmark, self.data, self.root, self.split = name, BENCHMARKS[name], data, root, split

    def write(self, video: EvalVideo, frame: FrameOutput, folder: Path) -> None:
        if not self.benchmark.per_object_png:
            super().write(video, frame, folder)
            return
        for obj, name in video.object_dirs.items():
            write_binary_png(frame.labels == obj, folder / name / f"{frame.name}.png")

    def finish(self, videos: list[EvalVideo], out_root: Path) -> None:
        if self.benchmark.submission_zip:
            write_zip(out_root, self.masks_subdir)
        if self.data.score is None:
            logger.info(f"no ground truth on disk: {self.benchmark.submit}")
            return
        target = benchmark_target(self.name, self.data, self.root, self.split)
        _, scores = write_scores(target, out_root / self.masks_subdir, out_root, "outputs")
        logger.info("  ".join(f"{k} {_number(v)}" for k, v in scores["overall"].items()))
        logger.info(f"scores ({scores['units']}): {out_root / 'scores.json'}; report: {out_root / 'report.html'}")


def _number(value: float | None) -> str:
    return "null" if value is None else f"{value:.4f}"


def parser() -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:7} {b.summary} (splits: {', '.join(b.splits)})" for name, b in BENCHMARKS.items())
    p = cli.argument_parser(__doc__, epilog="benchmarks:\n" + listing)
    add_common_args(p)
    p.add_argument("--benchmark", required=True, choices=sorted(BENCHMARKS), help="see the list below")
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
    benchmark = BENCHMARKS[args.benchmark]
    split = args.split or benchmark.splits[0]
    if split not in benchmark.splits:
        raise ConfigError(f"--split {split}: {args.benchmark} has the splits {', '.join(benchmark.splits)}")
    size = benchmark.short_side if args.size is None else (None if args.size < 0 else args.size)
    data = benchmark.read(args.data_path, split, args.dense_frames)
    protocol = {"benchmark": args.benchmark, "split": split, "dense_frames": args.dense_frames}
    evaluate_from_arguments(
        args, data.videos, BenchmarkOutputs(args.benchmark, data, args.data_path, split), protocol, short_side=size
    )


if __name__ == "__main__":
    cli.run(main)
