"""--winograd: which convolutions switch, how close they stay to the direct ones, the
engine's agreement with the reference's propagation, the evaluation's record, and the
combinations refused."""

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evaluation.record import RECORD_FILE, RecordMismatch
from inference_backend import PyTorchBackend
from inference_core import InferenceCore
from model.winograd import eligible, nnpack_available, use_winograd
from tests.golden import golden_network, load
from tests.test_videos_per_device import davis, evaluate, masks  # noqa: F401  (davis: a fixture)
from util.configuration import InferenceConfig
from util.errors import ConfigError

needs_nnpack = pytest.mark.skipif(not nnpack_available(), reason="this PyTorch build or CPU has no NNPACK")


def test_eligible_convolutions_only():
    assert eligible(nn.Conv2d(8, 8, 3, padding=1))
    for conv in (
        nn.Conv2d(8, 8, 3, padding=1, stride=2),
        nn.Conv2d(8, 8, 3, padding=2, dilation=2),
        nn.Conv2d(8, 8, 3, padding=1, groups=2),
        nn.Conv2d(8, 8, 1),
        nn.Conv2d(8, 8, 7, padding=3),
        nn.Conv2d(8, 8, 3, padding=1, padding_mode="reflect"),
    ):
        assert not eligible(conv), conv


@needs_nnpack
@torch.no_grad()
def test_switch_and_back():
    """Every eligible convolution of the network switches (the decoder's 3x3 ones among them),
    none other; the outputs move by Winograd's rounding only, and switching back gives the
    direct convolution's outputs bit for bit."""
    network = golden_network()
    switched = use_winograd(network)
    assert switched == sum(eligible(m) for m in network.modules()) > 30
    assert "forward" in network.decoder.up_8_4.out_conv.conv1.__dict__
    assert "forward" not in network.key_encoder.layer2[0].conv2.__dict__  # stride 2: direct
    torch.manual_seed(0)
    conv = network.decoder.mask_1
    x = torch.randn(1, 256, 24, 40)
    direct = F.conv2d(x.double(), conv.weight.double(), conv.bias.double(), padding=1)
    winograd = conv(x)
    error = float((winograd.double() - direct).abs().max() / direct.abs().max())
    assert 0 < error < 1e-3
    assert torch.equal(
        conv(x[:, :, :12].repeat(2, 1, 1, 1))[0], F.conv2d(x[:, :, :12], conv.weight, conv.bias, padding=1)[0]
    )
    assert use_winograd(network, False) == switched
    assert torch.equal(conv(x), F.conv2d(x, conv.weight, conv.bias, padding=1))


@needs_nnpack
def test_propagation_agrees_with_the_reference():
    """The golden propagation (the reference's float32 outputs) run with --winograd: nearly
    every mask pixel the same, probabilities within Winograd's rounding carried through the
    network and the memory."""
    g = load("propagation")
    network = golden_network()
    config = InferenceConfig(top_k=int(g["top_k"]), mem_every=int(g["mem_every"]), winograd=True)
    core = InferenceCore(network, config)
    left, right, top, bottom = g["pad"].tolist()  # the reference's padded outputs, cropped back
    frames = g["rgb_uint8"]
    worst, equal, total = 0.0, 0, 0
    for t, frame in enumerate(frames):
        prob = core.step(frame, g["labels"][0] if t == 0 else None, end=t == len(frames) - 1)
        if t == 0:
            continue
        expected = torch.from_numpy(g["prob"][:, t, 0, top:-bottom, left:-right])
        worst = max(worst, float((prob - expected).abs().max()))
        equal += int((prob.argmax(0) == expected.argmax(0)).sum())
        total += expected[0].numel()
    assert 0 < worst < 1e-3
    assert equal / total >= 0.999
    use_winograd(network, False)


def test_refused_combinations():
    with pytest.raises(ConfigError, match="--amp"):
        InferenceConfig(winograd=True, amp=True)
    backend = PyTorchBackend(golden_network())
    backend.device = torch.device("cuda")
    with pytest.raises(ConfigError, match="CPU"):
        backend.use_winograd(True)


@needs_nnpack
@pytest.mark.slow
def test_evaluation_records_it_and_several_videos_at_once_agree(davis, golden_weights_file, tmp_path):  # noqa: F811
    """eval_davis.py --winograd: the record says so (a later run without it is refused, or recomputes
    every video with --overwrite), and
    three videos at once (worker threads calling NNPACK together) give the masks of one at a
    time, bit for bit."""
    one = evaluate(davis, golden_weights_file, tmp_path / "one", "--winograd")
    three = evaluate(davis, golden_weights_file, tmp_path / "three", "--winograd", "--videos_per_device", "3")
    record = json.loads((tmp_path / "one" / RECORD_FILE).read_text())
    assert record["inference"]["winograd"] is True
    expected, actual = masks(tmp_path / "one"), masks(tmp_path / "three")
    assert len(expected) == 4 * 5 and list(actual) == list(expected)
    assert all((actual[name] == mask).all() for name, mask in expected.items())
    assert one["frames"] == three["frames"]
    with pytest.raises(RecordMismatch, match="inference.winograd: True -> False"):  # never mixed silently
        evaluate(davis, golden_weights_file, tmp_path / "one")
    direct = evaluate(davis, golden_weights_file, tmp_path / "one", "--overwrite")
    assert direct["videos_processed"] == 4
    assert json.loads((tmp_path / "one" / RECORD_FILE).read_text())["inference"]["winograd"] is False
