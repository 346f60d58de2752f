"""Winograd convolutions on the CPU: ``--winograd``.

The 3x3, stride-1 convolutions are most of a frame's arithmetic (the decoder's at a quarter
of the frame above all). NNPACK, which PyTorch ships, computes them with Winograd's minimal
filtering F(6x6, 3x3): about 5x fewer multiplications, in fused kernels, so they run 2-4x
faster than the direct float32 convolution on a CPU with AVX2. The sums are formed in
another order through transformed inputs and filters: outputs differ from the direct
convolution's by about 1e-4 relative (the direct one's own rounding is about 1e-6), so
this is an option, off by default, and recorded with the results.

Only float32 convolutions on the CPU of one image at a time (batch 1, what inference runs)
take the Winograd path; anything else (a batch, another dtype or device) runs the usual
convolution.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from util.errors import ConfigError


def nnpack_available() -> bool:
    """Whether this PyTorch build and CPU have NNPACK (the query also initialises it, which
    NNPACK's convolution needs)."""
    return torch.backends.nnpack.is_available()


def eligible(module: nn.Module) -> bool:
    """A 3x3 convolution that keeps the size: stride 1, padding 1, no dilation, no groups."""
    return (
        type(module) is nn.Conv2d
        and module.kernel_size == (3, 3)
        and module.stride == (1, 1)
        and module.padding == (1, 1)
        and module.dilation == (1, 1)
        and module.groups == 1
        and module.padding_mode == "zeros"
    )


def winograd_forward(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` through NNPACK's Winograd kernels where they apply, else as usual."""
    if x.device.type == "cpu" and x.dtype == torch.float32 and x.shape[0] == 1 and conv.weight.dtype == torch.float32:
        return torch._nnpack_spatial_convolution(x.contiguous(), conv.weight.contiguous(), conv.bias, [1, 1])
    return nn.Conv2d.forward(conv, x)


def use_winograd(network: nn.Module, enabled: bool = True) -> int:
    """Run every eligible convolution of ``network`` through ``winograd_forward`` (or back to
    the direct convolution). Returns how many convolutions are switched. Raises a
    ``ConfigError`` when NNPACK is not available here."""
    if enabled and not nnpack_available():
        raise ConfigError(
            "--winograd needs NNPACK, which this PyTorch build or CPU lacks (it needs AVX2 on x86); "
            "run without --winograd"
        )
    switched = 0
    for module in network.modules():
        if not eligible(module):
            continue
        if enabled:
            module.forward = functools.partial(winograd_forward, module)
        else:
            module.__dict__.pop("forward", None)
        switched += 1
    return switched
