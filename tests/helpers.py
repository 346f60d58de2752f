"""Small inputs shared by several test modules."""

import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import torch

from model.checkpoint import read_checkpoint
from util.configuration import TrainConfig

REPO = Path(__file__).resolve().parents[1]


def offline_download(url, *args, **kwargs):
    """torch.hub's download on a machine without network access (patched in by tests)."""
    raise urllib.error.URLError(f"no network access for {url}")


def user_video(synthetic_root, tmp_path, frames=4):
    """A user's frame folder and first-frame mask, from a synthetic DAVIS video."""
    davis = synthetic_root / "DAVIS" / "2017" / "trainval"
    src = tmp_path / "frames"
    src.mkdir()
    for f in sorted((davis / "JPEGImages" / "480p" / "val00").glob("*.jpg"))[:frames]:
        shutil.copy(f, src / f.name)
    return src, davis / "Annotations" / "480p" / "val00" / "00000.png"


def random_clip(frames: int = 8, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 frames and a square object on the first one."""
    rng = np.random.RandomState(0)
    mask = np.zeros((size, size), np.uint8)
    mask[8:40, 8:40] = 1
    return rng.randint(0, 256, (frames, size, size, 3), dtype=np.uint8), mask


def wait_for(predicate, process: subprocess.Popen, timeout: float = 300) -> None:
    """Poll until ``predicate()``; the process must still be running meanwhile."""
    start = time.time()
    while not predicate():
        assert process.poll() is None, "the run ended before it could be interrupted"
        assert time.time() - start < timeout
        time.sleep(0.02)


def rank_pid(launcher: subprocess.Popen, rank: int) -> int:
    """The process id of one rank of a torchrun launcher (its child with RANK=<rank>)."""
    children = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(launcher.pid)], capture_output=True, text=True
    ).stdout.split()
    found = [int(pid) for pid in children if f"RANK={rank}".encode() in _environ(int(pid)).split(b"\0")]
    assert len(found) == 1, f"rank {rank} not found among {children}"
    return found[0]


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


# ---- training runs ---------------------------------------------------------------


def tiny_run_options(root, save_root, stage=3, iterations=4) -> dict:
    """A tiny training run on the synthetic datasets: TrainConfig's fields."""
    return dict(
        stage=stage,
        id="t",
        no_imagenet=True,
        batch_size=1,
        iterations=iterations,
        crop_size=48,
        num_workers=0,
        device="cpu",
        amp=False,
        static_root=str(root / "static"),
        davis_root=str(root / "DAVIS"),
        yv_root=str(root / "YouTube"),
        davis_subset=str(root / "davis_subset.txt"),
        yv_subset=str(root / "yv_subset.txt"),
        save_root=str(save_root),
        log_text_interval=1,
        log_image_interval=2,
        save_network_interval=2,
        save_checkpoint_interval=2,
        keep_checkpoint=True,  # the tests read the finished run's checkpoint
    )


def as_args(options: dict) -> list[str]:
    """TrainConfig field values as train.py's command line."""
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    args = []
    for name, value in options.items():
        default = fields[name].default
        if isinstance(default, bool):
            if value != default:
                args.append(f"--{name}" if value else f"--no_{name}")
        elif fields[name].metadata["argparse"].get("action") == "append":
            args += [item for v in value for item in (f"--{name}", str(v))]
        elif isinstance(value, (tuple, list)):
            args += [f"--{name}", *map(str, value)]
        else:
            args += [f"--{name}", str(value)]
    return args


def train_config(root, save_root, stage=3, iterations=4, **overrides) -> TrainConfig:
    """The tiny run, for ``train.train`` in the test process."""
    return TrainConfig(**{**tiny_run_options(root, save_root, stage, iterations), **overrides})


def args_for(root, save_root, stage=3, iterations=4, extra=()):
    """The tiny run as a command line (subprocesses, and the command-line tests)."""
    return [*as_args(tiny_run_options(root, save_root, stage, iterations)), *extra]


ITERATIONS = 4  # weights and full checkpoints at 2 and 4
CHECKPOINT_EVERY = 2
ENV = dict(os.environ, OMP_NUM_THREADS="2")
ENV_ONE_THREAD = dict(ENV, OMP_NUM_THREADS="1")  # two processes on two cores; the same kernels in each


def fault_args(root, save_root, extra=()):
    return args_for(
        root,
        save_root,
        iterations=ITERATIONS,
        extra=[
            "--save_network_interval",
            str(CHECKPOINT_EVERY),
            "--save_checkpoint_interval",
            str(CHECKPOINT_EVERY),
            "--log_image_interval",
            "100",
            *extra,
        ],
    )


def fault_config(root, save_root, **overrides) -> TrainConfig:
    """``fault_args`` as a configuration."""
    return train_config(
        root,
        save_root,
        iterations=ITERATIONS,
        **{
            "save_network_interval": CHECKPOINT_EVERY,
            "save_checkpoint_interval": CHECKPOINT_EVERY,
            "log_image_interval": 100,
            **overrides,
        },
    )


def train_cmd(root, save_root, extra=()):
    return [sys.executable, "-m", "tests.train_for_tests", *fault_args(root, save_root, extra)]


def torchrun_cmd(root, save_root, port, extra=()):
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        f"--master_port={port}",
        *train_cmd(root, save_root, extra)[1:],
    ]


def run_ok(cmd, env=ENV):
    result = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def final_weights(save_root: Path) -> dict:
    (run,) = [d for d in save_root.iterdir() if d.is_dir()]
    return read_checkpoint(run / f"{run.name}_{ITERATIONS}.pth")


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(weights: Path, workdir: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    """``python app.py`` on a free port, serving; its output goes to ``workdir/app.log``."""
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log = open(workdir / "app.log", "w")
    cmd = [sys.executable, "app.py", "--model", str(weights), "--device", "cpu", "--port", str(port)]
    process = subprocess.Popen([*cmd, "--workdir", str(workdir), *extra], cwd=REPO, stdout=log, stderr=log, env=ENV)
    url = f"http://127.0.0.1:{port}/"

    def serving() -> bool:
        try:
            return urllib.request.urlopen(url, timeout=5).status == 200
        except OSError:
            return False

    wait_for(serving, process, timeout=180)
    return process, url


def app_export_and_engine(weights: Path, video: Path, export_zip: Path, tmp: Path) -> tuple[dict, dict]:
    """The web app's exported masks, and ``eval_generic.py``'s for the same video and the
    annotations in the export (frame name -> labels)."""
    import eval_generic
    from util.cli import run as cli_run
    from util.palette import read_mask

    with zipfile.ZipFile(export_zip) as archive:
        archive.extractall(tmp / "export")
    out = tmp / "engine"
    cli_run(
        lambda: eval_generic.main(
            ["--model", str(weights), "--frames", str(video), "--mask", str(tmp / "export" / "annotations")]
            + ["--output", str(out), "--device", "cpu"]
        )
    )
    app = {p.stem: read_mask(p) for p in sorted((tmp / "export" / "masks").glob("*.png"))}
    engine = {p.stem: read_mask(p) for p in sorted((out / video.stem).glob("*.png"))}
    return app, engine
