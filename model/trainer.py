"""The training engine: optimiser, schedule, AMP, one step, and the full checkpoint."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from model.checkpoint import network_state
from model.losses import LossComputer, Losses
from model.network import GSFM
from model.train_forward import QueryFrame, clip_forward
from util.configuration import TrainConfig
from util.errors import GSFMError


class NonFiniteLossError(GSFMError, RuntimeError):
    """A NaN/inf loss in float32, or too many consecutive steps with non-finite gradients
    under AMP: training stops; the last checkpoint on disk stays the good one."""


@dataclass
class StepResult:
    """What one training step gives the logger."""

    frames: list[QueryFrame]  # the network's outputs on the segmented frames
    losses: Losses

    def images(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Each segmented frame's first-object probability and boundary logits (the image grid)."""
        return [f.mask for f in self.frames], [f.boundary for f in self.frames]


class ClipModel(nn.Module):
    """The module DistributedDataParallel wraps: one forward call per training step, so
    gradient synchronisation hooks see every parameter exactly once."""

    def __init__(self, network: GSFM):
        super().__init__()
        self.network = network

    def forward(self, rgb, gt, sec_gt=None, selector=None) -> list[QueryFrame]:
        return clip_forward(self.network, rgb, gt, sec_gt, selector)


class Trainer:
    def __init__(self, network: GSFM, config: TrainConfig, device: torch.device, distributed: bool = False):
        self.network = network.to(device).train()  # its BatchNorm stays frozen (FrozenBatchNorm2d)
        self.device = device
        self.amp = config.amp and device.type == "cuda"  # float16 on CUDA as the reference; the CPU trains in float32
        self.network.use_channels_last(self.amp)  # the layout of the tensor cores' kernels
        model = ClipModel(self.network)
        self.model = (
            DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
            if distributed
            else model
        )
        self.optimizer = torch.optim.Adam(
            filter(lambda p: p.requires_grad, self.network.parameters()), lr=config.lr, weight_decay=config.weight_decay
        )
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(config.steps), config.gamma)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp)
        self.loss_computer = LossComputer(config.start_warm, config.end_warm)
        self.max_amp_skips = config.max_amp_skips
        self.skipped = False  # whether the last step was skipped for non-finite gradients (AMP)
        self.consecutive_skips = 0

    def _inputs(self, data: dict) -> tuple:
        tensors = {k: v.to(self.device, non_blocking=True) for k, v in data.items() if isinstance(v, torch.Tensor)}
        multi = not self.network.single_object
        return tensors, (
            tensors["rgb"],
            tensors["gt"],
            tensors.get("sec_gt") if multi else None,
            tensors.get("selector") if multi else None,
        )

    @torch.no_grad()
    def scale_keys(self, data: dict, target_std: float = 1.0) -> float:
        """Scale the key projection so that the keys of ``data``'s frames have standard
        deviation ``target_std``; returns the factor applied.

        For training from scratch only: BatchNorm is frozen during training (the reference's
        rule, made for ImageNet statistics). Fresh statistics do not normalise, so the keys
        start ~10x too large (std ~11: a one-hot similarity softmax) or, with the residual
        branches zeroed, ~10x too small (near-uniform attention: the readout cannot tell
        places apart).
        """
        _, inputs = self._inputs(data)
        std = self.network.encode_key(inputs[0].flatten(0, 1)).k16.std()
        if torch.distributed.is_initialized():  # one factor for all replicas
            torch.distributed.all_reduce(std)
            std = std / torch.distributed.get_world_size()
        factor = target_std / float(std)
        self.network.key_proj.key_proj.weight.mul_(factor)
        self.network.key_proj.key_proj.bias.mul_(factor)
        return factor

    def step(self, data: dict, it: int) -> StepResult:
        """One optimisation step at iteration ``it``; returns the network's outputs and the losses.

        Non-finite values: in float32 a NaN/inf loss stops training, naming the iteration and
        the samples. Under AMP the gradient scaler skips a step whose gradients are not
        finite and lowers its scale (the reference's behaviour: an overflow in float16 is
        expected now and then); ``skipped`` says so, and more than ``max_amp_skips`` skips in
        a row stop training (the scale would only keep falling)."""
        tensors, inputs = self._inputs(data)
        with torch.autocast(self.device.type, enabled=self.amp):
            frames = self.model(*inputs)
            losses = self.loss_computer.compute(tensors, frames, it)
        total = losses.total
        names = data.get("info", {}).get("name", [])
        if not self.scaler.is_enabled() and not torch.isfinite(total):
            raise NonFiniteLossError(
                f"non-finite loss {total.item()} at iteration {it} (samples: {names}); "
                f"stopping, the last saved checkpoint is kept"
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        scale = self.scaler.get_scale() if self.scaler.is_enabled() else None
        self.scaler.step(self.optimizer)
        self.scaler.update()
        with warnings.catch_warnings():  # after a skipped first step torch warns that the schedule moved on
            warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step\\(\\)` before")
            self.scheduler.step()  # every iteration, as the reference (skipped or not)
        if scale is not None:
            self.skipped = self.scaler.get_scale() < scale  # update() lowers the scale after a skipped step
            self.consecutive_skips = self.consecutive_skips + 1 if self.skipped else 0
            if self.consecutive_skips > self.max_amp_skips:
                raise NonFiniteLossError(
                    f"{self.consecutive_skips} consecutive steps with non-finite gradients "
                    f"under AMP (last at iteration {it}, samples: {names}); stopping, the last "
                    f"saved checkpoint is kept"
                )
        return StepResult(frames, losses)

    def weight_checksum(self) -> float:
        """Sum of all parameters in float64: equal on every replica of a DDP run."""
        return float(sum(p.detach().double().sum() for p in self.network.parameters()))

    def state_dict(self) -> dict:
        return {
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """A full checkpoint. Without a gradient-scaler state (the reference's own checkpoints,
        or a run without AMP, e.g. on the CPU) the scaler starts fresh."""
        self.network.load_state_dict(network_state(state))
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
