"""The golden reference data in ``tests/golden_data/`` and its tolerance rules.

The reference implementation's outputs for fixed synthetic weights and small inputs; the
weights are rebuilt here with ``model.synthetic_weights`` and must match the fingerprint
recorded in ``manifest.json`` before any comparison means something. The tolerances are
explained in ``tests/golden_data/README.md``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import torch

from model.network import GSFM
from model.synthetic_weights import fingerprint, synthetic_state_dict, synthetic_tensor

GOLDEN_DIR = Path(__file__).resolve().parent / "golden_data"
# key list -> network it describes (single_object)
KEY_LISTS = {"eval": False, "train_mo": False, "train_so": True}


def golden_file(name: str) -> Path:
    path = GOLDEN_DIR / name
    if not path.is_file():
        raise FileNotFoundError(
            f"golden fixture {path} is missing: the checkout is incomplete "
            f"(tests/golden_data/ is part of the repository)"
        )
    return path


@functools.lru_cache(maxsize=None)
def golden_state_dict(key_list: str) -> dict[str, torch.Tensor]:
    """The synthetic weights of the network ``key_list`` names ('eval', 'train_mo' or
    'train_so'), checked against the fingerprint recorded with the golden data."""
    state = synthetic_state_dict(GSFM(single_object=KEY_LISTS[key_list]))
    recorded = json.loads(golden_file("manifest.json").read_text())["weights_sha256"][f"keys_{key_list}.json"]
    if fingerprint(state) != recorded:
        raise AssertionError(f"rebuilt {key_list} weights do not match the golden fingerprint {recorded}")
    return state


@functools.lru_cache(maxsize=None)
def stcn_state_dict(key_list_name: str) -> dict[str, torch.Tensor]:
    """Synthetic weights in STCN's own key format ('stcn_eval': multi-object, 'stcn_so':
    stage 0), from the key list read off STCN's network, checked against the fingerprint."""
    state = {e["key"]: synthetic_tensor(e["key"], tuple(e["shape"]), e["kind"]) for e in key_list(key_list_name)}
    recorded = json.loads(golden_file("manifest.json").read_text())["weights_sha256"][f"keys_{key_list_name}.json"]
    if fingerprint(state) != recorded:
        raise AssertionError(f"rebuilt {key_list_name} weights do not match the golden fingerprint {recorded}")
    return state


def golden_network(key_list_name: str = "eval") -> GSFM:
    """A network in eval mode with (a copy of) the golden weights. Built on the meta device,
    so that no time goes into an initialisation the weights replace."""
    with torch.device("meta"):
        network = GSFM(single_object=KEY_LISTS[key_list_name])
    state = {k: v.clone() for k, v in golden_state_dict(key_list_name).items()}
    network.load_state_dict(state, strict=True, assign=True)
    return network.eval()


def key_list(name: str) -> list[dict]:
    """The reference checkpoint's entries: {"key", "shape", "kind"} in checkpoint order."""
    return json.loads(golden_file(f"keys_{name}.json").read_text())


@functools.lru_cache(maxsize=None)
def load(name: str) -> dict[str, np.ndarray]:
    with np.load(golden_file(f"{name}.npz")) as data:
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
    decided = top2[1] - top2[0] > 1e-4
    mismatch = (a != golden) & decided
    assert not mismatch.any(), f"{name}: {mismatch.sum()} decided pixels differ"
