"""The inference memory: keys of memorised frames and each object's values.

One bank serves all objects of a video. Objects may join later (YouTube-VOS, or a user's
annotation that brings a new object): an object reads only the memory frames written since
it joined, exactly as the reference's separate per-object banks do. The objects that joined
at the same frame form a group (kept as they join, in ``groups``) and share one affinity,
as all objects of a DAVIS video share the reference's single bank. Objects are memory slots
(``object_manager``: slot k is output channel k + 1).

Storage is position-major, keys (capacity, CK) and values (capacity, K, CV), so a read
multiplies contiguous slices. It is reserved once when the video length is known
(``InferenceCore(num_frames=...)``) and grows by half otherwise, instead of the reference's
concatenation at every write; the temporary "last frame" entry sits just past the
permanent positions, so reading it copies nothing.
"""

from __future__ import annotations

import torch

from model.memory_util import topk_readout


class MemoryBank:
    def __init__(
        self,
        num_objects: int,
        top_k: int = 50,
        max_affinity_elements: int = 2**25,
        reserved_frames: int = 0,
        max_frames: int | None = None,
    ):
        """``max_affinity_elements`` bounds the logits matrix of one read (memory positions x
        query pixels per chunk); it changes memory use and speed, not results.
        ``reserved_frames``: frames to allocate at the first write; ``max_frames``: bounded
        memory (an option that changes outputs)."""
        self.num_objects = num_objects
        self.top_k = top_k
        self.max_affinity_elements = max_affinity_elements
        self.size = 0  # permanent memory positions in use
        self.temp_size = 0  # positions of the temporary entry, stored at [size, size + temp_size)
        self.reserved_frames = reserved_frames  # planned permanent + temporary frames
        self._keys: torch.Tensor | None = None  # (capacity, CK)
        self._values: torch.Tensor | None = None  # (capacity, K, CV), zero before an object joins
        # (first position read, slots that joined there), in joining order
        self.groups: list[tuple[int, list[int]]] = []
        self.max_frames = max_frames

    @property
    def objects(self) -> list[int]:
        """The slots with memory, in the order they joined (the order ``read`` returns)."""
        return [slot for _, slots in self.groups for slot in slots]

    @property
    def has_objects(self) -> bool:
        return bool(self.groups)

    def add_objects(self, count: int) -> None:
        """Room for ``count`` more objects (they read nothing until their first memory frame)."""
        self.num_objects += count
        if self._values is not None and count:
            extra = self._values.new_zeros(self._values.shape[0], count, self._values.shape[2])
            self._values = torch.cat([self._values, extra], 1)

    def _reserve(self, needed: int, key: torch.Tensor, values: torch.Tensor) -> None:
        capacity = 0 if self._keys is None else self._keys.shape[0]
        if needed <= capacity:
            return
        positions_per_frame = key.shape[0]
        capacity = max(needed, capacity + capacity // 2, self.reserved_frames * positions_per_frame)
        # uninitialised: every position is written before it is read, and untouched pages of a
        # large reservation stay off the resident set until the bank reaches them
        keys = key.new_empty(capacity, key.shape[1])
        stored = values.new_empty(capacity, self.num_objects, values.shape[2])
        if self._keys is not None:
            keys[: self.size] = self._keys[: self.size]
            stored[: self.size] = self._values[: self.size]
        self._keys, self._values = keys, stored

    def add_memory(self, key: torch.Tensor, values: torch.Tensor, objects: list[int], is_temp: bool = False) -> None:
        """key (1, CK, h, w); values (len(objects), CV, h, w) for the given slots.

        Any temporary entry is dropped first (the reference flushes it at every write);
        objects seen for the first time join here: they start reading from this frame.
        """
        key = key.flatten(2)[0].t()  # (hw, CK)
        values = values.flatten(2).permute(2, 0, 1)  # (hw, len(objects), CV)
        n = key.shape[0]
        self.temp_size = 0
        self._reserve(self.size + n, key, values)
        self._keys[self.size : self.size + n] = key
        self._values[self.size : self.size + n] = 0
        self._values[self.size : self.size + n, objects] = values
        if is_temp:
            self.temp_size = n
            return
        joining = [slot for slot in objects if slot not in self.objects]
        if joining:
            self.groups.append((self.size, joining))
        self.size += n
        if self.max_frames is not None and self.size > self.max_frames * n:
            self._evict_oldest(n)

    def _evict_oldest(self, n: int) -> None:
        """Bounded memory: drop the oldest frame that is no object's first frame (those stay,
        as the reference's first frame always does)."""
        firsts = {start for start, _ in self.groups}
        victim = next((p for p in range(0, self.size, n) if p not in firsts), None)
        if victim is None:
            return
        self._keys[victim : self.size - n] = self._keys[victim + n : self.size].clone()
        self._values[victim : self.size - n] = self._values[victim + n : self.size].clone()
        self.size -= n
        self.groups = [(start - n if start > victim else start, slots) for start, slots in self.groups]

    def read(self, query_key: torch.Tensor) -> torch.Tensor:
        """Top-k memory readout (len(objects), CV, h, w) of every object with memory, in
        ``objects`` order, for the query key (1, CK, h, w): one affinity per group."""
        _, _, h, w = query_key.shape
        query = query_key.flatten(2)[0].t()  # (hw, CK)
        end = self.size + self.temp_size
        cv = self._values.shape[2]
        out = query.new_empty(h * w, len(self.objects), cv, dtype=torch.float32)
        first = 0  # the group's place in the output
        for start, slots in self.groups:
            values = self._values[start:end]
            if slots != list(range(self.num_objects)):
                values = values[:, slots]
            readout = topk_readout(
                query, self._keys[start:end], values.reshape(end - start, -1), self.top_k, self.max_affinity_elements
            )
            out[:, first : first + len(slots)] = readout.view(h * w, len(slots), cv)
            first += len(slots)
        return out.permute(1, 2, 0).reshape(len(self.objects), cv, h, w)
