"""Memory read shared by training and inference: affinity, softmaxes, soft aggregation."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def affinity_logits(mem_key: torch.Tensor, query_key: torch.Tensor) -> torch.Tensor:
    """(2 mk^T qk - |mk|^2) / sqrt(CK) for mk (B, CK, N) and qk (B, CK, HW) -> (B, N, HW).

    The |qk|^2 term of the negative squared distance is constant per query column and
    cancels in the softmax over the memory axis, so it is left out (as the reference does).
    """
    ck = mem_key.shape[1]
    a_sq = mem_key.pow(2).sum(1).unsqueeze(2)
    ab = mem_key.transpose(1, 2) @ query_key
    return (2 * ab - a_sq) / math.sqrt(ck)


def softmax_full(logits: torch.Tensor) -> torch.Tensor:
    """Training affinity: softmax over the memory axis (dim 1), max subtracted first."""
    maxes = logits.max(dim=1, keepdim=True)[0]
    x_exp = torch.exp(logits - maxes)
    return x_exp / x_exp.sum(dim=1, keepdim=True)


def topk_softmax(logits: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inference affinity in sparse form: per query column the top_k largest logits,
    softmax over them. Returns (weights, indices), both (B, k, HW).

    ``top_k`` larger than the memory is clamped to the memory size (the reference would
    raise inside torch.topk). Subtracting the max before exp() gives the same result as the
    reference's plain exp() and cannot overflow.
    """
    k = min(top_k, logits.shape[1])
    values, indices = torch.topk(logits, k=k, dim=1)
    return torch.softmax(values, dim=1), indices


def topk_dense(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """The top-k affinity as the dense (B, N, HW) matrix the reference builds."""
    weights, indices = topk_softmax(logits, top_k)
    return torch.zeros_like(logits).scatter_(1, indices, weights.to(logits.dtype))


def aggregate(prob: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Soft aggregation: object probabilities -> logits with the background in front.

    p_0 = prod(1 - p_k); clamp [1e-7, 1 - 1e-7]; logit = log(p / (1 - p)). A softmax of
    the result along ``dim`` gives the final (K+1)-way probabilities.
    """
    new_prob = torch.cat([torch.prod(1 - prob, dim=dim, keepdim=True), prob], dim).clamp(1e-7, 1 - 1e-7)
    return torch.log(new_prob / (1 - new_prob))


def aggregate_prob(prob: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Soft aggregation to probabilities (background first) along ``dim``."""
    return F.softmax(aggregate(prob, dim), dim=dim)
