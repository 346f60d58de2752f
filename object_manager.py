"""The objects of one video, and the three ways the engine numbers them.

An object has an id (its value in the masks, 1..255), an output channel (``k >= 1`` in the
probabilities, channel 0 being the background) and a memory slot (``k - 1``: the memory
stores no background). ``ObjectManager`` is the one place that converts between them, so
the engine and the memory never do ±1 arithmetic of their own. Objects keep the order they
were added in: the readers give every object of a video up front, sorted, as the reference
orders its channels; ids first seen in a later annotation are appended.
"""

from __future__ import annotations

from typing import Iterable

import torch

MAX_OBJECT_ID = 255  # masks are uint8 index maps


class ObjectManager:
    def __init__(self, ids: Iterable[int] = ()):
        self.ids: list[int] = []  # channel k >= 1 (slot k - 1) is object ids[k - 1]
        self.add(ids)

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, ids: Iterable[int]) -> list[int]:
        """Objects not seen yet get the next channels; returns the new ids."""
        new: list[int] = []
        for obj in ids:
            obj = int(obj)
            if not 0 < obj <= MAX_OBJECT_ID:
                raise ValueError(f"object ids must be 1..{MAX_OBJECT_ID} (0 is the background), got {obj}")
            if obj not in self.ids and obj not in new:
                new.append(obj)
        self.ids += new
        return new

    def channels(self, ids: Iterable[int]) -> list[int]:
        """Output channels of the objects ``ids``."""
        return [self.ids.index(int(obj)) + 1 for obj in ids]

    @staticmethod
    def slots(channels: Iterable[int]) -> list[int]:
        """Memory slots of output channels."""
        return [channel - 1 for channel in channels]

    @staticmethod
    def channels_of_slots(slots: Iterable[int]) -> list[int]:
        return [slot + 1 for slot in slots]

    def id_lookup(self, device: torch.device | str) -> torch.Tensor:
        """channel -> object id (0 for the background), for an argmax over channels."""
        return torch.tensor([0] + self.ids, dtype=torch.uint8, device=device)
