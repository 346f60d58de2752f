"""Small inputs shared by several test modules."""
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np


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
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(launcher.pid)], capture_output=True,
                              text=True).stdout.split()
    found = [int(pid) for pid in children if f"RANK={rank}".encode() in _environ(int(pid)).split(b"\0")]
    assert len(found) == 1, f"rank {rank} not found among {children}"
    return found[0]


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""
