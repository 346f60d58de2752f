"""ImageNet initialisation through torchvision's weights API: read from its cache
(``$TORCH_HOME/hub/checkpoints``), downloaded there on first use as the reference's
pretrained constructors do."""

from __future__ import annotations

import os

import torch
from torchvision.models import ResNet18_Weights, ResNet50_Weights

from util.errors import CheckpointError

IMAGENET_WEIGHTS = (ResNet50_Weights.IMAGENET1K_V1, ResNet18_Weights.IMAGENET1K_V1)


def cached_weights_path(weights) -> str:
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))


def imagenet_state_dicts() -> tuple[dict, dict]:
    """(ResNet-50, ResNet-18) ImageNet v1 state dicts; a file missing from the cache is
    downloaded (its hash checked). When that fails (offline), one error says where to put
    the two files, or to train without them."""
    states = []
    for weights in IMAGENET_WEIGHTS:
        path = cached_weights_path(weights)
        cached = os.path.isfile(path)
        try:
            # torch.hub names the file and shows the download's progress
            states.append(weights.get_state_dict(progress=True, check_hash=True, map_location="cpu", weights_only=True))
        except Exception as e:  # network, hash and unpickling errors come in many types
            problem = (
                f"{path} is not readable ({type(e).__name__}: {e}); delete it to download it again"
                if cached
                else f"the download failed ({type(e).__name__}: {e})"
            )
            files = "\n".join(f"    {w.url}  ->  {cached_weights_path(w)}" for w in IMAGENET_WEIGHTS)
            raise CheckpointError(
                f"ImageNet weights {weights}: {problem}.\n"
                f"  Offline? Download the two files on a machine with internet access and copy them here:\n"
                f"{files}\n"
                f"  (the folder follows TORCH_HOME), or train from scratch with --no_imagenet."
            ) from None
    return states[0], states[1]
