"""The inference memory: keys of memorised frames and each object's values.

One bank serves all objects of a video. Objects may join later (YouTube-VOS): an object
reads only the memory frames written since it joined, exactly as the reference's separate
per-object banks do. Objects that joined at the same frame share one affinity (as all
objects of a DAVIS video share the reference's single bank). Storage grows by doubling
instead of concatenating at every write.
"""
from __future__ import annotations

import torch

from model.memory_util import affinity_logits, topk_dense


class MemoryBank:
    def __init__(self, num_objects: int, top_k: int = 50):
        self.num_objects = num_objects
        self.top_k = top_k
        self.size = 0  # permanent memory positions in use
        self._keys: torch.Tensor | None = None  # (CK, capacity)
        self._values: torch.Tensor | None = None  # (K, CV, capacity), zero before an object joins
        self.start: dict[int, int] = {}  # object index (0-based) -> first position it reads
        self.temp_key: torch.Tensor | None = None  # (CK, hw) "last frame" entry
        self.temp_values: torch.Tensor | None = None  # (K, CV, hw)

    def _reserve(self, extra: int, like_key: torch.Tensor, like_value: torch.Tensor) -> None:
        needed = self.size + extra
        if self._keys is not None and needed <= self._keys.shape[1]:
            return
        capacity = max(needed, 2 * (self._keys.shape[1] if self._keys is not None else 0))
        keys = like_key.new_zeros(like_key.shape[0], capacity)
        values = like_value.new_zeros(self.num_objects, like_value.shape[1], capacity)
        if self._keys is not None:
            keys[:, :self.size] = self._keys[:, :self.size]
            values[:, :, :self.size] = self._values[:, :, :self.size]
        self._keys, self._values = keys, values

    def add_memory(self, key: torch.Tensor, values: torch.Tensor, objects: list[int], is_temp: bool = False) -> None:
        """key (1, CK, h, w); values (len(objects), CV, h, w) for the given 0-based objects.

        Any temporary entry is dropped first (the reference flushes it at every write);
        objects seen for the first time start reading from this frame.
        """
        key = key.flatten(2)[0]
        values = values.flatten(2)
        self.temp_key = self.temp_values = None
        if is_temp:
            self.temp_key = key
            self.temp_values = values.new_zeros(self.num_objects, *values.shape[1:])
            self.temp_values[objects] = values
            return
        n = key.shape[1]
        self._reserve(n, key, values)
        self._keys[:, self.size:self.size + n] = key
        self._values[objects, :, self.size:self.size + n] = values
        for obj in objects:
            self.start.setdefault(obj, self.size)
        self.size += n

    @property
    def keys(self) -> torch.Tensor:
        return self._keys[:, :self.size]

    def read(self, query_key: torch.Tensor, objects: list[int]) -> torch.Tensor:
        """Top-k memory readout (len(objects), CV, h, w) for the query key (1, CK, h, w)."""
        _, _, h, w = query_key.shape
        qk = query_key.flatten(2)
        out = query_key.new_empty(len(objects), self._values.shape[1], h * w)
        for start in sorted({self.start[o] for o in objects}):
            group = [i for i, o in enumerate(objects) if self.start[o] == start]
            group_objects = [objects[i] for i in group]
            mk = self._keys[:, start:self.size]
            mv = self._values[group_objects, :, start:self.size]
            if self.temp_key is not None:
                mk = torch.cat([mk, self.temp_key], 1)
                mv = torch.cat([mv, self.temp_values[group_objects]], 2)
            affinity = topk_dense(affinity_logits(mk.unsqueeze(0), qk), self.top_k)  # (1, N, hw)
            out[group] = torch.bmm(mv, affinity.expand(len(group), -1, -1))
        return out.view(len(objects), -1, h, w)
