"""Building blocks of GSFM (names match the released checkpoints)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model import resnet
from model.spectral import HFM


class ResBlock(nn.Module):
    def __init__(self, indim: int, outdim: int | None = None):
        super().__init__()
        outdim = indim if outdim is None else outdim
        # A 3x3 conv skip only when the width changes (absent keys otherwise).
        self.downsample = None if indim == outdim else nn.Conv2d(indim, outdim, kernel_size=3, padding=1)
        self.conv1 = nn.Conv2d(indim, outdim, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(outdim, outdim, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.conv2(F.relu(self.conv1(F.relu(x))))
        if self.downsample is not None:
            x = self.downsample(x)
        return x + r


class BasicConv(nn.Module):
    """A conv wrapper kept only for the checkpoint name ``...spatial.conv``."""

    def __init__(self, in_planes: int, out_planes: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(in_planes, out_planes, kernel_size, padding=(kernel_size - 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class ChannelGate(nn.Module):
    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels, channels // reduction),
            nn.ReLU(),
            nn.Linear(channels // reduction, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(F.adaptive_avg_pool2d(x, 1))
        mx = self.mlp(F.adaptive_max_pool2d(x, 1))
        return x * torch.sigmoid(avg + mx)[:, :, None, None]


class SpatialGate(nn.Module):
    def __init__(self):
        super().__init__()
        self.spatial = BasicConv(2, 1, 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.max(dim=1, keepdim=True)[0], x.mean(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))


class CBAM(nn.Module):
    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.ChannelGate = ChannelGate(channels, reduction)
        self.SpatialGate = SpatialGate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.SpatialGate(self.ChannelGate(x))


class FeatureFusionBlock(nn.Module):
    def __init__(self, indim: int, outdim: int):
        super().__init__()
        self.block1 = ResBlock(indim, outdim)
        self.attention = CBAM(outdim)
        self.block2 = ResBlock(outdim, outdim)

    def forward(self, value_f16: torch.Tensor, key_f16: torch.Tensor) -> torch.Tensor:
        x = self.block1(torch.cat([value_f16, key_f16], 1))
        return self.block2(x + self.attention(x))


class KeyEncoder(nn.Module):
    """ResNet-50 stem + 3 stages; the network applies LFM to f16 afterwards."""

    def __init__(self, imagenet_state: dict | None = None):
        super().__init__()
        trunk = resnet.resnet50_trunk()
        if imagenet_state is not None:
            resnet.load_imagenet_weights(trunk, imagenet_state)
        self.conv1, self.bn1, self.relu, self.maxpool = trunk.conv1, trunk.bn1, trunk.relu, trunk.maxpool
        self.res2 = trunk.layer1  # checkpoint name of the first stage
        self.layer2 = trunk.layer2
        self.layer3 = trunk.layer3

    def forward(self, frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(frame))))
        f4 = self.res2(x)
        f8 = self.layer2(f4)
        f16 = self.layer3(f8)
        return f16, f8, f4


class ValueEncoder(nn.Module):
    """ResNet-18 on image + mask(s), fused with the key encoder's f16.

    ``extra_chan`` is 1 for the single-object network (mask) and 2 for the multi-object
    network (mask, then the union of the other objects).
    """

    def __init__(self, extra_chan: int, imagenet_state: dict | None = None):
        super().__init__()
        trunk = resnet.resnet18_trunk(extra_chan)
        if imagenet_state is not None:
            resnet.load_imagenet_weights(trunk, imagenet_state)
        self.extra_chan = extra_chan
        self.conv1, self.bn1, self.relu, self.maxpool = trunk.conv1, trunk.bn1, trunk.relu, trunk.maxpool
        self.layer1, self.layer2, self.layer3 = trunk.layer1, trunk.layer2, trunk.layer3
        self.fuser = FeatureFusionBlock(1024 + 256, 512)

    def forward(
        self, image: torch.Tensor, key_f16: torch.Tensor, mask: torch.Tensor, other_masks: torch.Tensor | None = None
    ) -> torch.Tensor:
        inputs = [image, mask] if self.extra_chan == 1 else [image, mask, other_masks]
        x = self.maxpool(self.relu(self.bn1(self.conv1(torch.cat(inputs, 1)))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fuser(x, key_f16)


class UpsampleBlock(nn.Module):
    def __init__(self, skip_c: int, up_c: int, out_c: int):
        super().__init__()
        self.skip_conv = nn.Conv2d(skip_c, up_c, kernel_size=3, padding=1)
        self.out_conv = ResBlock(up_c, out_c)

    def forward(self, skip: torch.Tensor, up_f: torch.Tensor) -> torch.Tensor:
        """``skip``: ``skip_conv`` of the skip features, which the decoder computes once per
        query frame. skip (N, ...) and up_f (N, ...), or up_f (O * N, ...) object-major for O
        objects of the same N frames (the same numbers as repeating skip O times)."""
        up = F.interpolate(up_f, scale_factor=2, mode="bilinear", align_corners=False)
        if up.shape[0] != skip.shape[0]:
            return self.out_conv((up.view(-1, *skip.shape) + skip).flatten(0, 1))
        return self.out_conv(skip + up)


class KeyProjection(nn.Module):
    def __init__(self, indim: int, keydim: int):
        super().__init__()
        self.key_proj = nn.Conv2d(indim, keydim, kernel_size=3, padding=1)
        nn.init.orthogonal_(self.key_proj.weight.data)
        nn.init.zeros_(self.key_proj.bias.data)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.key_proj(x)


def conv3(indim: int, outdim: int) -> nn.Conv2d:
    return nn.Conv2d(indim, outdim, kernel_size=3, padding=1)


class Decoder(nn.Module):
    """Mask decoder with GSFM's boundary branch (HFM inside it).

    Attribute order matters: it fixes the parameter order of the checkpoint and of the
    reference's gradient list.
    """

    def __init__(self):
        super().__init__()
        self.compress = ResBlock(1024, 512)
        self.up_16_8 = UpsampleBlock(512, 512, 256)
        self.up_8_4 = UpsampleBlock(256, 256, 256)
        self.pred = conv3(256, 1)
        self.boundary_1 = conv3(256, 256)
        self.mask_1 = conv3(256, 256)
        self.boundary_2 = conv3(256, 256)
        self.boundary_3 = conv3(256, 256)
        self.fusion_1 = nn.Conv2d(256, 256, kernel_size=1)
        self.fusion_2 = nn.Conv2d(256, 256, kernel_size=1)
        self.predict_boundary_1 = conv3(256, 256)
        self.predict_boundary_2 = conv3(256, 1)
        self.predict_mask = conv3(256, 256)
        self.hfm = HFM(256)

    def forward(
        self,
        f16: torch.Tensor,
        f8: torch.Tensor,
        f4: torch.Tensor,
        with_boundary: bool = True,
        objects_per_pass: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns (mask logit, boundary logit) at the padded frame size.

        f16 (O * N, 1024, ...) for O objects of N query frames (object-major); f8 and f4 the
        N frames' skip features, whose convolutions run once and serve every object.

        ``with_boundary=False`` skips the boundary head, whose output inference discards;
        the mask logit is unchanged by it. ``objects_per_pass`` decodes that many objects at
        a time (all at once when None): the same numbers, with the decoder's temporary memory
        bounded by that count instead of by O.
        """
        skip8, skip4 = self.up_16_8.skip_conv(f8), self.up_8_4.skip_conv(f4)
        step = f16.shape[0] if objects_per_pass is None else objects_per_pass * f8.shape[0]
        outputs = [self._decode(chunk, skip8, skip4, with_boundary) for chunk in f16.split(step)]
        if len(outputs) == 1:
            return outputs[0]
        mask_logit = torch.cat([o[0] for o in outputs])
        return mask_logit, torch.cat([o[1] for o in outputs]) if with_boundary else None

    def _decode(
        self, f16: torch.Tensor, skip8: torch.Tensor, skip4: torch.Tensor, with_boundary: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.compress(f16)
        x = self.up_16_8(skip8, x)
        x = self.up_8_4(skip4, x)
        b = self.hfm(self.boundary_1(x))
        m = self.mask_1(x)
        b = b + F.relu(self.fusion_1(m))
        b = F.relu(self.boundary_3(self.boundary_2(b)))
        m = m + F.relu(self.fusion_2(b))
        mask_logit = self.pred(F.relu(self.predict_mask(m)))
        mask_logit = F.interpolate(mask_logit, scale_factor=4, mode="bilinear", align_corners=False)
        if not with_boundary:
            return mask_logit, None
        boundary = self.predict_boundary_2(F.relu(self.predict_boundary_1(b)))
        boundary = F.interpolate(boundary, scale_factor=4, mode="bilinear", align_corners=False)
        return mask_logit, boundary
