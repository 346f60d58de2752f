"""The ONNX export and the ONNX Runtime backend: the real-arithmetic spectral filter against
torch.fft, the graphs (no complex tensor, no DFT), the golden propagation fixtures through
ONNX Runtime against the PyTorch backend, and the errors for sizes and folders that do not fit.

The export runs once for the module, at the golden propagation size (96x160 padded)."""

import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import eval_generic
from inference_core import InferenceCore
from model.export import MANIFEST, export_size, read_manifest
from model.spectral import HFM, LFM, real_dft_form
from tests.golden import assert_argmax, assert_features, assert_prob, golden_network, load
from tests.test_golden_propagation import cropped
from util.cli import run as cli_run
from util.configuration import InferenceConfig
from util.errors import ConfigError
from util.palette import davis_palette, read_mask, write_indexed_png

GOLDEN_SIZE = (89, 151)  # the propagation fixtures' frames; padded to 96x160


def onnx_packages_or_skip():
    for package in ("onnx", "onnxscript", "onnxruntime"):
        pytest.importorskip(package, reason=f"{package} is not installed (pip install -r requirements-export.txt)")


@pytest.mark.parametrize("module, channels, size", [(LFM, 16, (7, 11)), (HFM, 8, (24, 40)), (HFM, 4, (30, 54))])
def test_real_dft_equals_torch_fft_in_float64(module, channels, size):
    torch.manual_seed(0)
    spectral = module(channels).double()
    x = torch.randn(2, channels, *size, dtype=torch.float64)
    expected = spectral(x)
    with real_dft_form(spectral):
        actual = spectral(x)
    assert not spectral.real_dft  # switched back after the block
    assert (actual - expected).abs().max().item() < 1e-10


@pytest.mark.golden
def test_real_dft_meets_the_golden_tolerances_in_float32():
    g, net = load("eval_network"), golden_network()
    with real_dft_form(net), torch.no_grad():
        assert_features(net.lfm(torch.from_numpy(g["lfm_in"])), g["lfm_out"], "lfm_out")
        assert_features(net.decoder.hfm(torch.from_numpy(g["hfm_in"])), g["hfm_out"], "hfm_out")
        assert_features(net.encode_key(torch.from_numpy(g["frame"])).k16, g["k16"], "k16")


def test_export_refuses_other_weights_in_the_same_folder(tmp_path):
    (tmp_path / MANIFEST).write_text(
        json.dumps({"format": 1, "opset": 18, "weights_sha256": "0" * 64, "model": "old.pth", "sizes": {}})
    )
    with pytest.raises(ConfigError, match="old.pth.*into another folder"):
        export_size(golden_network(), tmp_path, 64, 96, model_name="new.pth")


def test_missing_packages_are_named(tmp_path, monkeypatch):
    from inference_backend import OnnxRuntimeBackend

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match="needs the onnxruntime package: pip install -r requirements-export.txt"):
        OnnxRuntimeBackend(tmp_path)
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    with pytest.raises(ConfigError, match="export needs onnx(script)?: pip install -r requirements-export.txt"):
        export_size(golden_network(), tmp_path, 64, 96)


def test_missing_or_broken_manifest_is_named(tmp_path):
    with pytest.raises(ConfigError, match=f"{tmp_path / MANIFEST}: no ONNX export here.*scripts.export_onnx"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(ConfigError, match="not a readable export manifest"):
        read_manifest(tmp_path)


# ---- with an export (slow: tracing and exporting three graphs takes ~40 s on 2 cores) ----


@pytest.fixture(scope="module")
def exported(tmp_path_factory, golden_weights_file):
    onnx_packages_or_skip()
    from scripts import export_onnx

    folder = tmp_path_factory.mktemp("onnx")
    export_onnx.main(
        [
            "--model",
            str(golden_weights_file),
            "--output",
            str(folder),
            "--height",
            str(GOLDEN_SIZE[0]),
            "--width",
            str(GOLDEN_SIZE[1]),
        ]
    )
    return folder


@pytest.fixture(scope="module")
def onnx_backend(exported):
    from inference_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend(exported, "cpu")


@pytest.mark.slow
def test_graphs_are_real_valued_with_the_recorded_shapes(exported):
    import onnx

    manifest = read_manifest(exported)
    entry = manifest["sizes"]["96x160"]
    assert (entry["height"], entry["width"]) == (96, 160)
    assert entry["io"]["key_encoder"]["outputs"]["f4"] == [1, 256, 24, 40]
    complex_types = {onnx.TensorProto.COMPLEX64, onnx.TensorProto.COMPLEX128}
    for name, file in entry["graphs"].items():
        graph = onnx.load(str(exported / file)).graph
        ops = {node.op_type for node in graph.node}
        assert not ops & {"DFT", "STFT"}, f"{name}: {ops & {'DFT', 'STFT'}}"
        types = [v.type.tensor_type.elem_type for v in [*graph.input, *graph.output, *graph.value_info]]
        types += [t.data_type for t in graph.initializer]
        assert not complex_types & set(types), f"{name} holds a complex tensor"
        recorded = entry["io"][name]
        assert [i.name for i in graph.input] == list(recorded["inputs"])
        for value in graph.input:
            dims = [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
            assert [d if isinstance(d, int) else "objects" for d in dims] == recorded["inputs"][value.name]
    if "MatMul" not in {node.op_type for node in onnx.load(str(exported / entry["graphs"]["decoder"])).graph.node}:
        pytest.fail("the decoder's HFM should be matrix products")


def run_fixture(backend, fixture: str) -> list:
    """The golden propagation video through the engine: (probabilities, mask) of every frame
    (None where skipped)."""
    g = load(fixture)
    frames = g["rgb_uint8"]
    n = len(frames)
    config = InferenceConfig(top_k=int(g["top_k"]), mem_every=int(g["mem_every"]))
    if fixture == "propagation":
        core, annotations, required = InferenceCore(backend, config), [g["labels"][0]] + [None] * (n - 1), range(n)
    else:
        ann = g["annotations"]
        core = InferenceCore(backend, config, object_ids=[2, 5])
        annotations, required = [a if a.any() else None for a in ann], set(g["req_frames"].tolist())
    outputs = []
    for t in range(n):
        prob = core.step(frames[t], annotations[t], end=t == n - 1, need_output=t in required)
        outputs.append(None if prob is None else (prob.numpy(), core.prob_to_mask(prob)))
    return outputs


# The two backends differ by float32 rounding in other kernels (ONNX Runtime's convolutions,
# the DFT as matrix products): 1e-6 on features (the golden tests' noise floor), which
# seven frames of memory do not amplify beyond 1e-5 on probabilities. The bound below is the
# golden tests' own: both backends then agree with the reference as closely as PyTorch
# itself must, and mask pixels may differ only where the top two probabilities are within it.
PROB_BOUND = 1e-4


@pytest.mark.slow
@pytest.mark.golden
@pytest.mark.parametrize("fixture", ["propagation", "propagation_yv"])
def test_onnxruntime_masks_equal_pytorch_masks_on_the_golden_videos(onnx_backend, fixture):
    net = golden_network()
    theirs = run_fixture(net, fixture)
    mine = run_fixture(onnx_backend, fixture)
    equal = total = 0
    for t, (a, b) in enumerate(zip(mine, theirs)):
        assert (a is None) == (b is None), f"frame {t}: skipped by one backend only"
        if a is None:
            continue
        (prob, mask), (reference_prob, reference_mask) = a, b
        assert_prob(prob, reference_prob, f"{fixture} frame {t}")
        top2 = np.sort(reference_prob, axis=0)[-2:]
        decided = top2[1] - top2[0] > PROB_BOUND
        assert (mask == reference_mask)[decided].all(), f"frame {t}: decided pixels differ"
        equal += int((mask == reference_mask).sum())
        total += mask.size
    assert equal / total >= 0.999


@pytest.mark.slow
def test_frame_of_another_size_names_both_sizes_and_the_command(onnx_backend, exported, golden_weights_file):
    core = InferenceCore(onnx_backend)
    labels = np.zeros((64, 90), np.uint8)
    labels[10:30, 10:40] = 1
    with pytest.raises(ConfigError) as error:
        core.step(np.zeros((64, 90, 3), np.uint8), labels)
    message = str(error.value)
    assert "64x96" in message and "holds 96x160" in message
    assert (
        f"python -m scripts.export_onnx --model {golden_weights_file} --output {exported} --height 64 --width 96"
    ) in message


@pytest.mark.slow
@pytest.mark.golden
def test_eval_script_with_the_onnxruntime_backend(exported, tmp_path, golden_weights_file):
    """eval_generic.py --backend onnxruntime --onnx DIR on the golden DAVIS video: the
    reference's masks (outside near-ties); without --onnx and --model, an error saying so;
    with --model, the same masks from the export cache."""
    g = load("propagation")
    (tmp_path / "frames").mkdir()
    for t, image in enumerate(g["rgb_uint8"]):
        Image.fromarray(image).save(tmp_path / "frames" / f"{t:05d}.png")
    write_indexed_png(g["labels"][0], davis_palette(), tmp_path / "first.png")
    common = [
        "--frames",
        tmp_path / "frames",
        "--mask",
        tmp_path / "first.png",
        "--device",
        "cpu",
        "--backend",
        "onnxruntime",
        "--top",
        int(g["top_k"]),
        "--mem_every",
        int(g["mem_every"]),
    ]
    cli_run(lambda: eval_generic.main([*map(str, common), "--onnx", str(exported), "--output", str(tmp_path / "out")]))
    for t in range(len(g["rgb_uint8"])):
        assert_argmax(
            read_mask(tmp_path / "out" / "frames" / f"{t:05d}.png"),
            g["out_masks"][t],
            cropped(g, "prob", t),
            f"mask {t}",
        )
    with pytest.raises(SystemExit, match="--model is required.*--onnx DIR"):
        cli_run(lambda: eval_generic.main([*map(str, common), "--output", str(tmp_path / "x")]))
    # --model without --onnx: the graphs come from the export cache, here holding this export
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / read_manifest(exported)["weights_sha256"]).symlink_to(exported)
    cached = ["--model", str(golden_weights_file), "--onnx_cache", str(tmp_path / "cache")]
    cli_run(lambda: eval_generic.main([*map(str, common), *cached, "--output", str(tmp_path / "cached")]))
    for t in range(len(g["rgb_uint8"])):
        name = f"{t:05d}.png"
        assert (read_mask(tmp_path / "cached" / "frames" / name) == read_mask(tmp_path / "out" / "frames" / name)).all()
