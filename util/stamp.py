"""What a measured number was measured on: the stamp every published result carries.

A speed or a score means little without the hardware and software that produced it, so
every result file the project writes (benchmarks, the demo's J&F) embeds ``machine_stamp``:
the CPU model and the instruction sets that matter for PyTorch's kernels, the GPU model,
the thread count, torch's version and the commit of the code.
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import torch

# CPU features that change which convolution kernels oneDNN can use (bfloat16 and int8 above all)
CPU_FLAGS_OF_INTEREST = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_bf16",
    "avx512_vnni",
    "avx512_fp16",
    "amx_bf16",
    "amx_tile",
    "amx_int8",
    "amx_fp16",
)
REPO = Path(__file__).resolve().parent.parent


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo; platform's description elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_flags() -> list[str]:
    """The instruction sets of CPU_FLAGS_OF_INTEREST this CPU reports (Linux; empty elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return [flag for flag in CPU_FLAGS_OF_INTEREST if flag in present]
    except OSError:
        pass
    return []


def code_version(repo: Path = REPO) -> str:
    """The commit of the code (with ``+dirty`` when the work tree has changes), or
    ``unknown`` outside a git checkout."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def machine_stamp(device: torch.device | str = "cpu", threads: int | None = None) -> dict:
    """The stamp of a measurement made now, in this process, on ``device``."""
    device = torch.device(device)
    stamp = {
        "cpu": cpu_name(),
        "cpu_flags": cpu_flags(),
        "threads": threads or torch.get_num_threads(),
        "device": device.type,
        "gpu": None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "commit": code_version(),
    }
    if device.type == "cuda":
        stamp["gpu"] = torch.cuda.get_device_name(device)
        stamp["cuda"] = torch.version.cuda
    return stamp


def describe(stamp: dict) -> str:
    """One line for a table's caption: hardware, threads, torch, commit."""
    hardware = stamp["gpu"] or f"{stamp['cpu']} ({', '.join(stamp['cpu_flags']) or 'no listed extensions'})"
    return f"{hardware}, {stamp['threads']} threads, torch {stamp['torch']}, commit {stamp['commit']}"
