"""An STCN checkpoint in GSFM computes STCN: against tests/golden_data/stcn.npz, the outputs
of STCN's own network and inference for synthetic weights in STCN's key format."""

import pytest
import torch

from inference_core import InferenceCore
from model.checkpoint import load_weights, stcn_absent_keys
from model.memory_util import topk_readout
from model.network import GSFM, STRIDE
from tests.golden import assert_argmax, assert_features, assert_prob, key_list, load, stcn_state_dict
from util.configuration import InferenceConfig
from util.tensor_util import pad_divide_by

pytestmark = pytest.mark.golden


def stcn_network(key_list_name: str = "stcn_eval", single_object: bool = False) -> GSFM:
    network = GSFM(single_object=single_object)
    report = load_weights(network, stcn_state_dict(key_list_name), source=key_list_name)
    assert report.kind.startswith("stcn")
    return network.eval()


@pytest.fixture(scope="module")
def net():
    return stcn_network()


@pytest.fixture(scope="module")
def g():
    return load("stcn")


def padded(x: torch.Tensor) -> torch.Tensor:
    return pad_divide_by(x, STRIDE)[0]


@pytest.mark.parametrize("key_list_name,single_object", [("stcn_eval", False), ("stcn_so", True)])
def test_stcn_key_set_is_gsfm_without_what_gsfm_adds(key_list_name, single_object):
    network = GSFM(single_object)
    absent = set(stcn_absent_keys(network))
    ours = [(k, list(v.shape)) for k, v in network.state_dict().items() if k not in absent]
    assert ours == [(e["key"], e["shape"]) for e in key_list(key_list_name)]
    assert "key_encoder.conv1.bias" in absent and "key_encoder.layer3.0.downsample.0.bias" in absent
    assert "value_encoder.conv1.bias" not in absent  # STCN's value encoder convolutions have biases


@torch.no_grad()
def test_per_frame_outputs(net, g):
    golden = load("propagation")
    frame0, frame1 = (padded(torch.from_numpy(golden["rgb"][:, t])) for t in (0, 1))
    masks = padded(torch.from_numpy(golden["first_masks"]))
    keys = net.encode_key(frame0)
    assert_features(keys.k16, g["k16"], "k16")
    assert_features(keys.f16_thin, g["f16_thin"], "f16_thin")
    value = net.encode_value_objects(frame0, keys.f16, masks)
    assert_features(value.unsqueeze(2), g["value"], "value")
    query = net.encode_key(frame1)
    readout = topk_readout(
        query.k16.flatten(2)[0].t(), keys.k16.flatten(2)[0].t(), value.flatten(2).permute(2, 0, 1).flatten(1), 20
    )
    readout = readout.t().reshape(2, 512, *query.k16.shape[-2:])
    prob = net.decode_objects(readout, query.f16_thin, query.f8, query.f4)
    assert_prob(prob, g["decoder_prob"], "decoder_prob")


@torch.no_grad()
def test_stage0_single_object_value_encoder(g):
    golden = load("propagation")
    net = stcn_network("stcn_so", single_object=True)
    frame0 = padded(torch.from_numpy(golden["rgb"][:, 0]))
    mask = padded(torch.from_numpy(golden["first_masks"][:1]))
    value = net.encode_value(frame0, net.encode_key(frame0).f16, mask)
    assert_features(value.unsqueeze(2), g["value_so"], "value_so")


@torch.no_grad()
@pytest.mark.parametrize("weights", ["s03", "s0"])
def test_propagation_with_stcn_settings(net, g, weights):
    """STCN's inference (top-k 20, a memory frame every 5) on the golden DAVIS-style video;
    the stage-0 checkpoint goes into the multi-object network as STCN's eval scripts load it."""
    if weights == "s0":
        net = stcn_network("stcn_so")
    suffix = "_s0" if weights == "s0" else ""
    video = load("propagation")
    left, right, top, bottom = video["pad"].tolist()
    core = InferenceCore(net, InferenceConfig(top_k=int(g["top_k"]), mem_every=int(g["mem_every"])))
    n = len(video["rgb_uint8"])
    for t in range(n):
        prob = core.step(video["rgb_uint8"][t], video["labels"][0] if t == 0 else None, end=t == n - 1)
        golden = g["prob" + suffix][:, t, 0, top:-bottom, left:-right]
        assert_prob(prob, golden, f"prob frame {t}")
        assert_argmax(core.prob_to_mask(prob), g["out_masks" + suffix][t], golden, f"mask {t}")
    assert core.memory.size == 120  # frames 0 and 5
