"""Frames to network input and back: normalisation, the reference's pad-to-multiple rule,
resizing by the short side."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalise(image: np.ndarray | torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """A frame as it comes -> (3, H, W) float32 normalised with the ImageNet statistics.

    Accepts an (H, W, 3) uint8 array (what image readers give), a (3, H, W) or (H, W, 3)
    uint8 tensor, or a (3, H, W) float tensor with values in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(image)) if isinstance(image, np.ndarray) else image
    if x.dim() != 3 or 3 not in (x.shape[0], x.shape[-1]):
        raise ValueError(f"expected an RGB frame (H, W, 3) or (3, H, W), got shape {tuple(x.shape)}")
    if x.shape[0] != 3:
        x = x.permute(2, 0, 1)
    x = x.to(device) if device is not None else x
    x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(3, 1, 1)
    return (x - mean) / std


def pad_divide_by(x: torch.Tensor, d: int) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Zero-pad the last two dims up to multiples of ``d``; the smaller half goes first.

    Returns the padded tensor and ``(left, right, top, bottom)``.
    """
    h, w = x.shape[-2:]
    new_h, new_w = -(-h // d) * d, -(-w // d) * d
    top, left = (new_h - h) // 2, (new_w - w) // 2
    pad = (left, new_w - w - left, top, new_h - h - top)
    return (F.pad(x, pad) if any(pad) else x), pad


def unpad(x: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    left, right, top, bottom = pad
    h, w = x.shape[-2:]
    return x[..., top : h - bottom, left : w - right]


def resize_short_side(
    x: torch.Tensor, size: int, interpolation: InterpolationMode, antialias: bool = True
) -> torch.Tensor:
    """torchvision ``Resize(size)`` on a (..., H, W) tensor: the short side becomes ``size``,
    the long side ``int(size * long / short)``."""
    return TF.resize(x, size, interpolation=interpolation, antialias=antialias)
