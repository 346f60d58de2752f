"""Measuring this process on its device: peak memory (max allocated on CUDA, peak resident
set size on the CPU), and waiting for the device before a clock is read."""

from __future__ import annotations

import resource

import torch


def _proc_status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def current_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device) / 2**20
    rss = _proc_status_mb("VmRSS")
    return rss if rss is not None else peak_memory_mb(device)


def peak_memory_mb(device: torch.device) -> float:
    """Peak since the last ``reset_peak_memory`` (the process's lifetime peak where the OS
    cannot reset it)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = _proc_status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def reset_peak_memory(device: torch.device) -> float:
    """Measure the peak from now on; returns the memory in use now."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets the process's peak RSS (VmHWM)
        except OSError:
            pass
    return current_memory_mb(device)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously), so a clock read next
    measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
