"""The propagation engine: one video, one frame at a time.

``InferenceCore.step`` owns a frame's whole path: the frame as it comes (any size) is
normalised, resized when the settings ask for it, padded to a multiple of the network's
stride, segmented from memory, and its probabilities are returned at the input size.
Nothing but the memory bank is kept between frames. The rules are the reference's
(DAVIS and YouTube-VOS alike):
- an annotated frame sets its objects (overriding earlier predictions under them; an object
  it re-labels takes its new mask), is aggregated with the background and always becomes
  permanent memory;
- any other frame is segmented from memory and becomes permanent memory when at least
  ``mem_every`` frames have passed since the last memory frame (for DAVIS, which starts at
  frame 0, that is ``t % mem_every == 0``), or the temporary "last frame" entry when
  ``include_last``; the last frame of the video and an annotated frame are never written
  from their prediction;
- a frame whose output is not needed, that is not annotated and not due as memory is
  skipped.

    core = InferenceCore(network)
    prob = core.step(frame, annotation)  # (K+1, H, W), background first
    mask = core.prob_to_mask(prob)       # (H, W) uint8 object ids
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.transforms import InterpolationMode

from inference_backend import Backend, as_backend
from inference_memory_bank import MemoryBank
from model.memory_util import aggregate_prob
from model.network import GSFM, STRIDE, KeyFeatures
from object_manager import ObjectManager
from util.configuration import InferenceConfig
from util.precision import autocast_dtype, autocast_enabled
from util.tensor_util import normalise, pad_divide_by, resize_short_side, unpad


class InferenceCore:
    def __init__(
        self,
        network: GSFM | Backend,
        config: InferenceConfig = InferenceConfig(),
        object_ids: Iterable[int] = (),
        num_frames: int | None = None,
    ):
        """``object_ids``: objects known in advance, in channel order (the benchmark readers
        give every object of the video, sorted, as the reference orders them); others are
        added in the order the annotations bring them. ``num_frames``: the video length
        when known, so the memory is allocated once at the size the schedule needs (it
        grows if that is exceeded). ``network``: a ``GSFM`` (run by PyTorch) or a backend
        (``inference_backend``: ONNX Runtime) that makes the three network calls."""
        self.backend = as_backend(network)
        self.config = config
        self.device = self.backend.device
        # --amp: autocast (not on a CPU without bfloat16 instructions, unless insisted on), with
        # channels-last convolutions; float32 keeps the plain layout (exact outputs)
        self.amp = autocast_enabled(self.device, config.amp, config.amp_anyway)
        self.backend.use_channels_last(self.amp if config.channels_last is None else config.channels_last)
        self.backend.use_winograd(config.winograd)
        reserved = 0
        if num_frames is not None:  # first frame + every mem_every-th + temp (+ one written before an eviction)
            reserved = num_frames // config.mem_every + 2
            if config.max_memory_frames is not None:
                reserved = min(reserved, config.max_memory_frames + 2)
        self.memory = MemoryBank(0, config.top_k, reserved_frames=reserved, max_frames=config.max_memory_frames)
        self.objects = ObjectManager()
        self.add_objects(object_ids)
        self.last_mem_frame = 0
        self.frame_index = -1

    @property
    def object_ids(self) -> list[int]:
        """The object of each output channel k >= 1: ``object_ids[k - 1]``."""
        return self.objects.ids

    @property
    def num_objects(self) -> int:
        return len(self.objects)

    def add_objects(self, ids: Iterable[int]) -> None:
        """Output channels for objects not seen yet (segmented once an annotation sets them)."""
        self.memory.add_objects(len(self.objects.add(ids)))

    @torch.inference_mode()
    def step(
        self,
        image: np.ndarray | torch.Tensor,
        mask: np.ndarray | torch.Tensor | None = None,
        objects: Iterable[int] | None = None,
        *,
        end: bool = False,
        need_output: bool = True,
    ) -> torch.Tensor | None:
        """Process the next frame of the video.

        ``image``: (H, W, 3) uint8 array, (3, H, W) uint8 tensor, or (3, H, W) float tensor in
        [0, 1]. ``mask``: an optional (H, W) index mask annotating this frame (0 background,
        else object ids); ``objects``: the ids it annotates (default: every id in it).
        New ids become new objects; annotated known ones take the new mask. ``end``: the last
        frame (not written to memory). ``need_output``: False lets a frame that is not due as
        memory be skipped.

        Returns (K+1, H, W) float32 probabilities on the network's device (channel 0 the
        background, channel k object ``object_ids[k-1]``), all background before any object
        was annotated; None for a skipped frame.
        """
        self.frame_index += 1
        frame = normalise(image, self.device)
        size = tuple(frame.shape[-2:])
        annotation = None if mask is None else self._annotation(mask, objects, size)
        is_mem = self.frame_index - self.last_mem_frame >= self.config.mem_every
        segment = self.memory.has_objects and (
            is_mem or self.config.include_last or need_output or annotation is not None
        )
        if not segment and annotation is None:  # nothing to compute: no resize, no padding
            if self.memory.has_objects or not need_output:
                return None  # skipped
            prob = torch.zeros(self.num_objects + 1, *size, device=self.device)
            prob[0] = 1  # nothing annotated yet: all background
            return prob
        padded, pad = self._prepare(frame.unsqueeze(0), InterpolationMode.BICUBIC)
        prob, keys = None, None
        with torch.autocast(self.device.type, dtype=autocast_dtype(self.device), enabled=self.amp):
            if segment:
                keys = self.backend.encode_key(padded)
                prob = self._segment(padded, keys, is_mem, write=not (end or annotation is not None))
            if annotation is not None:
                prob = self._label(padded, *annotation, prob, keys)
        return self._output(prob.float(), pad, size)

    def prob_to_mask(self, prob: torch.Tensor) -> np.ndarray:
        """(K+1, H, W) probabilities from ``step`` -> (H, W) uint8 object ids (argmax; ties go
        to the lowest channel)."""
        # max's indices, not argmax: the same first-maximum rule, and argmax's CPU kernel
        # reduces over a few channels of a large map several times slower
        return self.objects.id_lookup(prob.device)[prob.max(dim=0).indices].cpu().numpy()

    # ---- a frame's path ------------------------------------------------------------
    def _prepare(self, x: torch.Tensor, interpolation: InterpolationMode) -> tuple[torch.Tensor, tuple]:
        """(N, C, H, W) at the input size -> padded at the processing size: the benchmark's
        resize (YouTube-VOS: short side 480), then the --max_size cap (masks: nearest)."""
        config = self.config
        if config.short_side is not None:
            x = resize_short_side(x, config.short_side, interpolation, config.antialias)
        if config.max_size is not None and min(x.shape[-2:]) > config.max_size:
            nearest = interpolation == InterpolationMode.NEAREST
            x = resize_short_side(x, config.max_size, interpolation if nearest else InterpolationMode.BILINEAR)
        return pad_divide_by(x, STRIDE)

    def _annotation(
        self, mask: np.ndarray | torch.Tensor, objects: Iterable[int] | None, size: tuple[int, int]
    ) -> tuple[torch.Tensor, list[int]]:
        """Padded (K', 1, H', W') one-hot masks of the annotated objects, and their channels."""
        labels = torch.as_tensor(np.asarray(mask) if isinstance(mask, np.ndarray) else mask, device=self.device)
        if tuple(labels.shape) != size:
            raise ValueError(f"annotation of size {tuple(labels.shape)} for a frame of size {size}")
        ids = [int(i) for i in (torch.unique(labels).tolist() if objects is None else objects) if int(i) != 0]
        self.add_objects(ids)
        one_hot = (
            torch.stack([labels == obj for obj in ids]).float().unsqueeze(1)
            if ids
            else torch.zeros(0, 1, *size, device=self.device)
        )
        padded, _ = self._prepare(one_hot, InterpolationMode.NEAREST)
        return padded, self.objects.channels(ids)

    def _segment(self, image: torch.Tensor, keys: KeyFeatures, is_mem: bool, write: bool) -> torch.Tensor:
        """Padded (K+1, 1, H', W') probabilities of a frame from memory; written to memory
        when due."""
        readout = self.memory.read(keys.k16)  # the objects with memory, in memory.objects' order
        obj_prob = aggregate_prob(self.backend.decode_objects(readout, keys.f16_thin, keys.f8, keys.f4))
        prob = torch.zeros(self.num_objects + 1, *obj_prob.shape[1:], device=obj_prob.device)
        prob[0] = obj_prob[0]
        prob[self.objects.channels_of_slots(self.memory.objects)] = obj_prob[1:]
        if write and (is_mem or self.config.include_last):
            value = self.backend.encode_value_objects(image, keys.f16, obj_prob[1:])
            self.memory.add_memory(keys.k16, value, self.memory.objects, is_temp=not is_mem)
            if is_mem:
                self.last_mem_frame = self.frame_index
        return prob

    def _label(
        self,
        image: torch.Tensor,
        masks: torch.Tensor,
        channels: list[int],
        prob: torch.Tensor | None,
        keys: KeyFeatures | None,
    ) -> torch.Tensor:
        """An annotated frame: the annotation replaces the prediction under it, the frame is
        re-aggregated and becomes permanent memory for every object set so far."""
        if prob is None:  # not segmented: the annotation alone sets it
            prob = torch.zeros(self.num_objects + 1, 1, *image.shape[-2:], device=self.device)
        prob[:, masks.sum(0) > 0.5] = 0
        prob[channels] = masks
        prob = aggregate_prob(prob[1:])
        # the objects with memory, then those it brings (in the order the reference enables them)
        slots = self.memory.objects + [s for s in self.objects.slots(channels) if s not in self.memory.objects]
        if keys is None:
            keys = self.backend.encode_key(image)
        value = self.backend.encode_value_objects(image, keys.f16, prob[self.objects.channels_of_slots(slots)])
        self.memory.add_memory(keys.k16, value, slots)
        self.last_mem_frame = self.frame_index
        return prob

    @staticmethod
    def _output(prob: torch.Tensor, pad: tuple, size: tuple[int, int]) -> torch.Tensor:
        """Padded (K+1, 1, H', W') -> (K+1, H, W) at the input size: crop the padding, resize
        bilinearly."""
        prob = unpad(prob, pad)
        if tuple(prob.shape[-2:]) != size:
            prob = F.interpolate(prob, size, mode="bilinear", align_corners=False)
        return prob[:, 0]
