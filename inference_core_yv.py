"""YouTube-VOS face of the propagation engine: objects that appear on later frames.

The engine is ``inference_core.InferenceCore``; this module adds what differs for
YouTube-VOS: labels that need not be consecutive (mapped to 1..K and back), the frames the
benchmark requires (only those and the memory frames are computed), and the per-frame
inputs built from sparse annotations.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

from inference_core import InferenceCore


class LabelMapping:
    """Dataset labels (e.g. {2, 5}) <-> consecutive object indices 1..K."""

    def __init__(self, labels: Iterable[int]):
        self.labels = sorted(int(label) for label in labels if label != 0)
        self.index = {label: i + 1 for i, label in enumerate(self.labels)}

    def __len__(self) -> int:
        return len(self.labels)

    def one_hot(self, label_map: np.ndarray) -> torch.Tensor:
        """(H, W) labels -> (K, H, W) float one-hot over all K objects of the video."""
        return torch.from_numpy(np.stack([label_map == label for label in self.labels]).astype(np.float32))

    def objects_in(self, label_map: np.ndarray) -> list[int]:
        return [self.index[int(label)] for label in np.unique(label_map) if label in self.index]

    def to_labels(self, indices: np.ndarray) -> np.ndarray:
        """(H, W) object indices -> dataset labels."""
        lut = np.array([0] + self.labels, dtype=np.uint8)
        return lut[indices]


def InferenceCoreYV(network, num_objects: int, top_k: int = 50, mem_every: int = 3, include_last: bool = False,
                    req_frames: Iterable[int] | None = None) -> InferenceCore:
    """The engine with the reference YouTube-VOS signature (``req_frames``: indices of the
    frames the benchmark asks for; other frames are computed only when due as memory)."""
    return InferenceCore(network, num_objects, top_k, mem_every, include_last,
                         None if req_frames is None else set(req_frames))
