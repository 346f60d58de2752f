"""The fast paths against the plain reference formulations they replace.

Inference: the streaming engine (sparse chunked top-k read, position-major memory, shared
skip convolutions, no boundary head) against ``reference/inference.py`` on a generated
multi-object video. Training: the batched ``clip_forward`` against ``reference/training.py``,
outputs and gradients.
"""

import numpy as np
import pytest
import torch

from datasets.synthetic import make_video
from inference_core import InferenceCore
from model.network import GSFM
from model.train_forward import clip_forward
from reference.inference import ReferenceInferenceCore
from reference.training import ReferenceGSFM
from tests.golden import assert_argmax, golden_network, golden_state_dict
from util.configuration import InferenceConfig
from util.tensor_util import normalise, unpad


@pytest.fixture(scope="module")
def net():
    return golden_network()


@pytest.fixture(scope="module")
def video():
    # 96x160: 60 memory positions a frame, so top-k 50 truncates from the first frame on
    images, labels = make_video(np.random.RandomState(5), 96, 160, 8, 3, late_objects=False)
    return images, labels[0]


def run_engine(net, images, first_labels, config=InferenceConfig(), num_frames=None, max_affinity_elements=None):
    core = InferenceCore(net, config, num_frames=num_frames)
    if max_affinity_elements is not None:
        core.memory.max_affinity_elements = max_affinity_elements
    probs = [
        core.step(images[t], first_labels if t == 0 else None, end=t == len(images) - 1) for t in range(len(images))
    ]
    return torch.stack(probs, 1), core


@pytest.mark.slow
@pytest.mark.parametrize(
    "options", [dict(top_k=50, mem_every=3), dict(top_k=20, mem_every=2, include_last=True), dict(top_k=5, mem_every=1)]
)
def test_engine_equals_reference_inference(net, video, options):
    images, first_labels = video
    frames = torch.stack([normalise(im) for im in images]).unsqueeze(0)
    first = torch.stack([torch.from_numpy(first_labels == k).float() for k in (1, 2, 3)]).unsqueeze(1)
    reference = ReferenceInferenceCore(net, frames, 3, **options)
    reference.interact(first, 0)
    expected = unpad(reference.prob, reference.pad)[:, :, 0]  # (K+1, T, H, W) at the frame size
    prob, core = run_engine(net, images, first_labels, InferenceConfig(**options))
    assert prob.shape == expected.shape
    err = (prob - expected).abs().max().item()
    assert err <= 1e-5, f"max probability difference {err}"
    for t in range(len(images)):  # equal masks wherever the reference's decision is not a near-tie
        assert_argmax(core.prob_to_mask(prob[:, t]), expected[:, t].argmax(0).numpy(), expected[:, t].numpy())
    # a wrong memory schedule would not show up above if the weights ignored the memory
    assert (prob[1:, 1:].amax(dim=(2, 3)) - prob[1:, 1:].amin(dim=(2, 3))).min() > 0.01


@pytest.mark.slow
def test_memory_layout_options_do_not_change_results(net, video):
    images, first_labels = video
    planned, core = run_engine(net, images, first_labels, num_frames=len(images))
    grown, grown_core = run_engine(net, images, first_labels, max_affinity_elements=97)  # many tiny read chunks
    assert torch.equal(planned, grown) or (planned - grown).abs().max() < 1e-6
    # the planned storage was allocated once and never grew
    assert core.memory._keys.shape[0] == (len(images) // 3 + 2) * (96 // 16) * (160 // 16)
    assert grown_core.memory.size == core.memory.size


@pytest.mark.slow
def test_batched_training_forward_equals_reference():
    """In float64, so that float32 rounding (which differs between the two formulations'
    kernels by up to ~1e-4 of a gradient's largest value, CPU-dependent) cannot hide or fake
    a difference: the formulations must agree to ~1e-15."""
    torch.manual_seed(1)
    rgb = torch.randn(2, 3, 3, 48, 48, dtype=torch.float64)
    gt = (torch.rand(2, 3, 1, 48, 48) > 0.6).double()
    sec_gt = (torch.rand(2, 3, 1, 48, 48) > 0.6).double() * (1 - gt)
    selector = torch.tensor([[1.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    results = []
    for network_class in (GSFM, ReferenceGSFM):
        net = network_class().eval()
        net.load_state_dict(golden_state_dict("train_mo"))
        net.double()
        frames = clip_forward(net, rgb, gt, sec_gt, selector)
        loss = sum(f.logits.square().mean() + f.boundary.square().mean() for f in frames)
        loss.backward()
        outputs = {f"{name}_{i}": value for i, f in enumerate(frames, 1) for name, value in vars(f).items()}
        results.append((outputs, {n: p.grad for n, p in net.named_parameters()}))
    (fast, fast_grads), (ref, ref_grads) = results
    assert fast.keys() == ref.keys()
    for name in ref:
        assert (fast[name] - ref[name]).abs().max() <= 1e-10 * (1 + ref[name].abs().max()), name
    for name, grad in ref_grads.items():
        # + 1e-12: key_proj.bias has a zero true gradient (the |qk|^2 term cancels); only rounding noise is left
        assert (fast_grads[name] - grad).abs().max() <= 1e-10 * grad.abs().max() + 1e-12, name
