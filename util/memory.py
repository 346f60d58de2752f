"""Measuring this process on its device: peak memory (max allocated on CUDA, peak resident
set size on the CPU), and waiting for the device before a clock is read; and keeping the
memory that large tensors free for the next ones (``keep_freed_memory``)."""

from __future__ import annotations

import ctypes
import resource

import torch

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse instead of returning it to the kernel.

    On the CPU every frame allocates and frees the same large activations (tens of MB each
    at 480p). By default glibc hands such blocks back to the kernel when they are freed, and
    the next frame's tensors fault the pages in again one by one: hundreds of thousands of
    page faults per decoded object, a tenth of its time or more. Here blocks up to 32 MB
    (glibc's largest mmap threshold) come from the heap, which grows in steps of 1 GB of
    address space (touched only when used) and is never trimmed, so freed blocks are reused
    as they are.
    Nothing computed changes (only where memory comes from); the resident memory stays near
    the process's peak instead of falling between frames. Returns False where the C library
    is not glibc (nothing is changed there)."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    settings = ((M_TRIM_THRESHOLD, 2**31 - 1), (M_TOP_PAD, 2**30), (M_MMAP_THRESHOLD, 32 * 2**20))
    return all(mallopt(parameter, value) == 1 for parameter, value in settings)


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
