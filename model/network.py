"""The GSFM network: one set of weights with the training verbs and the inference verbs.

Training (reference ``model/network.py``): ``encode_key`` over flattened clips,
``encode_value``, ``segment`` (full-softmax memory read, two objects per sample).
Inference (reference ``model/eval_network.py``): ``encode_key`` on one frame,
``encode_value_objects`` for the K objects of that frame, ``decode_objects`` on a memory
readout. Parameter and buffer names equal the released checkpoints.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from model.memory_util import affinity_logits, aggregate, softmax_full
from model.modules import Decoder, KeyEncoder, KeyProjection, ValueEncoder
from model.spectral import LFM

KEY_DIM = 64
VALUE_DIM = 512
STRIDE = 16  # of the coarsest features: inputs are padded to multiples of it


def other_objects(masks: torch.Tensor) -> torch.Tensor:
    """(K, 1, H, W) masks -> for each object the sum of the other objects' masks (zeros for
    one object); summed explicitly (not total - own) to match the reference bit for bit."""
    k = masks.shape[0]
    if k == 1:
        return torch.zeros_like(masks)
    return torch.stack([masks[[j for j in range(k) if j != i]].sum(0) for i in range(k)])


class KeyFeatures(NamedTuple):
    k16: torch.Tensor  # (N, 64, H/16, W/16) memory/query key
    f16_thin: torch.Tensor  # (N, 512, H/16, W/16) query value
    f16: torch.Tensor  # (N, 1024, H/16, W/16) after LFM, fed to the value encoder
    f8: torch.Tensor
    f4: torch.Tensor


class SegmentOutput(NamedTuple):
    logits: torch.Tensor  # (B, K+1, H, W) aggregated logits, background first
    prob: torch.Tensor  # (B, K, H, W) object probabilities after aggregation
    boundary: torch.Tensor  # (B, K, H, W) boundary logits (times the selector)


class GSFM(nn.Module):
    def __init__(self, single_object: bool = False, imagenet: tuple[dict, dict] | None = None):
        """``imagenet``: (ResNet-50 state dict, ResNet-18 state dict) from torchvision, or
        None for the reference's fresh initialisation."""
        super().__init__()
        self.single_object = single_object
        resnet50_state, resnet18_state = imagenet if imagenet is not None else (None, None)
        # Registration order fixes the checkpoint key order; keep it.
        self.key_encoder = KeyEncoder(resnet50_state)
        self.value_encoder = ValueEncoder(1 if single_object else 2, resnet18_state)
        self.key_proj = KeyProjection(1024, KEY_DIM)
        self.key_comp = nn.Conv2d(1024, 512, kernel_size=3, padding=1)
        self.decoder = Decoder()
        self.lfm = LFM(1024)

    def use_channels_last(self, enabled: bool = True) -> GSFM:
        """Put the convolution weights in the channels-last (NHWC) layout, or back in the
        plain one (``enabled=False``). A convolution with channels-last weights returns
        channels-last activations, so the whole network follows, except the spectral filter
        modules: they make their input plain and convert their output back (their 1x1
        weights are the same in both layouts). The values do not change, only how they are
        laid out: the fast float16/bfloat16 kernels (cuDNN's tensor cores, oneDNN's AMX)
        want channels-last, while in float32 the plain layout gives the exact reference
        outputs. Parameters stay the same objects (an optimiser keeps them)."""
        layout = torch.channels_last if enabled else torch.contiguous_format
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.data = module.weight.data.contiguous(memory_format=layout)
        return self

    # ---- shared verbs -------------------------------------------------------------
    def encode_key(self, frame: torch.Tensor) -> KeyFeatures:
        """frame (N, 3, H, W) normalised, H and W multiples of STRIDE."""
        f16, f8, f4 = self.key_encoder(frame)
        f16 = self.lfm(f16)  # before key_proj and key_comp; also what the value encoder sees
        return KeyFeatures(self.key_proj(f16), self.key_comp(f16), f16, f8, f4)

    def encode_value(
        self, frame: torch.Tensor, key_f16: torch.Tensor, mask: torch.Tensor, other_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(N, 512, H/16, W/16) memory value of one object per batch entry."""
        if not self.single_object and other_mask is None:
            raise ValueError("the multi-object network needs the other objects' mask")
        return self.value_encoder(frame, key_f16, mask, None if self.single_object else other_mask)

    def decode(
        self,
        readout: torch.Tensor,
        f16_thin: torch.Tensor,
        f8: torch.Tensor,
        f4: torch.Tensor,
        with_boundary: bool = True,
        objects_per_pass: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Mask (and boundary) logits from a memory readout (N, 512, h, w) and the query."""
        return self.decoder(torch.cat([readout, f16_thin], 1), f8, f4, with_boundary, objects_per_pass)

    # ---- training verbs -----------------------------------------------------------
    def encode_memory_values(
        self, frame: torch.Tensor, key_f16: torch.Tensor, mask1: torch.Tensor, mask2: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Memory values of one clip frame: (B, 512, 1, h, w) for the single-object network,
        (B, 2, 512, 1, h, w) for two objects (object 1 with object 2 as "other", and vice
        versa). Both objects go through one value-encoder call (the reference makes two)."""
        if self.single_object:
            return self.encode_value(frame, key_f16, mask1).unsqueeze(2)
        b = frame.shape[0]
        value = self.encode_value(
            frame.repeat(2, 1, 1, 1), key_f16.repeat(2, 1, 1, 1), torch.cat([mask1, mask2]), torch.cat([mask2, mask1])
        )
        return value.view(2, b, *value.shape[1:]).transpose(0, 1).unsqueeze(3)

    def segment(
        self,
        qk16: torch.Tensor,
        qv16: torch.Tensor,
        qf8: torch.Tensor,
        qf4: torch.Tensor,
        mk16: torch.Tensor,
        mv16: torch.Tensor,
        selector: torch.Tensor | None = None,
    ) -> SegmentOutput:
        """Training segmentation of one query frame per sample.

        qk16 (B, 64, h, w); mk16 (B, 64, T, h, w); mv16 (B, 512, T, h, w) for one object or
        (B, 2, 512, T, h, w) for two; selector (B, 2) marks which objects exist.
        """
        b, _, h, w = qk16.shape
        affinity = softmax_full(affinity_logits(mk16.flatten(2), qk16.flatten(2)))
        values = mv16.unsqueeze(1) if self.single_object else mv16  # B, O, C, T, h, w
        num_objects = values.shape[1]
        # All objects in one batch, object-major; the same affinity reads each object's values
        # and the decoder shares the query's skip features (the reference loops over objects).
        values = values.transpose(0, 1).flatten(3).flatten(0, 1)  # O*B, C, T*h*w
        affinity = affinity.repeat(num_objects, 1, 1)
        readout = torch.bmm(values, affinity).view(num_objects * b, VALUE_DIM, h, w)
        mask_logit, boundary = self.decode(readout, qv16.repeat(num_objects, 1, 1, 1), qf8, qf4)
        prob = torch.sigmoid(mask_logit.view(num_objects, b, *mask_logit.shape[-2:]).transpose(0, 1))
        boundary = boundary.view(num_objects, b, *boundary.shape[-2:]).transpose(0, 1)
        if not self.single_object:
            prob = prob * selector[:, :, None, None]
            boundary = boundary * selector[:, :, None, None]
        logits = aggregate(prob, dim=1)
        return SegmentOutput(logits, torch.softmax(logits, dim=1)[:, 1:], boundary)

    # ---- inference verbs ----------------------------------------------------------
    def encode_value_objects(self, frame: torch.Tensor, key_f16: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Values of K objects of one frame: frame (1, 3, H, W), key_f16 (1, 1024, h, w),
        masks (K, 1, H, W) -> (K, 512, h, w). "Others" = sum of the other objects' masks."""
        k = masks.shape[0]
        return self.encode_value(
            frame.expand(k, -1, -1, -1), key_f16.expand(k, -1, -1, -1), masks, other_objects(masks)
        )

    def decode_objects(
        self, readout: torch.Tensor, f16_thin: torch.Tensor, f8: torch.Tensor, f4: torch.Tensor
    ) -> torch.Tensor:
        """Object probabilities (K, 1, H, W) from K readouts of one query frame.

        The objects are decoded one at a time, sharing the frame's skip convolutions: on CPU
        as fast as one batch of K, and the decoder's temporary memory does not grow with K
        (docs/PERFORMANCE.md, "Where the difference comes from")."""
        mask_logit, _ = self.decode(
            readout, f16_thin.expand(readout.shape[0], -1, -1, -1), f8, f4, with_boundary=False, objects_per_pass=1
        )
        return torch.sigmoid(mask_logit)
