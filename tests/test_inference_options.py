"""Inference options that change outputs (off by default): bounded memory, resolution cap."""

import numpy as np
import pytest
import torch

import eval_generic
from inference_core import InferenceCore
from inference_memory_bank import MemoryBank
from tests.golden import golden_network
from tests.helpers import random_clip, user_video
from util.cli import run as cli_run
from util.configuration import InferenceConfig
from util.errors import ConfigError
from util.palette import read_mask


def frame_key(value: float, objects: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """A 2x2 frame whose key and values are all ``value`` (to see which frames stay)."""
    return torch.full((1, 4, 2, 2), value), torch.full((objects, 3, 2, 2), value)


def stored_frames(bank: MemoryBank) -> list[float]:
    return bank._keys[: bank.size : 4, 0].tolist()


def test_bounded_memory_keeps_first_and_most_recent_frames():
    bank = MemoryBank(2, top_k=3, max_frames=3)
    for t in range(6):
        bank.add_memory(*frame_key(t), objects=[0, 1])
    assert stored_frames(bank) == [0, 4, 5]
    assert bank._values[: bank.size : 4, 1, 0].tolist() == [0, 4, 5]


def test_bounded_memory_keeps_each_objects_first_frame():
    bank = MemoryBank(2, top_k=3, max_frames=3)
    key, values = frame_key(0)
    bank.add_memory(key, values[:1], objects=[0])
    for t in (1, 2):
        key, values = frame_key(t)
        bank.add_memory(key, values[:1], objects=[0])
    key, values = frame_key(3)
    bank.add_memory(key, values, objects=[0, 1])  # object 1 joins at frame 3
    key, values = frame_key(4)
    bank.add_memory(key, values, objects=[0, 1])
    assert stored_frames(bank) == [0, 3, 4]
    assert bank.groups == [(0, [0]), (4, [1])]  # object 1 still starts at its first frame


def test_max_memory_frames_at_least_video_memory_changes_nothing():
    net = golden_network()
    frames, mask = random_clip()
    results = []
    for bound in (None, 10, 2):
        core = InferenceCore(net, InferenceConfig(top_k=20, mem_every=2, max_memory_frames=bound))
        results.append(torch.stack([core.step(frames[t], mask if t == 0 else None, end=t == 7) for t in range(8)]))
        assert core.memory.size <= (bound or 10) * 16
    assert torch.equal(results[0], results[1])
    assert not torch.equal(results[0], results[2])  # frames 2 and 4 were dropped from memory
    with pytest.raises(ConfigError, match="--max_memory_frames must be >= 2"):
        InferenceConfig(max_memory_frames=1)


@pytest.mark.slow
def test_resolution_cap_writes_full_size_masks(golden_weights_file, synthetic_root, tmp_path):
    frames, mask = user_video(synthetic_root, tmp_path)
    out = tmp_path / "out"
    cli_run(
        lambda: eval_generic.main(
            [
                "--model",
                str(golden_weights_file),
                "--frames",
                str(frames),
                "--mask",
                str(mask),
                "--output",
                str(out),
                "--device",
                "cpu",
                "--max_size",
                "32",
            ]
        )
    )
    first = read_mask(out / "frames" / "00000.png")
    given = read_mask(mask)
    assert first.shape == given.shape == (64, 96)
    assert np.mean((first > 0) == (given > 0)) > 0.95  # the given mask survives the round trip at half size
    with pytest.raises(ConfigError, match="--max_size must be >= 16"):
        eval_generic.main(
            [
                "--model",
                str(golden_weights_file),
                "--frames",
                str(frames),
                "--mask",
                str(mask),
                "--output",
                str(out),
                "--max_size",
                "8",
            ]
        )


def test_youtube_resize_with_and_without_antialiasing():
    """eval_youtube's --no_antialias resizes as the authors' torchvision (< 0.17) did: plain
    bicubic interpolation of the normalised frame."""
    import torch.nn.functional as F
    from torchvision.transforms import InterpolationMode

    from util.tensor_util import normalise

    frame, _ = random_clip(frames=1, size=64)
    x = normalise(frame[0]).unsqueeze(0)
    prepared = {}
    for antialias in (True, False):
        core = InferenceCore(golden_network(), InferenceConfig(short_side=32, antialias=antialias))
        prepared[antialias], pad = core._prepare(x, InterpolationMode.BICUBIC)
        assert prepared[antialias].shape == (1, 3, 32, 32) and pad == (0, 0, 0, 0)
    plain = F.interpolate(x, size=(32, 32), mode="bicubic", align_corners=False)
    assert torch.allclose(prepared[False], plain, atol=1e-5)
    assert (prepared[True] - plain).abs().max() > 0.05  # antialiasing smooths before subsampling
