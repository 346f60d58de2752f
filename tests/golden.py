"""Access to ../shared/golden: weights built with its make_weights.py and the tolerance rules."""
from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
GOLDEN_DIR = Path(os.environ.get("GSFM_GOLDEN", REPO.parent / "shared" / "golden"))


def _make_weights_module():
    if not (GOLDEN_DIR / "make_weights.py").exists():
        raise FileNotFoundError(f"golden data not found at {GOLDEN_DIR} (set GSFM_GOLDEN)")
    if str(GOLDEN_DIR) not in sys.path:
        sys.path.insert(0, str(GOLDEN_DIR))
    import make_weights
    return make_weights


@functools.lru_cache(maxsize=None)
def golden_state_dict(key_list: str) -> dict[str, torch.Tensor]:
    """key_list: 'eval', 'train_mo' or 'train_so'."""
    with open(GOLDEN_DIR / f"keys_{key_list}.json") as f:
        return _make_weights_module().make_state_dict(json.load(f))


def key_shapes(key_list: str) -> dict[str, list[int]]:
    with open(GOLDEN_DIR / f"keys_{key_list}.json") as f:
        return {e["key"]: e["shape"] for e in json.load(f)}


@functools.lru_cache(maxsize=None)
def load(name: str) -> dict[str, np.ndarray]:
    with np.load(GOLDEN_DIR / f"{name}.npz") as data:
        return {k: data[k] for k in data.files}


def as_numpy(x) -> np.ndarray:
    return x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def assert_features(actual, golden: np.ndarray, name: str = "") -> float:
    """abs(a - g) <= 1e-4 + 1e-4 |g| elementwise; returns the largest deviation."""
    a = as_numpy(actual)
    assert a.shape == golden.shape, f"{name}: shape {a.shape} != {golden.shape}"
    err = np.abs(a - golden)
    bad = err > 1e-4 + 1e-4 * np.abs(golden)
    assert not bad.any(), f"{name}: {bad.sum()} elements off, max error {err.max():.3g}"
    return float(err.max())


def assert_prob(actual, golden: np.ndarray, name: str = "") -> float:
    """abs(a - g) <= 1e-4 elementwise."""
    a = as_numpy(actual)
    assert a.shape == golden.shape, f"{name}: shape {a.shape} != {golden.shape}"
    err = float(np.abs(a - golden).max())
    assert err <= 1e-4, f"{name}: max error {err:.3g} > 1e-4"
    return err


def assert_argmax(actual, golden: np.ndarray, golden_prob: np.ndarray, name: str = "") -> None:
    """Equal wherever the golden top-two probability margin (channel axis 0) is > 1e-4."""
    a = as_numpy(actual)
    top2 = np.sort(golden_prob, axis=0)[-2:]
    margin = top2[1] - top2[0]
    decided = margin > 1e-4
    mismatch = (a != golden) & decided
    assert not mismatch.any(), f"{name}: {mismatch.sum()} decided pixels differ"
