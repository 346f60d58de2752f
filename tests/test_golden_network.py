"""The inference network's pieces against tests/golden_data/eval_network.npz."""

import pytest
import torch

from model.memory_util import affinity_logits, aggregate_prob, softmax_full, topk_readout
from model.network import GSFM
from model.synthetic_weights import fingerprint, synthetic_state_dict, tensor_kinds
from tests.golden import assert_features, assert_prob, golden_network, golden_state_dict, key_list, load

pytestmark = pytest.mark.golden


@pytest.fixture(scope="module")
def net():
    return golden_network()


@pytest.fixture(scope="module")
def g():
    return load("eval_network")


def t(g, name):
    return torch.from_numpy(g[name])


@pytest.mark.parametrize("single_object,key_list_name", [(False, "eval"), (False, "train_mo"), (True, "train_so")])
def test_state_dict_names_shapes_and_kinds_equal_reference(single_object, key_list_name):
    network = GSFM(single_object)
    ours = [
        (k, list(v.shape), kind) for (k, v), kind in zip(network.state_dict().items(), tensor_kinds(network).values())
    ]
    ref = [(e["key"], e["shape"], e["kind"]) for e in key_list(key_list_name)]
    assert ours == ref  # order too: the reference's gradient list follows it


def test_synthetic_weights_are_seeded_per_tensor():
    """Each tensor has its own seed: the weights do not depend on the other tensors, and a
    changed rule changes the fingerprint the golden data recorded."""
    state = golden_state_dict("eval")
    so = golden_state_dict("train_so")
    shared = [k for k in state if k != "value_encoder.conv1.weight"]
    assert all(torch.equal(state[k], so[k]) for k in shared)
    assert state["key_encoder.bn1.running_var"].min() >= 0.75 and state["key_encoder.bn1.weight"].min() >= 0.5
    tampered = dict(state)
    tampered["key_proj.key_proj.weight"] = state["key_proj.key_proj.weight"] / 4  # without its gain
    assert fingerprint(tampered) != fingerprint(state)
    assert fingerprint(synthetic_state_dict(GSFM())) == fingerprint(state)


@torch.no_grad()
def test_key_encoder(net, g):
    f16_backbone, f8, f4 = net.key_encoder(t(g, "frame"))
    assert_features(f16_backbone, g["f16_backbone"], "f16_backbone")
    assert_features(f8, g["f8"], "f8")
    assert_features(f4, g["f4"], "f4")
    keys = net.encode_key(t(g, "frame"))
    for name in ("k16", "f16_thin", "f16", "f8", "f4"):
        assert_features(getattr(keys, name), g[name], name)


@torch.no_grad()
def test_spectral_modules_alone(net, g):
    assert_features(net.lfm(t(g, "lfm_in")), g["lfm_out"], "lfm_out")
    assert_features(net.decoder.hfm(t(g, "hfm_in")), g["hfm_out"], "hfm_out")


@torch.no_grad()
@pytest.mark.parametrize("k", [2, 3])
def test_value_encoder(net, g, k):
    value = net.encode_value_objects(t(g, "frame"), t(g, "f16"), t(g, f"masks{k}"))
    assert_features(value.unsqueeze(2), g[f"value{k}"], f"value{k}")


def sparse_readout(g, query_key: torch.Tensor, max_elements: int = 2**25) -> torch.Tensor:
    """The engine's top-k readout on the golden memory, shaped like the reference's."""
    mem_k, mem_v = t(g, "mem_k")[0].t(), t(g, "mem_v")  # (N, 64), (2, 512, N)
    out = topk_readout(
        query_key.flatten(2)[0].t(), mem_k, mem_v.permute(2, 0, 1).flatten(1), int(g["top_k"]), max_elements
    )
    return out.t().reshape(2, 512, 6, 10)


@torch.no_grad()
def test_memory_read(net, g):
    logits = affinity_logits(t(g, "mem_k"), t(g, "k16").flatten(2))
    assert_features(logits, g["affinity_logits"], "affinity_logits")
    assert_prob(softmax_full(t(g, "affinity_logits")), g["affinity_full"], "affinity_full")
    readout = torch.bmm(t(g, "mem_v"), t(g, "affinity_topk").expand(2, -1, -1)).view(2, 512, 6, 10)
    assert_features(readout, g["readout"], "readout")
    n = g["mem_k"].shape[-1]
    # one chunk, then chunks of 7 and of 1 query rows: the chunking must not change anything
    for max_elements in (2**25, 7 * n, 1):
        assert_features(sparse_readout(g, t(g, "k16"), max_elements), g["readout"], f"readout/{max_elements}")


@torch.no_grad()
def test_decoder_and_aggregation(net, g):
    expand = lambda name: t(g, name).expand(2, -1, -1, -1)  # noqa: E731
    mask_logit, boundary = net.decode(t(g, "readout"), expand("f16_thin"), expand("f8"), expand("f4"))
    assert_features(mask_logit, g["decoder_logits"], "decoder_logits")
    assert_features(boundary, g["decoder_boundary"], "decoder_boundary")
    prob = net.decode_objects(t(g, "readout"), t(g, "f16_thin"), t(g, "f8"), t(g, "f4"))
    assert_prob(prob, g["seg_prob"], "seg_prob")
    assert_prob(aggregate_prob(t(g, "seg_prob")), g["seg_prob_aggregated"], "seg_prob_aggregated")


@torch.no_grad()
def test_decoding_objects_one_pass_each_equals_one_batch(net, g):
    """objects_per_pass bounds the decoder's memory; the two objects' logits and boundaries
    stay those of one batch (one frame's skip features shared by both either way)."""
    args = (t(g, "readout"), t(g, "f16_thin").expand(2, -1, -1, -1), t(g, "f8"), t(g, "f4"))
    batch_logit, batch_boundary = net.decode(*args)
    logit, boundary = net.decode(*args, objects_per_pass=1)
    assert logit.shape == batch_logit.shape == (2, 1, *t(g, "frame").shape[-2:])
    torch.testing.assert_close(logit, batch_logit, rtol=0, atol=1e-5)
    torch.testing.assert_close(boundary, batch_boundary, rtol=0, atol=1e-5)
    assert (logit[0] - logit[1]).abs().max() > 1e-2  # two different objects, not one repeated


@torch.no_grad()
def test_end_to_end_frame(net, g):
    """Key encoding -> value encoding -> read -> decode from the frame alone."""
    keys = net.encode_key(t(g, "frame"))
    value = net.encode_value_objects(t(g, "frame"), keys.f16, t(g, "masks2"))
    assert_features(value.unsqueeze(2), g["value2"], "value2")
    readout = sparse_readout(g, keys.k16)
    prob = net.decode_objects(readout, keys.f16_thin, keys.f8, keys.f4)
    assert_prob(prob, g["seg_prob"], "seg_prob")


def test_spectral_window_is_high_pass_for_hfm():
    """g peaks at (H//2, W//2): in an un-shifted spectrum that is the highest frequency."""
    from model.spectral import gaussian_window

    w = gaussian_window(7, 11, torch.device("cpu"))
    assert w[3, 5] == 1.0 and w.argmax() == 3 * 11 + 5
    assert torch.isclose(w[0, 0], torch.exp(torch.tensor(-(3.0**2 + 5.0**2) / (2 * 7.0**2))))
