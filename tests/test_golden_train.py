"""One training step against tests/golden_data/train.npz (forward, every loss term, gradients)."""

import numpy as np
import pytest
import torch

from model.losses import LossComputer, bootstrapped_ce, boundary_target, boundary_terms
from model.train_forward import clip_forward
from tests.golden import assert_features, assert_prob, golden_network, load

pytestmark = pytest.mark.golden


@pytest.fixture(scope="module")
def g():
    return load("train")


def t(g, name):
    return torch.from_numpy(g[name])


@pytest.fixture(scope="module", params=["mo", "so"])
def case(request, g):
    m = request.param
    net = golden_network(f"train_{m}")
    multi = m == "mo"
    out = clip_forward(
        net, t(g, "rgb"), t(g, "gt"), t(g, "sec_gt") if multi else None, t(g, "selector") if multi else None
    )
    data = {"gt": t(g, "gt"), "cls_gt": t(g, f"cls_gt_{m}"), **out}
    if multi:
        data.update(sec_gt=t(g, "sec_gt"), selector=t(g, "selector"))
    return m, net, data


def test_forward_outputs(case, g):
    m, _, data = case
    for i in (1, 2):
        assert_features(data[f"logits_{i}"], g[f"{m}_logits_{i}"], f"logits_{i}")
        assert_features(data[f"boundary_{i}"], g[f"{m}_boundary_{i}"], f"boundary_{i}")
        assert_prob(data[f"mask_{i}"], g[f"{m}_mask_{i}"], f"mask_{i}")
        if m == "mo":
            assert_prob(data[f"sec_mask_{i}"], g[f"mo_sec_mask_{i}"], f"sec_mask_{i}")
    if m == "mo":  # sample 1 has no second object: its boundary logit is exactly 0
        assert (data["boundary_1"][1, 1] == 0).all()


def test_boundary_targets(case, g):
    m, _, data = case
    golden = g[f"{m}_boundary_target"]
    for fi, i in enumerate((1, 2)):
        masks = [data["gt"][:, i]] + ([data["sec_gt"][:, i]] if m == "mo" else [])
        for obj, mask in enumerate(masks):
            target = boundary_target(mask)[:, 0].numpy().astype(np.uint8)
            for j in range(2):
                if m == "mo" and obj == 1 and data["selector"][j, 1] < 0.5:
                    assert (golden[fi, j, obj] == 0).all()
                    continue
                np.testing.assert_array_equal(target[j], golden[fi, j, obj])


def rel_close(actual, golden, rel, name):
    actual, golden = np.asarray(actual, dtype=np.float64), np.asarray(golden, dtype=np.float64)
    err = np.abs(actual - golden) / np.maximum(np.abs(golden), 1e-30)
    assert (err <= rel).all(), f"{name}: relative error {err.max():.3g} > {rel}"


# the iteration inside the warm-up (the most involved p) in the fast lane, the others in the full suite
@pytest.mark.parametrize(
    "it_index", [pytest.param(0, marks=pytest.mark.slow), 1, pytest.param(2, marks=pytest.mark.slow)]
)
def test_losses_and_gradients(case, g, it_index):
    m, net, data = case
    it = int(g[f"{m}_iters"][it_index])
    start, end = int(g[f"{m}_para_start_warm"]), int(g[f"{m}_para_end_warm"])
    pre = f"{m}_it{it}_"
    # every per-sample term
    channels = g[f"{m}_ce_channels"]
    for fi, i in enumerate((1, 2)):
        for j in range(2):
            logits = data[f"logits_{i}"][j : j + 1, : channels[fi, j]]
            ce, p = bootstrapped_ce(logits, data["cls_gt"][j : j + 1, i], it, start, end)
            rel_close(ce.item(), g[pre + "ce"][fi, j], 1e-5, "ce")
            assert abs(p - g[pre + "p"][fi, j]) <= 1e-12
            masks = [data["gt"]] + ([data["sec_gt"]] if m == "mo" else [])
            for obj, mask in enumerate(masks):
                if np.isnan(g[pre + "boundary_bce"][fi, j, obj]):
                    continue
                bce, dice = boundary_terms(data[f"boundary_{i}"][j, obj], boundary_target(mask[:, i])[j, 0])
                rel_close(bce.item(), g[pre + "boundary_bce"][fi, j, obj], 1e-5, "boundary_bce")
                rel_close(dice.item(), g[pre + "boundary_dice"][fi, j, obj], 1e-5, "boundary_dice")
    losses = LossComputer(start, end).compute(data, it)
    for name in ("loss_1", "loss_2", "total_loss"):
        rel_close(losses[name].item(), g[pre + name], 1e-5, name)
    assert abs(losses["p"] - g[pre + "p_mean"]) <= 1e-12
    iou_names = ["i", "u"] + (["sec_i", "sec_u"] if m == "mo" else [])
    for name in iou_names:
        assert abs(losses[f"hide_iou/{name}"].item() - g[pre + f"iou_{name}"]) <= 2
    # gradients
    net.zero_grad(set_to_none=True)
    losses["total_loss"].backward(retain_graph=True)
    params = dict(net.named_parameters())
    names = [str(n) for n in g[f"{m}_grad_names"]]
    assert names == list(params)
    norms = np.array([params[n].grad.norm().item() for n in names])
    golden_norms = g[pre + "grad_norms"].astype(np.float64)
    for name, norm, gold in zip(names, norms, golden_norms):
        if name == "key_proj.key_proj.bias":
            assert abs(norm - gold) <= 1e-6
        else:
            rel_close(norm, gold, 2e-3, f"grad norm {name}")
    rel_close(np.sqrt((norms**2).sum()), g[pre + "grad_norm_total"], 5e-4, "grad_norm_total")
    for name in g["grad_full_names"]:
        gold = g[pre + f"grad_{name}"]
        err = np.abs(params[str(name)].grad.numpy() - gold).max()
        assert err <= 2e-3 * np.abs(gold).max(), f"grad {name}: {err:.3g}"
