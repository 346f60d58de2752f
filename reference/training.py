"""The oracle of the training-step benchmark: the reference's training verbs as written.

``ReferenceGSFM`` encodes the two objects' values with two value-encoder calls and runs
the decoder once per object in ``segment`` (reference ``model/model.py`` /
``model/network.py``); ``model.train_forward.clip_forward`` on it is the reference's
training forward, and on ``GSFM`` must give the same outputs.
"""

from __future__ import annotations

import torch

from model.memory_util import affinity_logits, aggregate, softmax_full
from model.network import GSFM, VALUE_DIM, SegmentOutput


class ReferenceGSFM(GSFM):
    def encode_memory_values(self, frame, key_f16, mask1, mask2=None) -> torch.Tensor:
        if self.single_object:
            return self.encode_value(frame, key_f16, mask1).unsqueeze(2)
        v1 = self.encode_value(frame, key_f16, mask1, mask2)
        v2 = self.encode_value(frame, key_f16, mask2, mask1)
        return torch.stack([v1, v2], 1).unsqueeze(3)

    def segment(self, qk16, qv16, qf8, qf4, mk16, mv16, selector=None) -> SegmentOutput:
        b, _, h, w = qk16.shape
        affinity = softmax_full(affinity_logits(mk16.flatten(2), qk16.flatten(2)))
        values = mv16.unsqueeze(1) if self.single_object else mv16
        mask_logits, boundaries = [], []
        for obj in range(values.shape[1]):
            readout = torch.bmm(values[:, obj].flatten(2), affinity).view(b, VALUE_DIM, h, w)
            mask_logit, boundary = self.decode(readout, qv16, qf8, qf4)
            mask_logits.append(mask_logit)
            boundaries.append(boundary)
        prob = torch.sigmoid(torch.cat(mask_logits, 1))
        boundary = torch.cat(boundaries, 1)
        if not self.single_object:
            prob = prob * selector[:, :, None, None]
            boundary = boundary * selector[:, :, None, None]
        logits = aggregate(prob, dim=1)
        return SegmentOutput(logits, torch.softmax(logits, dim=1)[:, 1:], boundary)
