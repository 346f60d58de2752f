"""Stop requests: SIGTERM (how clusters preempt jobs) and SIGINT (Ctrl-C) become a stop at an
iteration boundary that every rank agrees on, instead of an exception wherever the signal
lands."""

from __future__ import annotations

import signal

import torch
import torch.distributed as dist

HANDLED = (signal.SIGTERM, signal.SIGINT)


class StopRequests:
    def __init__(self, device: torch.device):
        self.device = device  # where the agreement is reduced (CUDA for NCCL)
        self.signum = 0  # the first signal received; later ones are ignored (a save may be running)
        self._previous: dict = {}

    def __enter__(self) -> StopRequests:
        for sig in HANDLED:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame) -> None:
        self.signum = self.signum or signum

    def agreed(self) -> int:
        """The signal any rank received (0: none); every rank must call this at the same point."""
        if not dist.is_initialized():
            return self.signum
        flag = torch.tensor([self.signum], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag.item())
