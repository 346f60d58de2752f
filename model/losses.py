"""Training losses: bootstrapped cross-entropy and GSFM's boundary loss."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from model.train_forward import QueryFrame

BOUNDARY_WEIGHT = 0.05
TOP_P = 0.15

_LAPLACIAN = torch.tensor([[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]])


def bootstrap_fraction(it: int, start_warm: int, end_warm: int, top_p: float = TOP_P) -> float:
    """Fraction p of the hardest pixels kept at iteration ``it`` (python float, as the reference)."""
    if it < start_warm:
        return 1.0
    if it > end_warm:
        return top_p
    return top_p + (1 - top_p) * ((end_warm - it) / (end_warm - start_warm))


def bootstrapped_ce(
    logits: torch.Tensor, target: torch.Tensor, it: int, start_warm: int, end_warm: int
) -> tuple[torch.Tensor, float]:
    """Mean CE over the hardest int(pixels * p) pixels (plain mean before ``start_warm``)."""
    if it < start_warm:
        return F.cross_entropy(logits, target), 1.0
    raw = F.cross_entropy(logits, target, reduction="none").view(-1)
    p = bootstrap_fraction(it, start_warm, end_warm)
    loss, _ = torch.topk(raw, int(raw.numel() * p), sorted=False)
    return loss.mean(), p


def boundary_target(mask: torch.Tensor) -> torch.Tensor:
    """Binary boundary map of a (N, 1, H, W) float mask: Laplacian, clamp at 0, > 0.1."""
    kernel = _LAPLACIAN.to(mask.device, mask.dtype).view(1, 1, 3, 3)
    edges = F.conv2d(mask, kernel, padding=1).clamp(min=0)
    return (edges > 0.1).to(mask.dtype)


def dice_loss(prob: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - (2 sum(p t) + 1) / (sum(p) + sum(t) + 1) over one sample."""
    return 1 - (2 * (prob * target).sum() + 1) / (prob.sum() + target.sum() + 1)


def boundary_terms(logit: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(BCE-with-logits, Dice) of one sample's boundary logit against its target."""
    return F.binary_cross_entropy_with_logits(logit, target), dice_loss(torch.sigmoid(logit), target)


def compute_iu(prob: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pred, truth = prob > 0.5, gt > 0.5
    return (pred & truth).float().sum(), (pred | truth).float().sum()


@dataclass
class IoUCounts:
    """Intersection and union pixel counts of an object over a clip's segmented frames (the
    reference logs their interval means' ratio)."""

    intersection: torch.Tensor
    union: torch.Tensor


@dataclass
class Losses:
    """One training step's losses."""

    frames: list[torch.Tensor]  # each segmented frame's loss (batch mean), frame 1 first
    total: torch.Tensor  # their sum: what is optimised
    p: float  # the bootstrapped fraction, averaged over the samples and frames
    iou: IoUCounts  # the first object's
    sec_iou: IoUCounts | None  # the second object's (None: single-object training)

    def logged(self) -> dict[str, torch.Tensor | float]:
        """The terms under the reference's log names (``loss_1``, ``total_loss``, ``p``,
        ``hide_iou/i``, ...): the names of the training curves."""
        terms: dict[str, torch.Tensor | float] = {f"loss_{i}": loss for i, loss in enumerate(self.frames, 1)}
        terms.update({"total_loss": self.total, "p": self.p})
        terms.update({"hide_iou/i": self.iou.intersection, "hide_iou/u": self.iou.union})
        if self.sec_iou is not None:
            terms.update({"hide_iou/sec_i": self.sec_iou.intersection, "hide_iou/sec_u": self.sec_iou.union})
        return terms


class LossComputer:
    """The reference's per-sample loss loop, plus the boundary loss.

    ``data`` holds ``gt``/``sec_gt`` (B, T, 1, H, W), ``cls_gt`` (B, T, H, W) and optional
    ``selector`` (B, 2); ``frames`` the network's outputs on frames 1..T-1.
    """

    def __init__(self, start_warm: int, end_warm: int):
        self.start_warm = start_warm
        self.end_warm = end_warm

    def compute(self, data: dict, frames: list[QueryFrame], it: int) -> Losses:
        b = data["gt"].shape[0]
        selector = data.get("selector")
        frame_losses, total, p_mean = [], 0, 0.0  # summed in the reference's order (its defaultdict(int))
        inter, union, sec_inter, sec_union = 0, 0, 0, 0
        for i, out in enumerate(frames, 1):
            targets = [boundary_target(data["gt"][:, i])]
            if selector is not None:
                targets.append(boundary_target(data["sec_gt"][:, i]))
            frame_loss = 0
            for j in range(b):
                two_objects = selector is not None and selector[j][1] > 0.5
                logits = out.logits[j : j + 1]
                ce, p = bootstrapped_ce(
                    logits if two_objects else logits[:, :2],
                    data["cls_gt"][j : j + 1, i],
                    it,
                    self.start_warm,
                    self.end_warm,
                )
                terms = [
                    sum(boundary_terms(out.boundary[j, obj], targets[obj][j, 0]))
                    for obj in range(2 if two_objects else 1)
                ]
                boundary = 0.5 * (terms[0] + terms[1]) if two_objects else terms[0]
                frame_loss += (ce + BOUNDARY_WEIGHT * boundary) / b
                p_mean += p / b / len(frames)
            frame_losses.append(frame_loss)
            total += frame_loss
            i_, u_ = compute_iu(out.mask, data["gt"][:, i])
            inter, union = inter + i_, union + u_
            if selector is not None:
                i_, u_ = compute_iu(out.sec_mask, data["sec_gt"][:, i])
                sec_inter, sec_union = sec_inter + i_, sec_union + u_
        return Losses(
            frame_losses,
            total,
            p_mean,
            IoUCounts(inter, union),
            IoUCounts(sec_inter, sec_union) if selector is not None else None,
        )
