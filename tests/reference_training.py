"""The oracle of the training-step benchmark: the reference's training forward as written.

Values of the two objects are encoded by two value-encoder calls, and ``segment`` runs the
decoder once per object (reference ``model/model.py`` / ``model/network.py``);
``model.train_forward.clip_forward`` must give the same outputs.
"""
from __future__ import annotations

import torch

from model.memory_util import aggregate, affinity_logits, softmax_full
from model.network import VALUE_DIM, GSFM, SegmentOutput


def reference_segment(net: GSFM, qk16, qv16, qf8, qf4, mk16, mv16, selector=None) -> SegmentOutput:
    b, _, h, w = qk16.shape
    affinity = softmax_full(affinity_logits(mk16.flatten(2), qk16.flatten(2)))
    values = mv16.unsqueeze(1) if net.single_object else mv16
    mask_logits, boundaries = [], []
    for obj in range(values.shape[1]):
        readout = torch.bmm(values[:, obj].flatten(2), affinity).view(b, VALUE_DIM, h, w)
        mask_logit, boundary = net.decode(readout, qv16, qf8, qf4)
        mask_logits.append(mask_logit)
        boundaries.append(boundary)
    prob = torch.sigmoid(torch.cat(mask_logits, 1))
    boundary = torch.cat(boundaries, 1)
    if not net.single_object:
        prob = prob * selector[:, :, None, None]
        boundary = boundary * selector[:, :, None, None]
    logits = aggregate(prob, dim=1)
    return SegmentOutput(logits, torch.softmax(logits, dim=1)[:, 1:], boundary)


def reference_clip_forward(net: GSFM, rgb, gt, sec_gt=None, selector=None) -> dict:
    b, t = rgb.shape[:2]
    keys = net.encode_key(rgb.flatten(0, 1))
    k16 = keys.k16.view(b, t, *keys.k16.shape[-3:]).transpose(1, 2)
    f16_thin, f16, f8, f4 = (x.view(b, t, *x.shape[-3:]) for x in keys[1:])

    def values_of(frame, mask1, mask2):
        if net.single_object:
            return net.encode_value(rgb[:, frame], f16[:, frame], mask1).unsqueeze(2)
        v1 = net.encode_value(rgb[:, frame], f16[:, frame], mask1, mask2)
        v2 = net.encode_value(rgb[:, frame], f16[:, frame], mask2, mask1)
        return torch.stack([v1, v2], 1).unsqueeze(3)

    out = {}
    values = values_of(0, gt[:, 0], None if net.single_object else sec_gt[:, 0])
    time_dim = 2 if net.single_object else 3
    for i in range(1, t):
        seg = reference_segment(net, k16[:, :, i], f16_thin[:, i], f8[:, i], f4[:, i], k16[:, :, :i], values,
                                selector)
        out[f"logits_{i}"] = seg.logits
        out[f"mask_{i}"] = seg.prob[:, 0:1]
        out[f"boundary_{i}"] = seg.boundary
        if not net.single_object:
            out[f"sec_mask_{i}"] = seg.prob[:, 1:2]
        if i < t - 1:
            new = values_of(i, seg.prob[:, 0:1], None if net.single_object else seg.prob[:, 1:2])
            values = torch.cat([values, new], time_dim)
    return out
