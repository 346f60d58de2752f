"""The fast paths against the plain reference formulations they replace.

Inference: the streaming engine (sparse chunked top-k read, position-major memory, shared
skip convolutions, no boundary head) against ``reference/inference.py`` on a
generated multi-object video. Training: the batched ``clip_forward`` against
``reference/training.py``, outputs and gradients.
"""
import numpy as np
import pytest
import torch

from datasets.synthetic import make_video
from inference_core import InferenceCore, output_prob, prob_to_mask
from model.network import GSFM
from model.train_forward import clip_forward
from tests.golden import assert_argmax, golden_state_dict
from reference.inference import ReferenceInferenceCore
from reference.training import ReferenceGSFM
from util.tensor_util import normalise_rgb


@pytest.fixture(scope="module")
def net():
    net = GSFM().eval()
    net.load_state_dict(golden_state_dict("eval"))
    return net


@pytest.fixture(scope="module")
def video():
    images, labels = make_video(np.random.RandomState(5), 120, 200, 11, 3, late_objects=False)
    frames = torch.stack([normalise_rgb(im) for im in images])
    first = torch.stack([torch.from_numpy(labels[0] == k).float() for k in (1, 2, 3)])
    return frames, first


def run_engine(net, frames, first, **options):
    num_frames = options.pop("num_frames", None)
    max_elements = options.pop("max_affinity_elements", None)
    core = InferenceCore(net, 3, num_frames=num_frames, **options)
    if max_elements is not None:
        core.memory.max_affinity_elements = max_elements
    probs = []
    for t in range(len(frames)):
        probs.append(core.step(frames[t], first if t == 0 else None, [1, 2, 3] if t == 0 else [],
                               end=t == len(frames) - 1))
    return torch.stack(probs, 1), core


@pytest.mark.parametrize("options", [dict(top_k=50, mem_every=3), dict(top_k=20, mem_every=2, include_last=True),
                                     dict(top_k=5, mem_every=1)])
def test_engine_equals_reference_inference(net, video, options):
    frames, first = video
    reference = ReferenceInferenceCore(net, frames.unsqueeze(0), 3, **options)
    reference.interact(first.unsqueeze(1), 0)
    prob, core = run_engine(net, frames, first, **options)
    assert core.pad == reference.pad
    assert prob.shape == reference.prob.shape
    err = (prob - reference.prob).abs().max().item()
    assert err <= 1e-5, f"max probability difference {err}"
    for t in range(len(frames)):  # equal masks wherever the reference's decision is not a near-tie
        assert_argmax(prob_to_mask(prob[:, t], core.pad, (120, 200)), prob_to_mask(reference.prob[:, t], reference.pad,
                      (120, 200)).numpy(), output_prob(reference.prob[:, t], reference.pad, (120, 200))[:, 0].numpy())
    # a wrong memory schedule would not show up above if the weights ignored the memory
    assert (prob[1:, 1:].amax(dim=(2, 3, 4)) - prob[1:, 1:].amin(dim=(2, 3, 4))).min() > 0.01


def test_memory_layout_options_do_not_change_results(net, video):
    frames, first = video
    planned, core = run_engine(net, frames, first, num_frames=len(frames))
    grown, grown_core = run_engine(net, frames, first, max_affinity_elements=97)  # many tiny read chunks
    assert torch.equal(planned, grown) or (planned - grown).abs().max() < 1e-6
    # the planned storage was allocated once and never grew
    assert core.memory._keys.shape[0] == (len(frames) // 3 + 2) * (128 // 16) * (208 // 16)
    assert grown_core.memory.size == core.memory.size


def test_batched_training_forward_equals_reference():
    """In float64, so that float32 rounding (which differs between the two formulations'
    kernels by up to ~1e-4 of a gradient's largest value, CPU-dependent) cannot hide or fake
    a difference: the formulations must agree to ~1e-15."""
    torch.manual_seed(1)
    rgb = torch.randn(2, 3, 3, 64, 64, dtype=torch.float64)
    gt = (torch.rand(2, 3, 1, 64, 64) > 0.6).double()
    sec_gt = (torch.rand(2, 3, 1, 64, 64) > 0.6).double() * (1 - gt)
    selector = torch.tensor([[1.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    results = []
    for network_class in (GSFM, ReferenceGSFM):
        net = network_class().eval()
        net.load_state_dict(golden_state_dict("train_mo"))
        net.double()
        out = clip_forward(net, rgb, gt, sec_gt, selector)
        loss = sum(out[f"logits_{i}"].square().mean() + out[f"boundary_{i}"].square().mean() for i in (1, 2))
        loss.backward()
        results.append((out, {n: p.grad for n, p in net.named_parameters()}))
    (fast, fast_grads), (ref, ref_grads) = results
    assert fast.keys() == ref.keys()
    for name in ref:
        assert (fast[name] - ref[name]).abs().max() <= 1e-10 * (1 + ref[name].abs().max()), name
    for name, grad in ref_grads.items():
        # + 1e-12: key_proj.bias has a zero true gradient (the |qk|^2 term cancels); only rounding noise is left
        assert (fast_grads[name] - grad).abs().max() <= 1e-10 * grad.abs().max() + 1e-12, name
