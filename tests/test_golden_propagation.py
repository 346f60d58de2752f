"""The propagation engine against tests/golden_data/propagation*.npz, through the engine's
public per-frame contract (uint8 frames and index-mask annotations in, probabilities at the
input size out)."""

import pytest
import torch

from inference_core import InferenceCore
from model.network import STRIDE
from tests.golden import assert_argmax, assert_prob, golden_network, load
from util.configuration import InferenceConfig
from util.tensor_util import normalise, pad_divide_by

pytestmark = pytest.mark.golden


@pytest.fixture(scope="module")
def net():
    return golden_network()


def cropped(g, name, t):
    """Golden padded probabilities of frame t, cropped to the frame (pad [4, 5, 3, 4])."""
    left, right, top, bottom = g["pad"].tolist()
    return g[name][:, t, 0, top:-bottom, left:-right]


def test_input_conventions():
    g = load("propagation")
    assert torch.equal(normalise(g["rgb_uint8"][0]), torch.from_numpy(g["rgb"][0, 0]))  # bit for bit
    channels_first = torch.from_numpy(g["rgb_uint8"][0]).permute(2, 0, 1)
    assert torch.equal(normalise(channels_first), torch.from_numpy(g["rgb"][0, 0]))
    _, pad = pad_divide_by(torch.zeros(1, 3, 89, 151), STRIDE)
    assert list(pad) == g["pad"].tolist()


@pytest.mark.parametrize("include_last", [False, True])
def test_davis_propagation(net, include_last):
    g = load("propagation")
    suffix = "_include_last" if include_last else ""
    frames = g["rgb_uint8"]
    n = len(frames)
    core = InferenceCore(
        net, InferenceConfig(top_k=int(g["top_k"]), mem_every=int(g["mem_every"]), include_last=include_last)
    )
    for t in range(n):
        prob = core.step(frames[t], g["labels"][0] if t == 0 else None, end=t == n - 1)
        assert prob.shape == (3, 89, 151)
        golden = cropped(g, "prob" + suffix, t)
        assert_prob(prob, golden, f"prob frame {t}")
        assert_argmax(core.prob_to_mask(prob), g["out_masks" + suffix][t], golden, f"mask {t}")
    assert core.object_ids == [1, 2]
    # memory: frames 0 and 3 (60 positions each), never the last
    assert core.memory.size == 120


def test_youtube_propagation_with_late_object(net):
    g = load("propagation_yv")
    frames, ann = g["rgb_uint8"], g["annotations"]
    n = len(frames)
    required = set(g["req_frames"].tolist())
    core = InferenceCore(
        net, InferenceConfig(top_k=int(g["top_k"]), mem_every=int(g["mem_every"])), object_ids=[2, 5]
    )  # all labels of the video, sorted, as the reader gives them
    first_labelled = min(t for t in range(n) if ann[t].any())
    for t in range(n):
        prob = core.step(frames[t], ann[t] if ann[t].any() else None, end=t == n - 1, need_output=t in required)
        if prob is None:  # skipped: neither requested nor due as memory
            assert t in (2, 4)
            assert not g["prob"][1:, t].any()  # the golden run left them untouched
            continue
        golden = cropped(g, "prob", t)
        assert_prob(prob, golden, f"prob frame {t}")
        labels = core.prob_to_mask(prob)
        assert_argmax(labels, g["out_labels"][t], golden, f"labels {t}")
        assert (t >= first_labelled and t in required) == g["written"][t]
    # object 2 remembers frames 0, 3, 6; object 5 frames 3, 6
    assert core.memory.size == 180 and core.memory.groups == [(0, [0]), (60, [1])]


def test_objects_added_as_they_come_give_the_same_result(net):
    """Without the ids in advance, the engine adds object 5 when frame 3 brings it."""
    g = load("propagation_yv")
    frames, ann = g["rgb_uint8"], g["annotations"]
    core = InferenceCore(net, InferenceConfig(top_k=int(g["top_k"]), mem_every=int(g["mem_every"])))
    required = set(g["req_frames"].tolist())
    for t in range(len(frames)):
        prob = core.step(frames[t], ann[t] if ann[t].any() else None, need_output=t in required)
        if prob is None:
            continue
        golden = cropped(g, "prob", t)
        assert prob.shape[0] == (2 if t < 3 else 3)
        assert_prob(prob, golden[: len(prob)], f"prob frame {t}")
        assert golden[len(prob) :].max(initial=0) < 1e-6  # the later object has no probability before it comes
    assert core.object_ids == [2, 5]
