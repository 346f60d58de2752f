"""The propagation engine against tests/golden_data/propagation*.npz."""
import numpy as np
import pytest
import torch

from inference_core import InferenceCore, prob_to_mask
from inference_core_yv import InferenceCoreYV, LabelMapping
from model.network import GSFM
from tests.golden import assert_argmax, assert_prob, golden_state_dict, load

pytestmark = pytest.mark.golden


@pytest.fixture(scope="module")
def net():
    net = GSFM().eval()
    net.load_state_dict(golden_state_dict("eval"))
    return net


@pytest.mark.parametrize("include_last", [False, True])
def test_davis_propagation(net, include_last):
    g = load("propagation")
    suffix = "_include_last" if include_last else ""
    rgb = torch.from_numpy(g["rgb"])[0]
    n = rgb.shape[0]
    core = InferenceCore(net, 2, top_k=int(g["top_k"]), mem_every=int(g["mem_every"]), include_last=include_last)
    for t in range(n):
        first = t == 0
        prob = core.step(rgb[t], torch.from_numpy(g["first_masks"][:, 0]) if first else None,
                         [1, 2] if first else [], end=t == n - 1)
        assert list(core.pad) == g["pad"].tolist()
        assert_prob(prob, g["prob" + suffix][:, t], f"prob frame {t}")
        mask = prob_to_mask(prob, core.pad, (89, 151))
        assert_argmax(mask, g["out_masks" + suffix][t], g["prob" + suffix][:, t, 0, 3:-4, 4:-5], f"mask {t}")
    # memory: frames 0 and 3 (60 positions each), never the last
    assert core.memory.size == 120


def test_youtube_propagation_with_late_object(net):
    g = load("propagation_yv")
    rgb = torch.from_numpy(g["rgb"])[0]
    ann = g["annotations"]
    n = rgb.shape[0]
    mapping = LabelMapping(np.unique(ann))
    assert mapping.labels == [2, 5]
    core = InferenceCoreYV(net, len(mapping), top_k=int(g["top_k"]), mem_every=int(g["mem_every"]),
                           req_frames=g["req_frames"].tolist())
    first_labelled = min(t for t in range(n) if ann[t].any())
    for t in range(n):
        labelled = bool(ann[t].any())
        prob = core.step(rgb[t], mapping.one_hot(ann[t]) if labelled else None,
                         mapping.objects_in(ann[t]), end=t == n - 1)
        if prob is None:
            assert t in (2, 4)
            prob = core.initial_prob((96, 160), torch.device("cpu"))
        assert_prob(prob, g["prob"][:, t], f"prob frame {t}")
        mask = prob_to_mask(prob, core.pad, (89, 151)).numpy()
        crop = g["prob"][:, t, 0, 3:-4, 4:-5]
        assert_argmax(mask, g["out_masks"][t], crop, f"mask {t}")
        assert_argmax(mapping.to_labels(mask), g["out_labels"][t], crop, f"labels {t}")
        written = t >= first_labelled and t in g["req_frames"]
        assert written == g["written"][t]
    # object 1 remembers frames 0, 3, 6; object 2 frames 3, 6
    assert core.memory.size == 180 and core.memory.start == {0: 0, 1: 60}
