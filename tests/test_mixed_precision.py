"""--amp: channels-last convolutions, the spectral modules' plain layout, the agreement with
float32, and the fall-back on a CPU without bfloat16 instructions."""

import argparse
import math

import pytest
import torch

from inference_core import InferenceCore
from model.spectral import HFM, is_channels_last
from scripts import benchmarking as benchmark
from tests.golden import golden_network, load
from util import precision
from util.configuration import InferenceConfig, add_arguments
from util.errors import ConfigError


def conv_layouts(network) -> dict[str, bool]:
    """Whether each convolution weight is channels-last (those with one input channel or a 1x1
    kernel are both layouts at once, so they are left out)."""
    return {
        name: is_channels_last(p)
        for name, p in network.named_parameters()
        if p.dim() == 4 and p.shape[1] > 1 and p.shape[2:] != (1, 1)
    }


@pytest.fixture
def network():
    return golden_network()


def test_channels_last_weights_and_back(network):
    weights = {n: p.detach().clone() for n, p in network.named_parameters()}
    ids = {n: id(p) for n, p in network.named_parameters()}
    network.use_channels_last()
    assert all(conv_layouts(network).values())
    network.use_channels_last(False)
    assert not any(conv_layouts(network).values())
    for name, p in network.named_parameters():  # same values, same parameter objects (an optimiser keeps them)
        assert torch.equal(p, weights[name]) and id(p) == ids[name]


def test_spectral_module_converts_at_its_boundaries():
    torch.manual_seed(0)
    hfm = HFM(8)
    x = torch.randn(2, 8, 12, 20)
    plain = hfm(x)
    nhwc = hfm(x.contiguous(memory_format=torch.channels_last))
    assert is_channels_last(nhwc) and not is_channels_last(plain)
    assert torch.equal(plain, nhwc)  # computed on the same plain float32 copy


def propagate(core: InferenceCore, frames: int = 3) -> list[torch.Tensor]:
    g = load("propagation")
    return [core.step(frame, g["labels"][0] if t == 0 else None) for t, frame in enumerate(g["rgb_uint8"][:frames])]


@pytest.mark.slow
@pytest.mark.skipif(not precision.cpu_bfloat16_instructions(), reason="bfloat16 is emulated on this CPU (slow)")
def test_amp_is_channels_last_and_agrees_with_float32(network):
    """bfloat16 keeps ~2-3 decimal digits: probabilities move by ~1e-2 at most; pixels whose
    float32 decision has a margin above 0.05 must agree (at least 99.5% of them, the CUDA
    lane's float16 rule). A float32 engine on the same network puts it back in the plain
    layout, whose outputs the golden tests check."""
    exact = propagate(InferenceCore(network))
    amp_core = InferenceCore(network, InferenceConfig(amp=True))
    assert amp_core.amp and all(conv_layouts(network)[n] for n in ("key_encoder.conv1.weight", "decoder.pred.weight"))
    amp = propagate(amp_core)
    agree = decided = 0
    for p32, p16 in zip(exact, amp):
        top2 = p32.sort(dim=0).values[-2:]
        margin_ok = (top2[1] - top2[0]) > 0.05
        agree += int(((p32.argmax(0) == p16.argmax(0)) & margin_ok).sum())
        decided += int(margin_ok.sum())
    worst = max(float((a - b).abs().max()) for a, b in zip(exact, amp))
    assert decided > 0.5 * sum(p[0].numel() for p in exact)
    assert agree / decided >= 0.995 and 0 < worst < 0.05
    InferenceCore(network)
    assert not any(conv_layouts(network).values())


@pytest.fixture
def no_bfloat16(monkeypatch):
    """A CPU without bfloat16 instructions, on which bfloat16 measured 61 times slower."""
    monkeypatch.setattr(precision, "cpu_bfloat16_instructions", lambda: [])
    monkeypatch.setattr(precision, "bfloat16_slowdown", lambda: 61.0)


def test_amp_on_a_cpu_without_bfloat16_warns_and_falls_back_unless_insisted(network, no_bfloat16):
    with pytest.warns(precision.SlowAmpWarning, match="took 61x the time of float32 here; falling back to float32"):
        core = InferenceCore(network, InferenceConfig(amp=True))
    assert not core.amp and not any(conv_layouts(network).values())  # float32, plain layout: the exact outputs
    with pytest.warns(precision.SlowAmpWarning, match="using bfloat16 anyway"):
        core = InferenceCore(network, InferenceConfig(amp=True, amp_anyway=True))
    assert core.amp and conv_layouts(network)["key_encoder.conv1.weight"]
    # CUDA autocasts to float16 whatever the CPU; without --amp nothing is checked
    assert precision.autocast_enabled(torch.device("cuda"), True)
    assert not precision.autocast_enabled(torch.device("cpu"), False)


def test_amp_with_bfloat16_instructions_needs_no_warning(monkeypatch, recwarn):
    monkeypatch.setattr(precision, "cpu_bfloat16_instructions", lambda: ["amx_bf16"])
    assert precision.autocast_enabled(torch.device("cpu"), True)
    assert not [w for w in recwarn if issubclass(w.category, precision.SlowAmpWarning)]


def test_bfloat16_slowdown_is_measured():
    ratio = precision.bfloat16_slowdown()
    assert math.isfinite(ratio) and ratio > 0
    assert precision.autocast_dtype(torch.device("cpu")) == torch.bfloat16
    assert precision.autocast_dtype(torch.device("cuda")) == torch.float16


def test_amp_anyway_is_an_option_that_needs_amp():
    parser = argparse.ArgumentParser()
    add_arguments(parser, InferenceConfig)
    args = parser.parse_args(["--amp", "--amp_anyway"])
    assert args.amp and args.amp_anyway
    with pytest.raises(ConfigError, match="--amp_anyway .* needs --amp"):
        InferenceConfig(amp_anyway=True)


@pytest.mark.slow
def test_benchmark_times_each_precision_and_layout(network):
    """The benchmark's rows at a tiny size: the convolution and the key encoder in float32 and
    autocast, NCHW and channels-last."""
    for amp, channels_last in benchmark.VARIANTS.values():
        assert benchmark.conv_throughput(torch.device("cpu"), amp, channels_last, 32, 48, repeats=1) > 0
        assert benchmark.key_encoder_seconds(network, amp, channels_last, 32, 48, repeats=1) > 0
        assert conv_layouts(network)["key_encoder.conv1.weight"] == channels_last
    assert benchmark.padded_size(480, 854) == (480, 864)
    configs = benchmark.ENGINE_CONFIGS
    assert not configs["engine"].amp and configs["engine_amp"].amp and configs["engine_amp"].channels_last is None
    assert configs["engine_amp_nchw"].channels_last is False
    assert benchmark.float32_layout_difference(network, 32, 48) >= 0
    assert not any(conv_layouts(network).values())  # left as float32 runs: plain


@pytest.mark.cuda
def test_training_amp_is_channels_last_on_cuda_and_float32_on_the_cpu(cuda, network):
    """train.py's AMP (float16 on CUDA) trains in channels-last; the CPU trains in float32,
    plain layout, whatever --amp says."""
    from model.trainer import Trainer
    from util.configuration import TrainConfig

    trainer = Trainer(network, TrainConfig(stage=3, amp=True), cuda)
    assert trainer.amp == (cuda.type == "cuda")
    assert all(conv_layouts(network).values()) if trainer.amp else not any(conv_layouts(network).values())
    Trainer(network, TrainConfig(stage=3, amp=False), cuda)
    assert not any(conv_layouts(network).values())
