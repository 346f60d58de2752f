"""Training losses: bootstrapped cross-entropy and GSFM's boundary loss."""

from __future__ import annotations

from collections import defaultdict

import torch
import torch.nn.functional as F

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


class LossComputer:
    """The reference's per-sample loss loop, plus the boundary loss.

    ``data`` holds ``gt``/``sec_gt`` (B, T, 1, H, W), ``cls_gt`` (B, T, H, W), optional
    ``selector`` (B, 2), and per query frame i: ``logits_i``, ``mask_i``, ``sec_mask_i``,
    ``boundary_i``. Returns a dict with ``loss_i``, ``total_loss``, ``p`` and IoU counts
    (``hide_iou/i``, ``hide_iou/u``, and ``sec_`` versions for two objects).
    """

    def __init__(self, start_warm: int, end_warm: int):
        self.start_warm = start_warm
        self.end_warm = end_warm

    def compute(self, data: dict, it: int) -> dict:
        losses: dict = defaultdict(int)
        b, s = data["gt"].shape[:2]
        selector = data.get("selector")
        for i in range(1, s):
            targets = [boundary_target(data["gt"][:, i])]
            if selector is not None:
                targets.append(boundary_target(data["sec_gt"][:, i]))
            for j in range(b):
                two_objects = selector is not None and selector[j][1] > 0.5
                logits = data[f"logits_{i}"][j : j + 1]
                ce, p = bootstrapped_ce(
                    logits if two_objects else logits[:, :2],
                    data["cls_gt"][j : j + 1, i],
                    it,
                    self.start_warm,
                    self.end_warm,
                )
                terms = [
                    sum(boundary_terms(data[f"boundary_{i}"][j, obj], targets[obj][j, 0]))
                    for obj in range(2 if two_objects else 1)
                ]
                boundary = 0.5 * (terms[0] + terms[1]) if two_objects else terms[0]
                losses[f"loss_{i}"] += (ce + BOUNDARY_WEIGHT * boundary) / b
                losses["p"] += p / b / (s - 1)
            losses["total_loss"] += losses[f"loss_{i}"]
            inter, union = compute_iu(data[f"mask_{i}"], data["gt"][:, i])
            losses["hide_iou/i"] += inter
            losses["hide_iou/u"] += union
            if selector is not None:
                inter, union = compute_iu(data[f"sec_mask_{i}"], data["sec_gt"][:, i])
                losses["hide_iou/sec_i"] += inter
                losses["hide_iou/sec_u"] += union
        return dict(losses)
