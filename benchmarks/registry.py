"""Every evaluation in one registry, ``BENCHMARKS``: each entry holds its reader (the
download's layout and what the engine receives, ``benchmarks.readers``, YouTube-VOS's in
``inference_core_yv``), its protocol (the settings it adds, recorded with the results), its
sink (``evaluation.sinks``: the layout its evaluator or server reads) and its scorer (the
reader binds ``benchmarks.scoring``'s to the ground truth; DAVIS's J&F, ``util.metrics``, is
its sink's). The eval scripts are thin adapters: their options, then ``run_benchmark``.
Adding a benchmark is one reader and one entry.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import inference_core_yv
from benchmarks.readers import (
    BenchmarkSet,
    read_davis2016,
    read_davis2017,
    read_lvos,
    read_mose,
    read_mose2,
    read_sav,
    read_vost,
)
from benchmarks.scoring import LVOS_METRICS, MOSE2_METRICS, SAV_METRICS, VOST_METRICS
from datasets.eval_datasets import EvalVideo, davis_2016_image_set, davis_videos
from evaluation.run import evaluate_from_arguments
from evaluation.scoring import METRICS, Target, benchmark_target, davis_target
from evaluation.sinks import BenchmarkOutputs, DavisScores, OutputSink, Submission
from util.errors import ConfigError, DatasetError

DAVIS_METRICS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")


@dataclass(frozen=True)
class Benchmark:
    summary: str  # one line for --help
    splits: tuple[str, ...]  # the first is the default (the validation set)
    read: Callable[..., BenchmarkSet]  # (root, split, **options): the options are the protocol's
    sink: Callable[[BenchmarkSet, Callable[[], Target] | None], OutputSink]  # (data, its scoring target)
    metrics: tuple[str, ...]  # the names the official tool prints
    command: str = "eval_benchmark.py"  # the script that runs it
    short_side: int | None = 480  # frames resized to this short side for the network (None: as they come)
    inference_defaults: dict = field(default_factory=dict)  # where the protocol's differ from InferenceConfig's


@dataclass
class BenchmarkJob:
    videos: list[EvalVideo]
    sink: OutputSink
    protocol: dict  # recorded with the results: a folder is only resumed under the same one


def _outputs(submit: str, **flags) -> Callable[[BenchmarkSet, Callable[[], Target] | None], OutputSink]:
    return lambda data, target: BenchmarkOutputs(data.palette, target, submit, **flags)


BENCHMARKS: dict[str, Benchmark] = {
    "davis2017": Benchmark(
        "DAVIS 2017: J&F; val is scored here, test-dev and test-challenge by the server",
        ("val", "testdev", "test-challenge"),
        read_davis2017,
        lambda data, target: DavisScores(data.palette),
        DAVIS_METRICS,
        command="eval_davis.py",
        short_side=None,
    ),
    "davis2016": Benchmark(
        "DAVIS 2016: J&F of one object (0/255 masks), top-k 20",
        ("val",),
        read_davis2016,
        lambda data, target: DavisScores([], binary=True),
        DAVIS_METRICS,
        command="eval_davis_2016.py",
        short_side=None,
        inference_defaults={"top_k": 20},
    ),
    "youtube-vos": Benchmark(
        "YouTube-VOS 2018/2019: the requested frames, zipped for the server",
        ("valid", "test"),
        inference_core_yv.read_youtube,
        lambda data, target: Submission(data.palette),
        (),
        command="eval_youtube.py",
        short_side=inference_core_yv.SHORT_SIDE,
    ),
    "mose": Benchmark(
        "MOSE v1: J&F (DAVIS definitions); valid is scored by the server",
        ("valid", "train"),
        read_mose,
        _outputs("MOSE v1 CodaLab server: upload submission.zip", submission_zip=True),
        ("J&F-Mean", "J-Mean", "F-Mean"),
    ),
    "mose2": Benchmark(
        "MOSE v2: J&F with the adaptive boundary (J&F_new), classic J&F, disappearance and reappearance J&F",
        ("valid", "train"),
        read_mose2,
        _outputs("MOSE v2 Codabench server: upload submission.zip", submission_zip=True),
        tuple(MOSE2_METRICS),
    ),
    "lvos": Benchmark(
        "LVOS v1: J, F (seen/unseen) and V inside each object's frame range",
        ("valid", "test"),
        read_lvos,
        _outputs("LVOS CodaLab server (test): upload submission.zip", submission_zip=True),
        tuple(LVOS_METRICS),
    ),
    "lvos2": Benchmark(
        "LVOS v2: as LVOS v1 (same scorer, its own unseen list)",
        ("valid", "test"),
        partial(read_lvos, version="lvos2"),
        _outputs("LVOS CodaLab server (test): upload submission.zip", submission_zip=True),
        tuple(LVOS_METRICS),
    ),
    "vost": Benchmark(
        "VOST: J and J_last (last 25% of the frames), no F",
        ("val", "train", "test"),
        read_vost,
        _outputs("VOST: val is scored here; test by the authors' server"),
        tuple(VOST_METRICS),
    ),
    "sav": Benchmark(
        "SA-V: J, F, J&F over the annotated frames, one binary PNG per object",
        ("val", "test"),
        read_sav,
        _outputs("SA-V: val and test are scored here (ground truth is public)", per_object_png=True),
        tuple(SAV_METRICS),
    ),
}


def prepare(name: str, root: Path, split: str | None = None, **options) -> BenchmarkJob:
    """A benchmark's videos (``split``: default its first), its sink, and the protocol to
    record: ``{"benchmark": name, "split": split, **options}``."""
    benchmark = BENCHMARKS[name]
    split = split or benchmark.splits[0]
    if split not in benchmark.splits:
        raise ConfigError(f"--split {split}: {name} has the splits {', '.join(benchmark.splits)}")
    data = benchmark.read(root, split, **options)
    target = (lambda: benchmark_target(name, data, root, split)) if data.score is not None else None
    return BenchmarkJob(data.videos, benchmark.sink(data, target), {"benchmark": name, "split": split, **options})


def load_target(name: str, root: Path, split: str | None = None) -> Target:
    """The ground truth of a benchmark split at ``root``, read as its evaluation reads it, to
    score any method's masks (``score.py``)."""
    root = Path(root)
    if name == "davis2017":
        if split not in (None, "val"):
            raise DatasetError(f"--split {split}: DAVIS 2017's ground truth is public for val only")
        return davis_target(davis_videos(root / "trainval", root / "trainval" / "ImageSets" / "2017" / "val.txt")[0])
    if name == "davis2016":
        return davis_target(davis_videos(root, davis_2016_image_set(root), binary=True)[0], binary=True)
    if name not in METRICS:
        raise DatasetError(f"--benchmark {name}: one of {', '.join(METRICS)}")
    benchmark = BENCHMARKS[name]
    split = split or benchmark.splits[0]
    if split not in benchmark.splits:
        raise DatasetError(f"--split {split}: {name} has the splits {', '.join(benchmark.splits)}")
    return benchmark_target(name, benchmark.read(root, split), root, split)


def run_benchmark(
    args: argparse.Namespace, name: str, root: Path, split: str | None = None, settings: dict | None = None, **options
) -> dict | None:
    """An eval script's whole job: ``prepare``, then ``evaluate_from_arguments`` with the
    inference ``settings`` the protocol adds (the resize, its antialiasing)."""
    job = prepare(name, root, split, **options)
    return evaluate_from_arguments(args, job.videos, job.sink, job.protocol, **(settings or {}))
