"""Score any method's masks on a benchmark, with 95% intervals, and compare two methods.

    python score.py --benchmark davis2017 --data_path data/DAVIS/2017 --predictions out/mine --output out/scores
    python score.py --benchmark lvos --data_path data/LVOS --predictions a.zip --compare b/ --names A,B --output out/ab

Writes OUTPUT/scores.json (overall in the official tool's names and units, ci95, per_video,
per_object), OUTPUT/report.html (self-contained, opens offline) and, with --compare,
OUTPUT/comparison.json (B - A: paired bootstrap interval, sign-flip p-value, wins per
video). Predictions: a folder or a zip, in the layout the benchmark's tool or server reads
(SA-V: one binary PNG per object). docs/SCORING.md has the details.
"""

import argparse
import json
from contextlib import ExitStack
from pathlib import Path

from benchmarks.registry import load_target
from evaluation.report import write_report
from evaluation.scoring import (
    METRICS,
    comparison_json,
    find_videos,
    prediction_folder,
    require_all,
    scores_json,
)
from evaluation.scoring import score as score_videos
from util import cli
from util.atomic import atomic_save
from util.errors import ConfigError, DatasetError
from util.log import get_logger

logger = get_logger(__name__)


def parser() -> argparse.ArgumentParser:
    p = cli.argument_parser(__doc__)
    p.add_argument("--benchmark", required=True, choices=list(METRICS))
    p.add_argument(
        "--data_path",
        required=True,
        type=Path,
        help="davis2017/davis2016: as eval_davis.py's --davis_path; the others: as eval_benchmark.py's --data_path",
    )
    p.add_argument("--split", help="default: the benchmark's validation split")
    p.add_argument("--predictions", required=True, type=Path, help="folder or zip of the method's masks")
    p.add_argument("--compare", type=Path, help="a second method's masks (folder or zip): B in B - A")
    p.add_argument("--names", help="A,B: the methods' names in the report (default: the folder names)")
    p.add_argument("--output", required=True, type=Path, help="folder for scores.json, report.html, comparison.json")
    p.add_argument("--bootstrap", type=int, default=1000, help="resamples for the intervals and the test")
    p.add_argument("--seed", type=int, default=0, help="seed of the resampling")
    p.add_argument("--processes", type=int, default=1, help="processes that score videos in parallel")
    return p


def main(argv=None) -> None:
    args = parser().parse_args(argv)
    if args.bootstrap < 100 or args.processes < 1:
        raise ConfigError("--bootstrap must be at least 100 and --processes at least 1")
    sources = [args.predictions] + ([args.compare] if args.compare else [])
    names = args.names.split(",") if args.names else [p.stem for p in sources]
    if not args.names and len(set(names)) < len(names):  # e.g. two folders both called "masks"
        names = ["A", "B"]
    if len(names) != len(sources) or len(set(names)) != len(names):
        raise ConfigError(f"--names {args.names}: one distinct name per predictions folder ({len(sources)})")
    target = load_target(args.benchmark, args.data_path, args.split)
    with ExitStack() as stack:
        located = [find_videos(target, stack.enter_context(prediction_folder(source))) for source in sources]
        if len(located) == 2 and located[0][1] != located[1][1]:
            a, b = located[0][1], located[1][1]
            raise DatasetError(
                f"{sources[0]} and {sources[1]} do not hold the same videos: only in {names[0]}: "
                f"{', '.join(sorted(a - b)) or 'none'}; only in {names[1]}: {', '.join(sorted(b - a)) or 'none'}"
            )
        for source, (_, present) in zip(sources, located):
            require_all(target, source, present)
        runs = [score_videos(target, folder, args.processes, name) for (folder, _), name in zip(located, names)]
        results = [scores_json(run, args.bootstrap, args.seed) for run in runs]
        comparison = comparison_json(*runs, tuple(names), args.bootstrap, args.seed) if len(runs) == 2 else None
        # every score is computed before anything is written: no partial result on disk
        out = args.output
        atomic_save(lambda tmp: tmp.write_text(json.dumps(results[0], indent=1)), out / "scores.json")
        if comparison:
            atomic_save(lambda tmp: tmp.write_text(json.dumps(comparison, indent=1)), out / "comparison.json")
            atomic_save(lambda tmp: tmp.write_text(json.dumps(results[1], indent=1)), out / "scores_b.json")
        write_report(out / "report.html", runs, results, names, comparison)
    for name, result in zip(names, results):
        logger.info(
            f"{name}: "
            + "  ".join(
                f"{m} {v:.4f} [{lo:.4f}, {hi:.4f}]"
                for m, v in result["overall"].items()
                for lo, hi in [result["ci95"][m]]
                if None not in (v, lo, hi)
            )
        )
    logger.info(f"scores: {out / 'scores.json'}; report: {out / 'report.html'}")


if __name__ == "__main__":
    cli.run(main)
