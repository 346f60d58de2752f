"""ImageNet initialisation through torchvision's weights API and its cache (TORCH_HOME)."""
from __future__ import annotations

import os

import torch
from torchvision.models import ResNet18_Weights, ResNet50_Weights


def cached_weights_path(weights) -> str:
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))


def imagenet_state_dicts(allow_download: bool = False) -> tuple[dict, dict]:
    """(ResNet-50, ResNet-18) ImageNet v1 state dicts from torchvision's cache.

    Without ``allow_download`` a missing file is an error that says how to get it, instead
    of a network access deep inside torch.hub.
    """
    states = []
    for weights in (ResNet50_Weights.IMAGENET1K_V1, ResNet18_Weights.IMAGENET1K_V1):
        path = cached_weights_path(weights)
        if not allow_download and not os.path.isfile(path):
            raise FileNotFoundError(
                f"ImageNet weights {weights} are not in torchvision's cache ({path}).\n"
                f"  On a machine with internet access run:\n"
                f"    python -c \"import torchvision; torchvision.models.{weights.__class__.__name__}"
                f".IMAGENET1K_V1.get_state_dict(progress=True)\"\n"
                f"  and copy the file to {path} (TORCH_HOME={os.environ.get('TORCH_HOME', '~/.cache/torch')}),\n"
                f"  or train from scratch with --no_imagenet.")
        states.append(weights.get_state_dict(progress=False))
    return states[0], states[1]
