"""Deterministic synthetic weights: the rule the golden reference data was computed with.

Every tensor comes from its own ``torch.Generator`` seeded with ``zlib.crc32`` of its
checkpoint name, so a tensor does not depend on the others, and its distribution follows
the kind of layer it belongs to:

  kind          values
  conv_weight   N(0, 1) / sqrt(fan_in)     fan_in = in_channels * kh * kw
  linear_weight N(0, 1) / sqrt(fan_in)     fan_in = in_features
  bias          N(0, 0.02)                 conv and linear biases
  bn_weight     U(0.5, 1.0)
  bn_bias       N(0, 0.05)
  bn_mean       N(0, 0.05)                 running_mean
  bn_var        U(0.75, 1.25)              running_var
  bn_count      0                          num_batches_tracked (int64)

with one exception: ``key_proj.key_proj.weight`` is scaled by 4 more, because with the
plain rule the keys are so small that the memory softmax is nearly uniform. The tests
rebuild the golden weights with this and compare their SHA-256 fingerprint with the one
recorded beside the golden data; the benchmark uses the same weights.
"""

from __future__ import annotations

import hashlib
import math
import zlib

import torch
from torch import nn

# Extra gain for single tensors, applied after their kind's rule.
GAIN = {"key_proj.key_proj.weight": 4.0}

_KINDS = {
    (nn.Conv2d, "weight"): "conv_weight",
    (nn.Conv2d, "bias"): "bias",
    (nn.Linear, "weight"): "linear_weight",
    (nn.Linear, "bias"): "bias",
    (nn.BatchNorm2d, "weight"): "bn_weight",
    (nn.BatchNorm2d, "bias"): "bn_bias",
    (nn.BatchNorm2d, "running_mean"): "bn_mean",
    (nn.BatchNorm2d, "running_var"): "bn_var",
    (nn.BatchNorm2d, "num_batches_tracked"): "bn_count",
}


def tensor_kinds(network: nn.Module) -> dict[str, str]:
    """Checkpoint name -> kind (see the module docstring), in state-dict order."""
    owners = {}
    for module_name, module in network.named_modules():
        for tensor_name, _ in list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False)):
            kind = next(
                (k for (cls, name), k in _KINDS.items() if isinstance(module, cls) and name == tensor_name), None
            )
            if kind is None:
                raise ValueError(f"no synthetic-weight rule for {type(module).__name__}.{tensor_name}")
            owners[f"{module_name}.{tensor_name}" if module_name else tensor_name] = kind
    return {name: owners[name] for name in network.state_dict()}


def synthetic_tensor(name: str, shape: tuple[int, ...], kind: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    if kind in ("conv_weight", "linear_weight"):
        return torch.randn(shape, generator=g) * GAIN.get(name, 1.0) / math.sqrt(math.prod(shape[1:]))
    if kind == "bias":
        return torch.randn(shape, generator=g) * 0.02
    if kind == "bn_weight":
        return 0.5 + 0.5 * torch.rand(shape, generator=g)
    if kind in ("bn_bias", "bn_mean"):
        return torch.randn(shape, generator=g) * 0.05
    if kind == "bn_var":
        return 0.75 + 0.5 * torch.rand(shape, generator=g)
    if kind == "bn_count":
        return torch.zeros(shape, dtype=torch.long)
    raise ValueError(f"unknown kind {kind!r} for {name!r}")


def synthetic_state_dict(network: nn.Module) -> dict[str, torch.Tensor]:
    """The synthetic weights of every tensor of ``network`` (load with strict=True)."""
    shapes = {name: tuple(t.shape) for name, t in network.state_dict().items()}
    return {name: synthetic_tensor(name, shapes[name], kind) for name, kind in tensor_kinds(network).items()}


def fingerprint(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the tensors' raw bytes (C order, little-endian), concatenated in key order."""
    digest = hashlib.sha256()
    for tensor in state.values():
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
