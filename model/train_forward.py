"""The reference's training forward pass over a clip (``util.configuration.CLIP_FRAMES``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from model.network import GSFM


@dataclass
class QueryFrame:
    """The network's outputs on one frame a clip segments (frames 1..T-1)."""

    logits: torch.Tensor  # (B, 1 + objects, H, W): background first
    mask: torch.Tensor  # (B, 1, H, W): the first object's probability
    boundary: torch.Tensor  # (B, objects, H, W): the boundary logits
    sec_mask: torch.Tensor | None  # (B, 1, H, W): the second object's probability (None: single object)


def clip_forward(
    net: GSFM,
    rgb: torch.Tensor,
    gt: torch.Tensor,
    sec_gt: torch.Tensor | None = None,
    selector: torch.Tensor | None = None,
) -> list[QueryFrame]:
    """Segment frames 1..T-1 of each clip from frame 0's ground truth.

    rgb (B, T, 3, H, W); gt, sec_gt (B, T, 1, H, W); selector (B, 2). Keys of all frames
    are encoded at once; frame 0's values come from the ground truth, frame i's from the
    predicted probabilities, and frame i+1 reads all earlier frames (full softmax).
    Returns the outputs of frames 1..T-1, in order.
    """
    b, t = rgb.shape[:2]
    keys = net.encode_key(rgb.flatten(0, 1))
    k16 = keys.k16.view(b, t, *keys.k16.shape[-3:]).transpose(1, 2)  # B, C, T, h, w
    f16_thin, f16, f8, f4 = (x.view(b, t, *x.shape[-3:]) for x in keys[1:])
    frames = []
    values = net.encode_memory_values(rgb[:, 0], f16[:, 0], gt[:, 0], None if net.single_object else sec_gt[:, 0])
    time_dim = 2 if net.single_object else 3
    for i in range(1, t):
        seg = net.segment(k16[:, :, i], f16_thin[:, i], f8[:, i], f4[:, i], k16[:, :, :i], values, selector)
        frames.append(
            QueryFrame(seg.logits, seg.prob[:, 0:1], seg.boundary, None if net.single_object else seg.prob[:, 1:2])
        )
        if i < t - 1:
            new = net.encode_memory_values(
                rgb[:, i], f16[:, i], seg.prob[:, 0:1], None if net.single_object else seg.prob[:, 1:2]
            )
            values = torch.cat([values, new], time_dim)
    return frames
