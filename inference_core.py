"""The propagation engine: one video, one frame at a time.

Frames stream in, probabilities stream out; nothing but the memory bank is kept between
frames. The rules are the reference's (DAVIS and YouTube-VOS alike):
- a labelled frame sets its objects (overriding earlier predictions under them), is
  aggregated with the background and always becomes permanent memory;
- any other frame is segmented from memory and becomes permanent memory when at least
  ``mem_every`` frames have passed since the last memory frame (for DAVIS, which starts at
  frame 0, that is ``t % mem_every == 0``), or the temporary "last frame" entry when
  ``include_last``; the last frame of the video and a frame that is about to be labelled
  are never written;
- a frame that is neither required for output nor due as memory is skipped.
"""
from __future__ import annotations

from typing import Container

import torch
import torch.nn.functional as F

from inference_memory_bank import MemoryBank
from model.memory_util import aggregate_prob
from model.network import GSFM
from util.tensor_util import pad_divide_by, unpad

INITIAL_BACKGROUND = 1e-7  # probability the reference gives the background of an unprocessed frame


class InferenceCore:
    def __init__(self, network: GSFM, num_objects: int, top_k: int = 50, mem_every: int = 3,
                 include_last: bool = False, required_frames: Container[int] | None = None,
                 num_frames: int | None = None, max_memory_frames: int | None = None):
        """``num_objects`` K; ``required_frames`` the frame indices whose output is needed
        (None: all); ``num_frames`` the video length when known, so the memory storage is
        allocated once at the size the DAVIS schedule needs (it grows if that is exceeded).
        ``max_memory_frames``: keep at most this many permanent memory frames (the first
        frame and the most recent ones) so memory stays flat on long videos; this changes
        the outputs (off by default, as in the reference)."""
        if max_memory_frames is not None and max_memory_frames < 2:
            raise ValueError(f"max_memory_frames must be >= 2 (the first frame and one more), got {max_memory_frames}")
        if mem_every < 1:
            raise ValueError(f"mem_every must be >= 1, got {mem_every}")
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        self.network = network
        self.num_objects = num_objects
        self.mem_every = mem_every
        self.include_last = include_last
        self.required_frames = required_frames
        reserved = 0
        if num_frames is not None:  # first frame + every mem_every-th + temp (+ one written before an eviction)
            reserved = num_frames // mem_every + 2
            if max_memory_frames is not None:
                reserved = min(reserved, max_memory_frames + 2)
        self.memory = MemoryBank(num_objects, top_k, reserved_frames=reserved, max_frames=max_memory_frames)
        self.enabled: list[int] = []  # 1-based object indices that have memory
        self.last_mem_frame = 0
        self.frame_index = -1
        self.pad: tuple[int, int, int, int] | None = None

    def initial_prob(self, shape: tuple[int, int], device: torch.device) -> torch.Tensor:
        """(K+1, 1, H, W) probabilities of a frame that was never processed."""
        prob = torch.zeros(self.num_objects + 1, 1, *shape, device=device)
        prob[0] = INITIAL_BACKGROUND
        return prob

    def _is_required(self, index: int) -> bool:
        return self.required_frames is None or index in self.required_frames

    @torch.inference_mode()
    def step(self, image: torch.Tensor, mask: torch.Tensor | None = None, new_objects: list[int] = (),
             end: bool = False) -> torch.Tensor | None:
        """Process the next frame.

        image (3, H, W) normalised, unpadded, on the network's device. ``mask`` (K, H, W)
        one-hot masks of this frame's annotation and ``new_objects`` the 1-based objects it
        introduces (may be empty when the frame only re-labels). ``end``: the last frame of
        the video. Returns the padded (K+1, 1, H', W') probabilities (background first), or
        None for a skipped frame (its output is ``initial_prob``).
        """
        self.frame_index += 1
        t = self.frame_index
        image, self.pad = pad_divide_by(image.unsqueeze(0), 16)
        prob, keys = None, None
        labelled = mask is not None
        if self.enabled:
            is_mem = t - self.last_mem_frame >= self.mem_every
            if is_mem or self.include_last or self._is_required(t):
                keys = self.network.encode_key(image)
                objects = [o - 1 for o in self.enabled]
                readout = self.memory.read(keys.k16, objects)
                obj_prob = aggregate_prob(self.network.decode_objects(readout, keys.f16_thin, keys.f8, keys.f4))
                prob = torch.zeros(self.num_objects + 1, *obj_prob.shape[1:], device=obj_prob.device)
                prob[0] = obj_prob[0]
                prob[self.enabled] = obj_prob[1:]
                if not (end or labelled) and (is_mem or self.include_last):
                    value = self.network.encode_value_objects(image, keys.f16, obj_prob[1:])
                    self.memory.add_memory(keys.k16, value, objects, is_temp=not is_mem)
                    if is_mem:
                        self.last_mem_frame = t
        if labelled:
            prob = self._label(image, mask, list(new_objects), prob, keys)
        return prob

    def _label(self, image: torch.Tensor, mask: torch.Tensor, new_objects: list[int], prob: torch.Tensor | None,
               keys) -> torch.Tensor:
        mask, _ = pad_divide_by(mask.unsqueeze(1).float(), 16)  # K, 1, H', W'
        if prob is None:
            prob = self.initial_prob(mask.shape[-2:], mask.device)
        region = mask.sum(0) > 0.5
        prob[:, region] = 0
        if new_objects:
            prob[new_objects] = mask[[o - 1 for o in new_objects]]
        prob = aggregate_prob(prob[1:])
        self.enabled += [o for o in new_objects if o not in self.enabled]
        if keys is None:
            keys = self.network.encode_key(image)
        value = self.network.encode_value_objects(image, keys.f16, prob[self.enabled])
        self.memory.add_memory(keys.k16, value, [o - 1 for o in self.enabled])
        self.last_mem_frame = self.frame_index
        return prob


def output_prob(prob: torch.Tensor, pad: tuple[int, int, int, int], size: tuple[int, int]) -> torch.Tensor:
    """Padded (K+1, 1, H', W') probabilities -> (K+1, 1, H, W) at the output ``size``: crop the
    padding, resize bilinearly."""
    prob = unpad(prob, pad)
    if tuple(prob.shape[-2:]) != tuple(size):
        prob = F.interpolate(prob, size, mode="bilinear", align_corners=False)
    return prob


def prob_to_mask(prob: torch.Tensor, pad: tuple[int, int, int, int], size: tuple[int, int]) -> torch.Tensor:
    """Padded (K+1, 1, H', W') probabilities -> (H, W) uint8 indices at ``size`` (argmax after
    ``output_prob``; ties go to the lowest index)."""
    return torch.argmax(output_prob(prob, pad, size)[:, 0], dim=0).to(torch.uint8)
