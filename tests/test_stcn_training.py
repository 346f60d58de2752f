"""Training from an STCN checkpoint: every tensor GSFM adds learns, fusion_2 included, the
training start keeps STCN's masks, and train.py runs stage 3 from STCN's stage-0 file."""

import numpy as np
import pytest
import torch

import train
from inference_core import InferenceCore
from model import zoo
from model.checkpoint import load_weights, read_checkpoint, stcn_absent_keys
from model.losses import LossComputer
from model.network import GSFM
from model.train_forward import clip_forward
from tests.golden import load, stcn_state_dict
from tests.helpers import args_for
from util.atomic import atomic_save
from util.configuration import STAGES, InferenceConfig


def stcn_network(for_training: bool) -> GSFM:
    network = GSFM()
    load_weights(network, stcn_state_dict("stcn_eval"), for_training=for_training)
    return network


def train_steps(network: GSFM, steps: int) -> dict[str, list[bool]]:
    """``steps`` Adam steps on the golden training clip (stage 3's learning rate); for each
    parameter, whether its gradient was non-zero at each step."""
    g = load("train")
    # its first sample (two objects), cropped to 48 x 64 where both objects are
    data = {k: torch.from_numpy(g[k][:1, :, :, 32:80, 32:96]) for k in ("rgb", "gt", "sec_gt")}
    data["cls_gt"] = torch.from_numpy(g["cls_gt_mo"][:1, :, 32:80, 32:96])
    data["selector"] = torch.from_numpy(g["selector"][:1])
    optimizer = torch.optim.Adam(network.parameters(), lr=STAGES[3].lr)
    losses = LossComputer(STAGES[3].start_warm, STAGES[3].end_warm)
    nonzero: dict[str, list[bool]] = {name: [] for name, _ in network.named_parameters()}
    network.train()
    for it in range(steps):
        frames = clip_forward(network, data["rgb"], data["gt"], data["sec_gt"], data["selector"])
        optimizer.zero_grad(set_to_none=False)
        losses.compute(data, frames, it).total.backward()
        for name, p in network.named_parameters():
            nonzero[name].append(bool(p.grad is not None and p.grad.abs().sum() > 0))
        optimizer.step()
    return nonzero


@pytest.mark.slow
def test_every_gsfm_only_tensor_learns_within_two_steps():
    network = stcn_network(for_training=True)
    nonzero = train_steps(network, 2)
    params = dict(network.named_parameters())
    added = [k for k in stcn_absent_keys(network) if k in params]
    assert "decoder.fusion_2.weight" in added and "key_encoder.conv1.bias" in added
    silent = [k for k in added if not any(nonzero[k])]
    assert not silent, f"no gradient in two steps: {silent}"
    # fusion_2 learns from the first step; the filters' first convs once their output conv moved
    assert nonzero["decoder.fusion_2.weight"][0] and nonzero["decoder.fusion_2.bias"][0]
    assert params["decoder.fusion_2.weight"].abs().sum() > 0
    assert not nonzero["lfm.conv1.weight"][0] and nonzero["lfm.conv1.weight"][1]


@pytest.mark.slow
def test_an_all_zero_fusion_2_would_never_learn():
    """Why the training start is not the inference one: behind fusion_2's ReLU, zero is stuck."""
    network = stcn_network(for_training=False)
    nonzero = train_steps(network, 1)  # no gradient and no weight decay on zeros: stuck for good
    assert not any(nonzero["decoder.fusion_2.weight"]) and not any(nonzero["decoder.fusion_2.bias"])
    assert not network.decoder.fusion_2.weight.any()


@pytest.mark.slow
@torch.no_grad()
def test_training_start_keeps_stcn_masks():
    """The small fusion_2 bias of the training start moves no pixel's mask on the golden video
    (the bound allows at most 1e-3 logit), against the exact STCN embedding."""
    video = load("propagation")
    n = 3
    masks, probs = [], []
    for for_training in (False, True):
        core = InferenceCore(stcn_network(for_training).eval(), InferenceConfig(top_k=20, mem_every=5))
        frames = [core.step(video["rgb_uint8"][t], video["labels"][0] if t == 0 else None) for t in range(n)]
        probs.append(torch.stack(frames))
        masks.append(np.stack([core.prob_to_mask(p) for p in frames]))
    assert (masks[0] == masks[1]).mean() >= 0.999
    assert 0 < (probs[0] - probs[1]).abs().max() < 1e-3  # changed, but within the logit bound


@pytest.mark.slow
def test_stage3_from_an_stcn_stage0_checkpoint(synthetic_root, tmp_path, monkeypatch, capsys):
    """``--load_network stcn-s0`` as the docs give it, the file already in the cache (as a
    download leaves it: with its sha256 record)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path = zoo.default_cache_dir() / zoo.MODELS["stcn-s0"].filename
    atomic_save(lambda tmp: torch.save(stcn_state_dict("stcn_so"), tmp), path)
    atomic_save(lambda tmp: tmp.write_text(zoo.sha256_of(path)), path.with_name(path.name + ".sha256"))
    run = train.main(args_for(synthetic_root, tmp_path, stage=3, iterations=4, extra=["--load_network", "stcn-s0"]))
    out = capsys.readouterr()
    assert "an STCN checkpoint: the network computes STCN" in out.out + out.err
    weights = read_checkpoint(run / f"{run.name}_4.pth")
    assert weights["value_encoder.conv1.weight"].shape[1] == 5
    assert weights["lfm.conv2.weight"].abs().sum() > 0  # the filters left the identity
    assert weights["decoder.fusion_2.weight"].abs().sum() > 0
