"""The oracle: a plain transcription of the reference's DAVIS inference.

As the reference's ``inference_core.py`` / ``model/eval_network.py`` do it: the whole
video is held in memory (padded frames and every frame's probabilities), the memory bank
is concatenated at each write and read through the dense top-k affinity matrix, the
decoder also computes the boundary logits that inference then discards. It is meant to be
obviously the reference, not fast: the engine's equivalence test and the speed benchmark
(``scripts/benchmark.py``) compare against it.
"""

from __future__ import annotations

import math

import torch

from model.memory_util import aggregate_prob
from model.network import GSFM
from util.tensor_util import pad_divide_by


class ReferenceMemoryBank:
    def __init__(self, num_objects: int, top_k: int):
        self.num_objects = num_objects
        self.top_k = top_k
        self.mem_k = self.mem_v = self.temp_k = self.temp_v = None

    def add_memory(self, key: torch.Tensor, value: torch.Tensor, is_temp: bool = False) -> None:
        self.temp_k = self.temp_v = None
        key, value = key.flatten(start_dim=2), value.flatten(start_dim=2)
        if self.mem_k is None:
            self.mem_k, self.mem_v = key, value
        elif is_temp:
            self.temp_k, self.temp_v = key, value
        else:
            self.mem_k = torch.cat([self.mem_k, key], 2)
            self.mem_v = torch.cat([self.mem_v, value], 2)

    def match_memory(self, qk: torch.Tensor) -> torch.Tensor:
        k = self.num_objects
        _, _, h, w = qk.shape
        qk = qk.flatten(start_dim=2)
        mk, mv = self.mem_k, self.mem_v
        if self.temp_k is not None:
            mk = torch.cat([self.mem_k, self.temp_k], 2)
            mv = torch.cat([self.mem_v, self.temp_v], 2)
        ck = mk.shape[1]
        a_sq = mk.pow(2).sum(1).unsqueeze(2)
        ab = mk.transpose(1, 2) @ qk
        affinity = (2 * ab - a_sq) / math.sqrt(ck)
        values, indices = torch.topk(affinity, k=self.top_k, dim=1)
        x_exp = values.exp_()
        x_exp /= torch.sum(x_exp, dim=1, keepdim=True)
        affinity.zero_().scatter_(1, indices, x_exp)
        readout = torch.bmm(mv, affinity.expand(k, -1, -1))
        return readout.view(k, -1, h, w)


class ReferenceInferenceCore:
    """images (1, T, 3, H, W) normalised; after ``interact(mask, 0)`` ``prob`` holds the
    (K+1, T, 1, H', W') probabilities of every frame (padded)."""

    def __init__(
        self,
        network: GSFM,
        images: torch.Tensor,
        num_objects: int,
        top_k: int = 50,
        mem_every: int = 3,
        include_last: bool = False,
    ):
        self.network = network
        self.mem_every = mem_every
        self.include_last = include_last
        t = images.shape[1]
        self.images, self.pad = pad_divide_by(images, 16)
        nh, nw = self.images.shape[-2:]
        self.k = num_objects
        self.prob = torch.zeros((self.k + 1, t, 1, nh, nw), dtype=torch.float32, device=images.device)
        self.prob[0] = 1e-7
        self.mem_bank = ReferenceMemoryBank(num_objects, top_k)

    def segment_with_query(self, qk16, qv16, qf8, qf4) -> torch.Tensor:
        k = self.k
        readout = self.mem_bank.match_memory(qk16)
        qv16 = torch.cat([readout, qv16.expand(k, -1, -1, -1)], 1)
        mask_logit, _boundary = self.network.decoder(qv16, qf8.expand(k, -1, -1, -1), qf4.expand(k, -1, -1, -1))
        return torch.sigmoid(mask_logit)

    def do_pass(self, key_k, key_v, idx: int, end_idx: int) -> None:
        self.mem_bank.add_memory(key_k, key_v)
        end = end_idx - 1
        for ti in range(idx + 1, end_idx):
            k16, qv16, qf16, qf8, qf4 = self.network.encode_key(self.images[:, ti])
            out_mask = aggregate_prob(self.segment_with_query(k16, qv16, qf8, qf4))
            self.prob[:, ti] = out_mask
            if ti != end:
                is_mem_frame = ti % self.mem_every == 0
                if self.include_last or is_mem_frame:
                    prev_value = self.network.encode_value_objects(self.images[:, ti], qf16, out_mask[1:])
                    self.mem_bank.add_memory(k16, prev_value, is_temp=not is_mem_frame)

    @torch.no_grad()
    def interact(self, mask: torch.Tensor, frame_idx: int = 0) -> None:
        """mask (K, 1, H, W) one-hot masks of frame ``frame_idx``; propagates to the end."""
        mask, _ = pad_divide_by(mask, 16)
        self.prob[:, frame_idx] = aggregate_prob(mask)
        key_k, _, qf16, _, _ = self.network.encode_key(self.images[:, frame_idx])
        key_v = self.network.encode_value_objects(self.images[:, frame_idx], qf16, self.prob[1:, frame_idx])
        self.do_pass(key_k, key_v, frame_idx, self.images.shape[1])
