"""Checkpoint formats: GSFM round trip, STCN, single-object -> multi-object, bad files, ImageNet."""

import os

import pytest
import torch
from torchvision.models import ResNet18_Weights, ResNet50_Weights

from model.checkpoint import (
    FUSION_2_LOGIT_SHIFT,
    GSFM_ONLY_PREFIXES,
    CheckpointError,
    load_network_file,
    load_weights,
)
from model.imagenet import cached_weights_path, imagenet_state_dicts
from model.network import GSFM
from tests.golden import golden_state_dict, stcn_state_dict
from tests.helpers import offline_download
from util.atomic import atomic_save


def save(state, path):
    atomic_save(lambda tmp: torch.save(state, tmp), path)
    return path


def test_gsfm_checkpoint_round_trips(tmp_path):
    path = save(golden_state_dict("eval"), tmp_path / "gsfm.pth")
    net = GSFM()
    report = load_network_file(net, path)
    assert report.kind == "gsfm" and not report.fresh
    for k, v in net.state_dict().items():
        assert torch.equal(v, golden_state_dict("eval")[k]), k
    # saved again from the network, it is the same file content
    path2 = save(net.state_dict(), tmp_path / "again.pth")
    again = torch.load(path2, map_location="cpu", weights_only=True)
    assert list(again) == list(golden_state_dict("eval"))


def test_ddp_prefix_and_full_checkpoint_are_accepted(tmp_path):
    state = {"module." + k: v for k, v in golden_state_dict("eval").items()}
    path = save({"network": state, "it": 5}, tmp_path / "full.pth")
    assert load_network_file(GSFM(), path).kind == "gsfm"


@pytest.mark.parametrize("for_training", [False, True])
def test_stcn_checkpoint_is_embedded_as_stcn(tmp_path, for_training):
    stcn = stcn_state_dict("stcn_eval")
    net = GSFM()
    report = load_network_file(net, save(stcn, tmp_path / "stcn.pth"), for_training=for_training)
    assert report.kind == "stcn" and report.stcn_init == "identity"
    assert "--top 20 --mem_every 5" in report.describe() and "\n" not in report.describe()
    sd = net.state_dict()
    assert torch.equal(sd["key_comp.weight"], stcn["key_comp.weight"])
    assert not sd["key_encoder.conv1.bias"].any() and not sd["key_encoder.layer3.5.conv3.bias"].any()
    for name in ("lfm.conv2", "decoder.hfm.conv2"):
        assert not sd[f"{name}.weight"].any() and not sd[f"{name}.bias"].any()
    identity = torch.nn.init.dirac_(torch.empty(256, 256, 3, 3))
    for name in ("decoder.mask_1", "decoder.predict_mask"):
        assert torch.equal(sd[f"{name}.weight"], identity) and not sd[f"{name}.bias"].any()
    assert not sd["decoder.fusion_2.weight"].any()
    bias = sd["decoder.fusion_2.bias"]
    if for_training:  # open ReLU, logit change bounded by FUSION_2_LOGIT_SHIFT
        assert (bias > 0).all()
        bound = float(bias[0]) * float(sd["decoder.pred.weight"].abs().sum())
        assert bound == pytest.approx(FUSION_2_LOGIT_SHIFT, rel=1e-5)
    else:
        assert not bias.any()
    assert sd["decoder.boundary_1.weight"].std() > 0  # the rest of the boundary branch: fresh


def test_stcn_checkpoint_with_random_gsfm_layers_on_request():
    net = GSFM()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    report = load_weights(net, stcn_state_dict("stcn_eval"), stcn_init="random")
    assert report.kind == "stcn" and "lfm.conv2.weight" in report.fresh
    assert torch.equal(net.state_dict()["lfm.conv2.weight"], before["lfm.conv2.weight"])
    assert "fresh initialisation" in report.describe()
    with pytest.raises(ValueError, match="stcn_init"):
        load_weights(GSFM(), stcn_state_dict("stcn_eval"), stcn_init="zeros")


def test_stage0_stcn_checkpoint_into_both_networks():
    so = stcn_state_dict("stcn_so")
    assert load_weights(GSFM(single_object=True), so).kind == "stcn"
    report = load_weights(GSFM(), so)
    assert report.kind == "stcn single-object" and report.extended == ["value_encoder.conv1.weight"]


def test_mixed_formats_are_refused_naming_the_tensors():
    # GSFM's key encoder (with biases) without the GSFM modules: neither format
    state = {k: v for k, v in golden_state_dict("eval").items() if not k.startswith(GSFM_ONLY_PREFIXES)}
    with pytest.raises(CheckpointError, match="mixes the GSFM and STCN formats") as e:
        load_weights(GSFM(), state, source="mixed.pth")
    assert "present: key_encoder.conv1.bias" in str(e.value) and "absent: decoder.boundary_1.weight" in str(e.value)
    # STCN with GSFM's spectral filters only
    state = dict(stcn_state_dict("stcn_eval"))
    state.update({k: v for k, v in golden_state_dict("eval").items() if k.startswith("lfm.")})
    with pytest.raises(CheckpointError, match="present: lfm.conv1.weight"):
        load_weights(GSFM(), state, source="mixed.pth")


def test_neither_format_lists_missing_and_extra():
    state = dict(stcn_state_dict("stcn_eval"))
    state.pop("decoder.pred.weight")
    state["memory.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="neither a GSFM nor an STCN checkpoint") as e:
        load_weights(GSFM(), state, source="odd.pth")
    assert "missing keys: " in str(e.value) and "decoder.pred.weight" in str(e.value)
    assert "unexpected keys: memory.weight" in str(e.value)


@pytest.mark.parametrize("for_training", [False, True])
def test_single_object_checkpoint_into_multi_object_network(for_training):
    so = golden_state_dict("train_so")
    net = GSFM(single_object=False)
    report = load_weights(net, so, for_training=for_training)
    assert report.extended == ["value_encoder.conv1.weight"]
    w = net.state_dict()["value_encoder.conv1.weight"]
    assert w.shape == (64, 5, 7, 7)
    assert torch.equal(w[:, :4], so["value_encoder.conv1.weight"])
    extra = w[:, 4].reshape(64, -1)
    if for_training:  # orthogonal: rows of the (64, 49) matrix orthonormal on the 49-dim side
        gram = extra.T @ extra
        assert torch.allclose(gram, torch.eye(49), atol=1e-5)
    else:
        assert (extra == 0).all()


def test_unrelated_checkpoint_lists_keys():
    state = dict(golden_state_dict("eval"))
    state["extra.weight"] = torch.zeros(3)
    state.pop("key_comp.bias")
    state["decoder.pred.weight"] = torch.zeros(2, 256, 3, 3)
    with pytest.raises(CheckpointError) as e:
        load_weights(GSFM(), state, source="foo.pth")
    msg = str(e.value)
    assert "foo.pth" in msg and "missing keys: key_comp.bias" in msg
    assert "unexpected keys: extra.weight" in msg and "decoder.pred.weight (2, 256, 3, 3)" in msg


def test_multi_object_checkpoint_into_single_object_network_is_refused():
    with pytest.raises(CheckpointError, match="mis-shaped keys: value_encoder.conv1.weight"):
        load_weights(GSFM(single_object=True), golden_state_dict("eval"))


def test_truncated_checkpoint_is_named(tmp_path):
    path = save(golden_state_dict("eval"), tmp_path / "gsfm.pth")
    data = path.read_bytes()
    bad = tmp_path / "truncated.pth"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.pth: not a readable PyTorch checkpoint"):
        load_network_file(GSFM(), bad)
    with pytest.raises(CheckpointError, match="not found"):
        load_network_file(GSFM(), tmp_path / "nothing.pth")


def test_imagenet_init_from_torchvision_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline_download)
    with pytest.raises(CheckpointError, match="--no_imagenet"):
        imagenet_state_dicts()
    # small fake weight files: only the stems, the rest of the backbone stays fresh
    g = torch.Generator().manual_seed(1)
    fake50 = {
        "conv1.weight": torch.randn(64, 3, 7, 7, generator=g),
        "bn1.weight": torch.rand(64, generator=g),
        "layer1.0.conv1.weight": torch.randn(64, 64, 1, 1, generator=g),
        "fc.weight": torch.zeros(10, 2048),
    }
    fake18 = {"conv1.weight": torch.randn(64, 3, 7, 7, generator=g), "bn1.bias": torch.randn(64, generator=g)}
    for weights, state in ((ResNet50_Weights.IMAGENET1K_V1, fake50), (ResNet18_Weights.IMAGENET1K_V1, fake18)):
        path = cached_weights_path(weights)
        assert path.startswith(str(tmp_path))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        torch.save(state, path)
    net = GSFM(single_object=False, imagenet=imagenet_state_dicts())
    sd = net.state_dict()
    assert torch.equal(sd["key_encoder.conv1.weight"], fake50["conv1.weight"])
    assert torch.equal(sd["key_encoder.res2.0.conv1.weight"], fake50["layer1.0.conv1.weight"])
    assert (sd["key_encoder.conv1.bias"] == 0).all()
    assert torch.equal(sd["value_encoder.conv1.weight"][:, :3], fake18["conv1.weight"])
    assert torch.equal(sd["value_encoder.bn1.bias"], fake18["bn1.bias"])
    extra = sd["value_encoder.conv1.weight"][:, 3:].reshape(64, -1)  # orthogonal: 64 orthonormal rows
    assert torch.allclose(extra @ extra.T, torch.eye(64), atol=1e-5)
