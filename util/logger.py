"""TensorBoard logging (disabled with --id NULL) and the reference's image grids."""
from __future__ import annotations

from pathlib import Path

import torch

from util.tensor_util import IMAGENET_MEAN, IMAGENET_STD


class Logger:
    def __init__(self, log_dir: Path | None):
        self.writer = None
        if log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(log_dir))

    def scalars(self, values: dict, it: int) -> None:
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, float(value.detach() if isinstance(value, torch.Tensor) else value), it)

    def images(self, data: dict, out: dict, it: int, max_samples: int = 2) -> None:
        """Rows of sample frames, ground truth, predictions and boundary maps."""
        if self.writer is None:
            return
        from torchvision.utils import make_grid
        mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
        tiles = []
        for j in range(min(max_samples, data["rgb"].shape[0])):
            for t in range(data["rgb"].shape[1]):
                tiles.append((data["rgb"][j, t].cpu() * std + mean).clamp(0, 1))
            for t in range(data["gt"].shape[1]):
                tiles.append(data["gt"][j, t].cpu().expand(3, -1, -1))
            tiles.append(torch.zeros_like(tiles[-1]))
            for i in (1, 2):
                tiles.append(out[f"mask_{i}"][j].detach().float().cpu().expand(3, -1, -1))
            for i in (1, 2):
                tiles.append(torch.sigmoid(out[f"boundary_{i}"][j, :1].detach().float().cpu()).expand(3, -1, -1))
        self.writer.add_image("train/samples", make_grid(tiles, nrow=len(tiles) // max(1, min(
            max_samples, data["rgb"].shape[0]))), it)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
