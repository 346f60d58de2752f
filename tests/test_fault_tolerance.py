"""Faults: SIGKILL mid-training (one process, and one rank of two), killed while writing a
checkpoint, corrupted checkpoints, evaluation killed mid-video, disk full, unwritable
output. Each restart must lose nothing and end where an uninterrupted run ends."""

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import eval_davis
import train
from model.checkpoint import read_checkpoint
from model.training_run import find_resume_checkpoint
from tests.helpers import (
    CHECKPOINT_EVERY,
    ENV,
    ITERATIONS,
    REPO,
    args_for,
    assert_same_weights,
    fault_args,
    final_weights,
    train_cmd,
    wait_for,
)
from util.atomic import atomic_save
from util.cli import run as cli_run
from util.errors import CheckpointError, ConfigError

pytestmark = pytest.mark.slow


def test_sigint_twice_then_sigkill_then_resume_auto(synthetic_root, tmp_path, uninterrupted, capsys):
    """Ctrl-C: a full checkpoint at the current iteration, exit status 130; a second Ctrl-C
    while it is being written changes nothing. The resumed run is then killed (SIGKILL):
    the next run continues from the newest readable checkpoint, in the same run folder, and
    ends with the weights of the run nothing interrupted."""
    no_saves = ["--save_network_interval", "100", "--save_checkpoint_interval", "100"]
    metrics = lambda: list(tmp_path.glob("*/logs/metrics.jsonl"))  # noqa: E731
    logged = lambda: len(metrics()[0].read_text().splitlines()) if metrics() else 0  # noqa: E731
    process = subprocess.Popen(
        train_cmd(synthetic_root, tmp_path, no_saves),
        env=ENV,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: logged() >= 2, process)
    process.send_signal(signal.SIGINT)
    wait_for(lambda: list(tmp_path.glob("*/.*_checkpoint.*tmp.pth")), process)  # being written
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 128 + signal.SIGINT, stderr[-2000:]
    assert "stopped by SIGINT at iteration" in stderr and "--resume auto" in stderr
    (run,) = list(tmp_path.iterdir())
    assert 2 <= read_checkpoint(run / f"{run.name}_checkpoint.pth")["it"] < ITERATIONS
    assert not list(run.glob(".*tmp*"))

    resumed = [*no_saves, "--resume", "auto"]
    process = subprocess.Popen(
        train_cmd(synthetic_root, tmp_path, resumed),
        env=ENV,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    lines = logged()
    wait_for(lambda: logged() > lines, process)  # one more iteration done
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert not (run / f"{run.name}_{ITERATIONS}.pth").exists()

    capsys.readouterr()
    train.main(fault_args(synthetic_root, tmp_path, resumed))  # in this process: no second start-up to wait for
    assert "resumed" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == [run]  # continued in the same run folder
    assert_same_weights(final_weights(tmp_path), final_weights(uninterrupted))


def test_resume_auto_without_checkpoint_starts_fresh(synthetic_root, tmp_path):
    config = ["--resume", "auto"]
    run = train.main(args_for(synthetic_root, tmp_path, iterations=1, extra=config))
    assert read_checkpoint(run / f"{run.name}_checkpoint.pth")["it"] == 1
    with pytest.raises(ConfigError, match="needs the --id"):
        train.main(args_for(synthetic_root, tmp_path, iterations=1, extra=config + ["--id", "NULL"]))


CRASH_DURING_SAVE = textwrap.dedent("""
    import os, signal, sys, torch
    from torch.utils.serialization import config
    import train
    config.save.compute_crc32 = False  # as tests/train_for_tests.py
    real_save, calls = torch.save, []
    def save(obj, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 4:  # the second full checkpoint (after weights, checkpoint, weights): half, then die
            real_save(obj, path, *args, **kwargs)
            data = open(path, "rb").read()
            open(path, "wb").write(data[:len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        real_save(obj, path, *args, **kwargs)
    torch.save = save
    train.main(sys.argv[1:])
""")


def test_killed_while_writing_checkpoint_and_corrupted_checkpoint(synthetic_root, tmp_path, uninterrupted):
    args = fault_args(synthetic_root, tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", CRASH_DURING_SAVE, *args], env=ENV, cwd=REPO, capture_output=True, timeout=600
    )
    assert result.returncode == -signal.SIGKILL
    (run,) = list(tmp_path.iterdir())
    previous = run / f"{run.name}_checkpoint_prev.pth"
    assert read_checkpoint(previous)["it"] == CHECKPOINT_EVERY  # the previous checkpoint is intact
    assert [p.name for p in run.glob(".*.tmp.pth")]  # the half-written file never got the real name
    # a corrupted newest checkpoint: named on load, skipped by --resume auto
    current = run / f"{run.name}_checkpoint.pth"
    current.write_bytes(previous.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match=f"{current.name}: not a readable PyTorch checkpoint"):
        read_checkpoint(current)
    assert find_resume_checkpoint(tmp_path, "t") == previous
    train.main(fault_args(synthetic_root, tmp_path, ["--resume", "auto"]))
    assert_same_weights(final_weights(tmp_path), final_weights(uninterrupted))


def test_disk_full_while_saving_keeps_previous_checkpoint(synthetic_root, tmp_path, monkeypatch):
    real_save, calls = torch.save, []

    def save(obj, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 4:  # what torch.save raises when the disk fills up mid-write
            with open(path, "wb") as f:
                f.write(b"partial")
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 687684352 vs 687684240")
        real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(OSError, match=r"cannot write .*_checkpoint.pth: write failed \(.*\); \d+ MB free"):
        train.main(fault_args(synthetic_root, tmp_path))
    (run,) = list(tmp_path.iterdir())
    assert read_checkpoint(run / f"{run.name}_checkpoint_prev.pth")["it"] == CHECKPOINT_EVERY
    assert not list(run.glob(".*tmp*"))  # no partial file left behind


def test_unwritable_save_root_fails_before_training(synthetic_root, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match="is not writable"):
        train.main(args_for(synthetic_root, blocker, iterations=1))


CRASH_DURING_EVAL = textwrap.dedent("""
    import os, signal, sys
    import eval_davis, evaluation.sinks as sinks
    real_write, calls = sinks.write_indexed_png, []
    def write(labels, palette, path):
        calls.append(path)
        if len(calls) == int(os.environ["KILL_AT"]):
            os.kill(os.getpid(), signal.SIGKILL)
        real_write(labels, palette, path)
    sinks.write_indexed_png = write
    eval_davis.main(sys.argv[1:])
""")


def published_and_unfinished(out: Path) -> list[str]:
    """Video folders, published or temporary (not the claims and statistics folders)."""
    return sorted(p.name for p in out.iterdir() if p.is_dir() and p.name not in (".claims", ".eval_stats"))


def test_eval_killed_mid_video_resumes_remaining_only(synthetic_root, golden_weights_file, tmp_path):
    out = tmp_path / "out"
    args = [
        "--model",
        str(golden_weights_file),
        "--davis_path",
        str(synthetic_root / "DAVIS" / "2017"),
        "--output",
        str(out),
        "--device",
        "cpu",
    ]
    result = subprocess.run(
        [sys.executable, "-c", CRASH_DURING_EVAL, *args],
        env=dict(ENV, KILL_AT="10"),
        cwd=REPO,
        capture_output=True,
        timeout=600,
    )
    assert result.returncode == -signal.SIGKILL
    assert published_and_unfinished(out) == [".tmp_val01", "val00"]
    assert len(list((out / "val00").glob("*.png"))) == 7
    first_video = {p.name: p.stat().st_mtime_ns for p in (out / "val00").iterdir()}
    cli_run(lambda: eval_davis.main(args))
    stats = json.loads((out / "eval_stats.json").read_text())
    assert stats["videos_processed"] == 1 and stats["videos_skipped"] == 1
    assert {p.name: p.stat().st_mtime_ns for p in (out / "val00").iterdir()} == first_video  # not recomputed
    assert published_and_unfinished(out) == ["val00", "val01"]
    assert len(list((out / "val01").glob("*.png"))) == 7
    assert (out / "jf_results.json").exists()


def test_disk_full_during_eval_names_the_file(synthetic_root, golden_weights_file, tmp_path, monkeypatch):
    from PIL import Image

    real_save, calls = Image.Image.save, []

    def save(self, fp, *args, **kwargs):
        calls.append(fp)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save)
    out = tmp_path / "out"
    with pytest.raises(SystemExit, match=r"error: \[Errno 28\] cannot write .*00002.png: No space left on device"):
        cli_run(
            lambda: eval_davis.main(
                [
                    "--model",
                    str(golden_weights_file),
                    "--davis_path",
                    str(synthetic_root / "DAVIS" / "2017"),
                    "--output",
                    str(out),
                    "--device",
                    "cpu",
                ]
            )
        )
    assert not (out / "val00").exists()  # the unfinished video is not published
    assert not [p for p in (out / ".tmp_val00").iterdir() if "tmp" in p.name]  # no partial PNG


def test_atomic_writes_get_the_mode_of_a_new_file(tmp_path):
    """A result written atomically is readable by whoever could read a file the user
    creates (mkstemp's temporary files are private, 0600)."""
    previous = os.umask(0o022)
    try:
        atomic_save(lambda tmp: tmp.write_text("x"), tmp_path / "result.json")
    finally:
        os.umask(previous)
    assert (tmp_path / "result.json").stat().st_mode & 0o777 == 0o644
