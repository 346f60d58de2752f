"""Mixed precision: which type ``--amp`` autocasts to on a device, whether this CPU computes
it at speed, and what ``--amp`` does where it would not.

On the CPU ``--amp`` means bfloat16, which oneDNN computes at speed only with bfloat16
instructions (AVX-512 BF16 or AMX on x86, BF16 on ARM). Without them it emulates them, many
times slower than float32; ``--amp`` then falls back to float32 with a warning that gives
the slowdown measured on the spot, unless the user insists (``--amp_anyway``).
"""

from __future__ import annotations

import functools
import time
import warnings

import torch

# torch.cpu.get_capabilities() keys of the instructions that compute bfloat16 products natively
BFLOAT16_INSTRUCTIONS = ("amx_bf16", "avx512_bf16", "bf16", "sve_bf16")


class SlowAmpWarning(UserWarning):
    """``--amp`` on a CPU without bfloat16 instructions."""


def autocast_dtype(device: torch.device) -> torch.dtype:
    """What ``--amp`` autocasts to: float16 on CUDA (as the reference), bfloat16 elsewhere."""
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def cpu_bfloat16_instructions() -> list[str]:
    """The bfloat16 instruction sets this CPU has (as torch detects them); empty without."""
    capabilities = torch.cpu.get_capabilities()
    return [name for name in BFLOAT16_INSTRUCTIONS if capabilities.get(name)]


@functools.lru_cache(maxsize=None)
def bfloat16_slowdown(repeats: int = 3) -> float:
    """How many times longer a small 3x3 convolution (64 channels, 32x32) takes under
    bfloat16 autocast than in float32 on this CPU, best of ``repeats`` each (tens of
    milliseconds without bfloat16 instructions). Measured once per process."""
    conv = torch.nn.Conv2d(64, 64, 3, padding=1)
    x = torch.randn(1, 64, 32, 32)
    best = {}
    with torch.inference_mode():
        for dtype in (torch.float32, torch.bfloat16):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
                conv(x)  # warm-up: oneDNN builds its kernel
                seconds = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    conv(x)
                    seconds.append(time.perf_counter() - start)
            best[dtype] = min(seconds)
    return best[torch.bfloat16] / max(best[torch.float32], 1e-9)


def autocast_enabled(device: torch.device, amp: bool, insist: bool = False) -> bool:
    """Whether ``--amp`` autocasts on ``device``: as asked, except on a CPU without bfloat16
    instructions, where it warns (``SlowAmpWarning``, with the slowdown measured here) and
    falls back to float32 unless ``insist``."""
    if not amp or device.type != "cpu" or cpu_bfloat16_instructions():
        return amp
    what = (
        "using bfloat16 anyway (--amp_anyway)"
        if insist
        else "falling back to float32 (--amp_anyway insists on bfloat16)"
    )
    warnings.warn(
        SlowAmpWarning(
            f"--amp on a CPU without bfloat16 instructions (no {', '.join(BFLOAT16_INSTRUCTIONS[:2])}): a bfloat16 "
            f"convolution took {bfloat16_slowdown():.0f}x the time of float32 here; {what}. --amp pays off on CPUs "
            f"with AVX-512 BF16 or AMX, and on CUDA GPUs"
        ),
        stacklevel=2,
    )
    return insist
