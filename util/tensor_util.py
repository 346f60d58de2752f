"""Frame normalisation and the reference's pad-to-multiple-of-16 rule."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalise_rgb(rgb_uint8: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 normalised with the ImageNet statistics."""
    x = torch.from_numpy(np.ascontiguousarray(rgb_uint8)).permute(2, 0, 1).float() / 255
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x - mean) / std


def pad_divide_by(x: torch.Tensor, d: int = 16) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
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
    return x[..., top:h - bottom, left:w - right]
