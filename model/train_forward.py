"""The reference's training forward pass over a 3-frame clip."""

from __future__ import annotations

import torch

from model.network import GSFM


def clip_forward(
    net: GSFM,
    rgb: torch.Tensor,
    gt: torch.Tensor,
    sec_gt: torch.Tensor | None = None,
    selector: torch.Tensor | None = None,
) -> dict:
    """Segment frames 1..T-1 of each clip from frame 0's ground truth.

    rgb (B, T, 3, H, W); gt, sec_gt (B, T, 1, H, W); selector (B, 2). Keys of all frames
    are encoded at once; frame 0's values come from the ground truth, frame i's from the
    predicted probabilities, and frame i+1 reads all earlier frames (full softmax).
    Returns ``logits_i``, ``mask_i``, ``boundary_i`` (and ``sec_mask_i``) for i >= 1.
    """
    b, t = rgb.shape[:2]
    keys = net.encode_key(rgb.flatten(0, 1))
    k16 = keys.k16.view(b, t, *keys.k16.shape[-3:]).transpose(1, 2)  # B, C, T, h, w
    f16_thin, f16, f8, f4 = (x.view(b, t, *x.shape[-3:]) for x in keys[1:])
    out = {}
    values = net.encode_memory_values(rgb[:, 0], f16[:, 0], gt[:, 0], None if net.single_object else sec_gt[:, 0])
    time_dim = 2 if net.single_object else 3
    for i in range(1, t):
        seg = net.segment(k16[:, :, i], f16_thin[:, i], f8[:, i], f4[:, i], k16[:, :, :i], values, selector)
        out[f"logits_{i}"] = seg.logits
        out[f"mask_{i}"] = seg.prob[:, 0:1]
        out[f"boundary_{i}"] = seg.boundary
        if not net.single_object:
            out[f"sec_mask_{i}"] = seg.prob[:, 1:2]
        if i < t - 1:
            new = net.encode_memory_values(
                rgb[:, i], f16[:, i], seg.prob[:, 0:1], None if net.single_object else seg.prob[:, 1:2]
            )
            values = torch.cat([values, new], time_dim)
    return out
