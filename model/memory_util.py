"""Memory read shared by training and inference: affinity, softmaxes, soft aggregation."""

from __future__ import annotations

import math
import warnings

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


def topk_readout(
    query_key: torch.Tensor, mem_key: torch.Tensor, mem_value: torch.Tensor, top_k: int, max_elements: int = 2**25
) -> torch.Tensor:
    """Inference memory read: query_key (HW, CK), mem_key (N, CK), mem_value (N, D) ->
    readout (HW, D), equal to ``mem_value^T @ topk_dense_affinity`` of the reference.

    Only the top_k weights of each query pixel are used: they form a sparse (HW, N) matrix
    with top_k entries per row, multiplied with the values (k * D instead of N * D
    multiply-adds per pixel). Query rows are processed in chunks so the logits matrix
    never exceeds ``max_elements``. With CK = 64 the logits are bit-identical to
    ``affinity_logits`` (the scalings are powers of two), so near-ties in the top-k pick
    the same memory entries as the reference. ``top_k`` larger than the memory is clamped
    (the reference would raise in torch.topk); the softmax subtracts the max first (the
    reference's plain exp() gives the same result but can overflow).
    """
    n, ck = mem_key.shape
    k = min(top_k, n)
    scale = 1 / math.sqrt(ck)
    # |mk|^2 summed over a channel-major (1, CK, N) copy, exactly as the reference lays it
    # out: the reduction order (and so the last bit) depends on the layout
    neg_sq = mem_key.t().contiguous().unsqueeze(0).pow(2).sum(1) * -scale  # (1, N)
    mem_key_t = mem_key.t()
    mem_value = mem_value.float()
    out = mem_value.new_empty(query_key.shape[0], mem_value.shape[1])
    rows = max(1, max_elements // n)
    for first in range(0, query_key.shape[0], rows):
        query = query_key[first : first + rows]
        logits = torch.addmm(neg_sq.to(query.dtype), query, mem_key_t.to(query.dtype), alpha=2 * scale)
        values, indices = torch.topk(logits, k=k, dim=1)
        weights = torch.softmax(values.float(), dim=1)
        count = query.shape[0]
        crow = torch.arange(0, count * k + 1, k, device=query.device)
        # float32 even under autocast (sparse kernels have no half-precision CPU version)
        with warnings.catch_warnings(), torch.autocast(query.device.type, enabled=False):
            warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
            affinity = torch.sparse_csr_tensor(
                crow, indices.reshape(-1), weights.reshape(-1), size=(count, n), check_invariants=False
            )
            out[first : first + count] = torch.sparse.mm(affinity, mem_value)
    return out


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
