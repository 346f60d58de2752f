"""Thin-plate-spline warps for the static-image pseudo-videos (the reference's TPS step).

The reference used a TPS package that is not on any registry; this is the same warp in
numpy: control points ``dst`` (normalised [0, 1] coordinates) are moved to ``src`` = dst +
N(0, scale), and every output pixel samples the input where the spline maps it.
"""

from __future__ import annotations

import cv2
import numpy as np


def _kernel(r2: np.ndarray) -> np.ndarray:
    """U(r) = r^2 log r^2 (0 at r = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(r2 == 0, 0.0, r2 * np.log(r2))


def tps_fit(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    """Coefficients (n+3, 2) of the spline f with f(dst_i) = src_i."""
    n = len(dst)
    k = _kernel(((dst[:, None] - dst[None]) ** 2).sum(-1))
    p = np.hstack([np.ones((n, 1)), dst])
    a = np.zeros((n + 3, n + 3))
    a[:n, :n], a[:n, n:], a[n:, :n] = k, p, p.T
    b = np.zeros((n + 3, 2))
    b[:n] = src
    return np.linalg.solve(a, b)


def tps_apply(coef: np.ndarray, dst: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Evaluate the spline at (m, 2) points."""
    k = _kernel(((points[:, None] - dst[None]) ** 2).sum(-1))
    p = np.hstack([np.ones((len(points), 1)), points])
    return k @ coef[:-3] + p @ coef[-3:]


def random_tps_warp(
    image: np.ndarray, mask: np.ndarray, scale: float, rng: np.random.RandomState, n_ctrl_pts: int = 12
) -> tuple[np.ndarray, np.ndarray]:
    """Warp an (H, W, 3) image (bilinear) and its (H, W) mask (nearest) with one random TPS."""
    h, w = mask.shape[:2]
    dst = np.stack([rng.choice(w, n_ctrl_pts, replace=False) / w, rng.choice(h, n_ctrl_pts, replace=False) / h], 1)
    src = dst + rng.normal(0, scale, dst.shape)
    coef = tps_fit(dst, src)
    ys, xs = np.mgrid[0:h, 0:w]
    grid = np.stack([xs.ravel() / w, ys.ravel() / h], 1)
    mapped = tps_apply(coef, dst, grid)
    map_x = (mapped[:, 0] * w).reshape(h, w).astype(np.float32)
    map_y = (mapped[:, 1] * h).reshape(h, w).astype(np.float32)
    return (cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR), cv2.remap(mask, map_x, map_y, cv2.INTER_NEAREST))
