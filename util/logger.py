"""Training curves: interval means over iterations and ranks (as the reference logs them), to
TensorBoard, the console and ``metrics.jsonl``; and the reference's image grids.

Nothing is written with ``--id NULL`` (no log folder); the console line is rank 0's.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import torch
import torch.distributed as dist

from util.tensor_util import IMAGENET_MEAN, IMAGENET_STD

IOU_COUNTS = {"iou": ("hide_iou/i", "hide_iou/u"), "sec_iou": ("hide_iou/sec_i", "hide_iou/sec_u")}


class IntervalMeans:
    """Sums the terms of every iteration of a logging interval (each step's named terms, e.g.
    ``model.losses.Losses.logged``); ``finalize`` returns their means over the interval and
    over all ranks (every rank must call it, with the same terms), with the IoU computed from
    the mean intersection and union counts (``IOU_COUNTS``), as the reference's hooks do.
    Values stay on their device until then (no synchronisation per iteration)."""

    def __init__(self, device: torch.device):
        self.device = device  # where the means are reduced (CUDA for NCCL)
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, terms: dict[str, torch.Tensor | float]) -> None:
        for key, term in terms.items():
            value = torch.as_tensor(term).detach().to(self.device, torch.float64)
            self.sums[key] = self.sums[key] + value if key in self.sums else value
        self.count += 1

    def finalize(self) -> dict[str, float]:
        keys = list(self.sums)  # in the order the step names them, equal on every rank
        means = torch.stack([self.sums[k] for k in keys]) / self.count
        if dist.is_initialized():
            dist.all_reduce(means)
            means /= dist.get_world_size()
        means = dict(zip(keys, means.tolist()))
        counts = {k for pair in IOU_COUNTS.values() for k in pair}
        values = {k: v for k, v in means.items() if k not in counts}
        for name, (inter, union) in IOU_COUNTS.items():
            if inter in means:
                values[name] = (means[inter] + 1) / (means[union] + 1)
        self.sums, self.count = {}, 0
        return values


class Logger:
    def __init__(self, log_dir: Path | None, total_iterations: int, main_process: bool = True):
        self.writer = None
        self.jsonl: Path | None = None
        self.main_process = main_process
        self.total_iterations = total_iterations
        if log_dir is not None and main_process:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(log_dir))
            self.jsonl = log_dir / "metrics.jsonl"

    def interval(self, it: int, values: dict[str, float], seconds_per_it: float, lr: float, write=print) -> None:
        """Log one interval's means at iteration ``it`` (rank 0 writes)."""
        if not self.main_process:
            return
        eta = datetime.timedelta(seconds=round((self.total_iterations - it) * seconds_per_it))
        record = {"it": it, **values, "seconds_per_it": seconds_per_it, "lr": lr, "eta_seconds": eta.total_seconds()}
        write(
            f"it {it}/{self.total_iterations} | "
            + " ".join(f"{k} {v:.4f}" for k, v in values.items())
            + f" | {seconds_per_it:.3f} s/it | lr {lr:.3g} | ETA {eta}"
        )
        if self.writer is not None:
            for key, value in record.items():
                if key != "it":
                    self.writer.add_scalar(f"train/{key}", value, it)
        if self.jsonl is not None:
            with open(self.jsonl, "a") as f:
                f.write(json.dumps(record) + "\n")

    def validation(
        self, it: int, values: dict[str, float], per_video: dict[str, dict[str, float]], seconds: float, write=print
    ) -> None:
        """Validation scores at iteration ``it`` as ``val/<name>`` (``val/J&F``, ``val/J``, ...)
        and per video ``val/<name>/<video>``; rank 0 writes."""
        if not self.main_process:
            return
        write(
            f"it {it} validation: "
            + " ".join(f"{k} {v:.4f}" for k, v in values.items())
            + f" ({len(per_video)} videos, {seconds:.1f} s)"
        )
        record = {
            "it": it,
            **{f"val/{k}": v for k, v in values.items()},
            "val/seconds": seconds,
            "val/per_video": per_video,
        }
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"val/{key}", value, it)
                for video, scores in per_video.items():
                    self.writer.add_scalar(f"val/{key}/{video}", scores[key], it)
            self.writer.add_scalar("val/seconds", seconds, it)
        if self.jsonl is not None:
            with open(self.jsonl, "a") as f:
                f.write(json.dumps(record) + "\n")

    def message(self, it: int, text: str, write=print) -> None:
        """A notable event (e.g. a skipped step): on the console and in TensorBoard's text log."""
        if not self.main_process:
            return
        write(text)
        if self.writer is not None:
            self.writer.add_text("train/events", text, it)

    def images(
        self, data: dict, masks: list[torch.Tensor], boundaries: list[torch.Tensor], it: int, max_samples: int = 2
    ) -> None:
        """Rows of sample frames, ground truth, and each segmented frame's predicted mask
        (``masks``: (B, 1, H, W) probabilities) and boundary map (``boundaries``: logits)."""
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
            for mask in masks:
                tiles.append(mask[j].detach().float().cpu().expand(3, -1, -1))
            for boundary in boundaries:
                tiles.append(torch.sigmoid(boundary[j, :1].detach().float().cpu()).expand(3, -1, -1))
        self.writer.add_image(
            "train/samples", make_grid(tiles, nrow=len(tiles) // max(1, min(max_samples, data["rgb"].shape[0]))), it
        )

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
