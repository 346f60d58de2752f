"""ResNet-50/18 backbones as the reference builds them.

Differences from torchvision's ResNet, all required by the released checkpoints:
every convolution has a bias, the first conv may take extra input channels (masks),
and ImageNet weights are copied by name with the missing biases left at zero. BatchNorm
is frozen (``FrozenBatchNorm2d``), as the reference trains it.
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn


class FrozenBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm that always uses its running statistics, which never change: ``train()``
    leaves it in eval mode. The reference keeps the whole network in eval mode during
    training for this (ImageNet statistics, small batches); here it is the module's own
    invariant. Its weight and bias still learn; the checkpoint names are BatchNorm2d's."""

    def __init__(self, num_features: int):
        super().__init__(num_features)
        self.training = False

    def train(self, mode: bool = True) -> FrozenBatchNorm2d:
        return super().train(False)


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = FrozenBatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = FrozenBatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1)
        self.bn1 = FrozenBatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1)
        self.bn2 = FrozenBatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, kernel_size=1)
        self.bn3 = FrozenBatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


class ResNetTrunk(nn.Module):
    """Stem + the first three stages (the fourth is never used by GSFM)."""

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: tuple[int, int, int], extra_chan: int = 0):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3 + extra_chan, 64, kernel_size=7, stride=2, padding=3)
        self.bn1 = FrozenBatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                m.weight.data.normal_(0, math.sqrt(2.0 / n))
                m.bias.data.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, kernel_size=1, stride=stride),
                FrozenBatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)


def resnet50_trunk() -> ResNetTrunk:
    return ResNetTrunk(Bottleneck, (3, 4, 6))


def resnet18_trunk(extra_chan: int) -> ResNetTrunk:
    return ResNetTrunk(BasicBlock, (2, 2, 2), extra_chan)


def zero_init_residual_scales(module: nn.Module) -> None:
    """Zero the scale of the last BatchNorm of every residual branch (torchvision's
    ``zero_init_residual``), so each block starts as its shortcut.

    For training from scratch only. BatchNorm stays frozen during training (the reference's
    rule, made for ImageNet statistics); with fresh statistics (mean 0, variance 1) it does
    not normalise, the features grow through the trunk and the key-similarity softmax
    saturates to one-hot attention that gives the keys no gradient (docs/TRAINING.md, "Training from
    scratch").
    """
    for block in module.modules():
        if isinstance(block, Bottleneck):
            nn.init.zeros_(block.bn3.weight)
        elif isinstance(block, BasicBlock):
            nn.init.zeros_(block.bn2.weight)


def load_imagenet_weights(target: nn.Module, source: Mapping[str, torch.Tensor]) -> list[str]:
    """Copy torchvision ImageNet tensors into ``target`` by name (the reference's rule).

    Tensors with no counterpart (conv biases, ``layer4``, ``fc``) are skipped; a first conv
    with extra input channels gets the RGB weights followed by an orthogonal init of the
    extra channels. Returns the names of the target tensors that were copied.
    """
    target_state = target.state_dict()
    new_state = {}
    for name, value in source.items():
        if name not in target_state or "num_batches_tracked" in name:
            continue
        wanted = target_state[name]
        if wanted.shape != value.shape:
            if wanted.dim() != 4 or wanted.shape[0] != value.shape[0] or wanted.shape[2:] != value.shape[2:]:
                raise ValueError(
                    f"ImageNet tensor {name}: shape {tuple(value.shape)} does not fit {tuple(wanted.shape)}"
                )
            extra = torch.zeros(wanted.shape[0], wanted.shape[1] - value.shape[1], *wanted.shape[2:])
            nn.init.orthogonal_(extra)
            value = torch.cat([value, extra], 1)
        new_state[name] = value
    target.load_state_dict(new_state, strict=False)
    return sorted(new_state)
