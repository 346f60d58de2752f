"""Evaluation across processes: torchrun ranks (gloo on CPU) and independent runs sharing an
output folder give the single-process masks bit for bit, compute every video once, and a
killed rank's rerun computes only what is missing."""

import json
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import eval_davis
import eval_youtube
from datasets.synthetic import SyntheticConfig, generate
from evaluation.run import shard
from tests.helpers import ENV_ONE_THREAD, REPO, rank_pid, run_ok, wait_for
from util.palette import read_mask

pytestmark = pytest.mark.slow

ENV = ENV_ONE_THREAD  # one thread per process: the same kernels everywhere


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """4 DAVIS val videos and as many YouTube-VOS valid videos."""
    return generate(
        SyntheticConfig(
            tmp_path_factory.mktemp("many") / "data",
            seed=5,
            height=64,
            width=96,
            frames=6,
            train_videos=1,
            val_videos=4,
            max_objects=2,
            static_images=1,
        )
    )


def davis_args(data, weights, out):
    return [
        "--model",
        str(weights),
        "--davis_path",
        str(data / "DAVIS" / "2017"),
        "--output",
        str(out),
        "--device",
        "cpu",
        "--threads",
        "1",
    ]


def youtube_args(data, weights, out):
    return [
        "--model",
        str(weights),
        "--yv_path",
        str(data / "YouTube"),
        "--output",
        str(out),
        "--device",
        "cpu",
        "--threads",
        "1",
        "--size",
        "-1",
    ]


def torchrun(script, args, port):
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={port}",
        str(REPO / script),
        *args,
    ]


def masks_of(folder: Path) -> dict[str, np.ndarray]:
    return {
        str(p.relative_to(folder)): read_mask(p)
        for p in sorted(folder.glob("*/*.png"))
        if not p.parent.name.startswith(".")
    }


def assert_same_masks(a: Path, b: Path) -> None:
    ma, mb = masks_of(a), masks_of(b)
    assert ma.keys() == mb.keys() and ma
    for name in ma:
        assert np.array_equal(ma[name], mb[name]), name


@pytest.fixture(scope="module")
def single(data, golden_weights_file, tmp_path_factory):
    """Single-process outputs, with one thread as each rank below (the CPU's kernels may
    round differently with another thread count)."""
    out = tmp_path_factory.mktemp("single")
    threads = torch.get_num_threads()
    try:
        eval_davis.main(davis_args(data, golden_weights_file, out / "davis"))
        eval_youtube.main(youtube_args(data, golden_weights_file, out / "yv"))
    finally:
        torch.set_num_threads(threads)
    return out


def test_shards_are_balanced_longest_first():
    class Video:
        def __init__(self, name, n):
            self.name, self.num_frames = name, n

    videos = [Video(n, f) for n, f in (("a", 10), ("b", 80), ("c", 30), ("d", 50), ("e", 40))]
    parts = shard(videos, 2)
    assert [[v.name for v in p] for p in parts] == [["b", "c"], ["d", "e", "a"]]
    assert [sum(v.num_frames for v in p) for p in parts] == [110, 100]
    assert shard(videos, 1)[0] == sorted(videos, key=lambda v: -v.num_frames)


def test_two_ranks_equal_one_process(data, golden_weights_file, single, tmp_path):
    result = run_ok(torchrun("eval_davis.py", davis_args(data, golden_weights_file, tmp_path / "davis"), 29611), ENV)
    assert_same_masks(tmp_path / "davis", single / "davis")
    stats = json.loads((tmp_path / "davis" / "eval_stats.json").read_text())
    assert stats["processes"] == 2 and [r["rank"] for r in stats["ranks"]] == [0, 1]
    assert stats["videos_processed"] == 4 and sum(r["videos"] for r in stats["ranks"]) == 4
    assert all(r["videos"] > 0 for r in stats["ranks"])  # both ranks worked
    assert sorted(stats["per_video"]) == [f"val{i:02d}" for i in range(4)]
    jf = json.loads((tmp_path / "davis" / "jf_results.json").read_text())
    assert jf == json.loads((single / "davis" / "jf_results.json").read_text())
    assert result.stdout.count("J&F-Mean") == 1  # one summary, from rank 0

    run_ok(torchrun("eval_youtube.py", youtube_args(data, golden_weights_file, tmp_path / "yv"), 29612), ENV)
    assert_same_masks(tmp_path / "yv" / "Annotations", single / "yv" / "Annotations")
    with (
        zipfile.ZipFile(tmp_path / "yv" / "submission.zip") as mine,
        zipfile.ZipFile(single / "yv" / "submission.zip") as theirs,
    ):
        assert sorted(mine.namelist()) == sorted(theirs.namelist()) and mine.namelist()


def test_independent_runs_share_one_output_folder(data, golden_weights_file, single, tmp_path):
    out = tmp_path / "shared"
    cmd = [sys.executable, "eval_davis.py", *davis_args(data, golden_weights_file, out)]
    runs = [
        subprocess.Popen(cmd, env=ENV, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [r.communicate(timeout=600) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    assert_same_masks(out, single / "davis")
    per_video = [json.loads(p.read_text()) for p in sorted((out / ".eval_stats").glob("*.json"))]
    assert len(per_video) == 4
    pids = {r.pid for r in runs}
    assert {v["pid"] for v in per_video} <= pids
    # each video computed once: the two runs' counts add up to the 4 videos
    processed = [int(o[0].split(" videos (")[0].split()[-1]) for o in outputs]
    assert sum(processed) == 4
    assert (out / "jf_results.json").exists() and not list(out.glob(".tmp_*"))


def test_killed_rank_then_rerun_computes_only_the_rest(data, golden_weights_file, single, tmp_path):
    out = tmp_path / "killed"
    args = davis_args(data, golden_weights_file, out)
    launcher = subprocess.Popen(
        torchrun("eval_davis.py", args, 29613), env=ENV, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for(lambda: any((out / ".eval_stats").glob("*.json")), launcher)  # a first video is done
    os.kill(rank_pid(launcher, 1), signal.SIGKILL)
    assert launcher.wait(timeout=300) != 0  # torchrun stops the other rank and fails
    done = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/00000.png") if not p.parent.name.startswith(".")}
    assert 0 < len(done) < 4
    result = run_ok(torchrun("eval_davis.py", args, 29614), ENV)
    stats = json.loads((out / "eval_stats.json").read_text())
    assert stats["videos_skipped"] == len(done) and stats["videos_processed"] == 4 - len(done)
    assert {v: (out / v / "00000.png").stat().st_mtime_ns for v in done} == done  # not recomputed
    assert_same_masks(out, single / "davis")
    assert "J&F-Mean" in result.stdout
