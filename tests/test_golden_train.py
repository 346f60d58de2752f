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
    frames = clip_forward(
        net, t(g, "rgb"), t(g, "gt"), t(g, "sec_gt") if multi else None, t(g, "selector") if multi else None
    )
    data = {"gt": t(g, "gt"), "cls_gt": t(g, f"cls_gt_{m}")}
    if multi:
        data.update(sec_gt=t(g, "sec_gt"), selector=t(g, "selector"))
    return m, net, data, frames


def test_forward_outputs(case, g):
    m, _, _, frames = case
    assert len(frames) == 2  # the reference's clip: frames 1 and 2 segmented from frame 0
    for i, out in enumerate(frames, 1):
        assert_features(out.logits, g[f"{m}_logits_{i}"], f"logits_{i}")
        assert_features(out.boundary, g[f"{m}_boundary_{i}"], f"boundary_{i}")
        assert_prob(out.mask, g[f"{m}_mask_{i}"], f"mask_{i}")
        if m == "mo":
            assert_prob(out.sec_mask, g[f"mo_sec_mask_{i}"], f"sec_mask_{i}")
        else:
            assert out.sec_mask is None
    if m == "mo":  # sample 1 has no second object: its boundary logit is exactly 0
        assert (frames[0].boundary[1, 1] == 0).all()


def test_boundary_targets(case, g):
    m, _, data, _ = case
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
    m, net, data, frames = case
    it = int(g[f"{m}_iters"][it_index])
    start, end = int(g[f"{m}_para_start_warm"]), int(g[f"{m}_para_end_warm"])
    pre = f"{m}_it{it}_"
    # every per-sample term
    channels = g[f"{m}_ce_channels"]
    for fi, (i, out) in enumerate(enumerate(frames, 1)):
        for j in range(2):
            logits = out.logits[j : j + 1, : channels[fi, j]]
            ce, p = bootstrapped_ce(logits, data["cls_gt"][j : j + 1, i], it, start, end)
            rel_close(ce.item(), g[pre + "ce"][fi, j], 1e-5, "ce")
            assert abs(p - g[pre + "p"][fi, j]) <= 1e-12
            masks = [data["gt"]] + ([data["sec_gt"]] if m == "mo" else [])
            for obj, mask in enumerate(masks):
                if np.isnan(g[pre + "boundary_bce"][fi, j, obj]):
                    continue
                bce, dice = boundary_terms(out.boundary[j, obj], boundary_target(mask[:, i])[j, 0])
                rel_close(bce.item(), g[pre + "boundary_bce"][fi, j, obj], 1e-5, "boundary_bce")
                rel_close(dice.item(), g[pre + "boundary_dice"][fi, j, obj], 1e-5, "boundary_dice")
    losses = LossComputer(start, end).compute(data, frames, it)
    for name, value in (("loss_1", losses.frames[0]), ("loss_2", losses.frames[1]), ("total_loss", losses.total)):
        rel_close(value.item(), g[pre + name], 1e-5, name)
    assert len(losses.frames) == 2
    assert abs(losses.p - g[pre + "p_mean"]) <= 1e-12
    counts = {"i": losses.iou.intersection, "u": losses.iou.union}
    if m == "mo":
        counts.update(sec_i=losses.sec_iou.intersection, sec_u=losses.sec_iou.union)
    else:
        assert losses.sec_iou is None
    for name, count in counts.items():
        assert abs(count.item() - g[pre + f"iou_{name}"]) <= 2
    # gradients
    net.zero_grad(set_to_none=True)
    losses.total.backward(retain_graph=True)
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
