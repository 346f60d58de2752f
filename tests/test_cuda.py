"""The CUDA lane: every GPU path executed. Skipped without a GPU (``make gpu-check`` runs them
on a GPU machine); ``GSFM_CUDA_LANE_ON_CPU=1`` dry-runs their logic on the CPU.

Golden comparisons run in float32 with TF32 off (the golden tolerances are float32 ones).
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import eval_davis
import eval_davis_2016
import eval_generic
import eval_youtube
import train
from inference_core import InferenceCore
from model.checkpoint import load_network, read_checkpoint
from model.memory_util import topk_readout
from model.network import GSFM
from tests.golden import assert_argmax, assert_features, assert_prob, golden_network, load
from tests.helpers import ENV, REPO, args_for, assert_same_weights, run_ok
from util.configuration import InferenceConfig
from util.palette import read_mask

pytestmark = [pytest.mark.cuda, pytest.mark.golden]


def t(g, name, device):
    return torch.from_numpy(g[name]).to(device)


@pytest.fixture(scope="module")
def net(cuda):
    return golden_network().to(cuda)


@torch.no_grad()
def test_golden_network_pieces(net, cuda):
    g = load("eval_network")
    keys = net.encode_key(t(g, "frame", cuda))
    for name in ("k16", "f16_thin", "f16", "f8", "f4"):
        assert_features(getattr(keys, name), g[name], name)
    assert_features(net.lfm(t(g, "lfm_in", cuda)), g["lfm_out"], "lfm_out")
    assert_features(net.decoder.hfm(t(g, "hfm_in", cuda)), g["hfm_out"], "hfm_out")
    value = net.encode_value_objects(t(g, "frame", cuda), t(g, "f16", cuda), t(g, "masks3", cuda))
    assert_features(value.unsqueeze(2), g["value3"], "value3")
    mem_k, mem_v = t(g, "mem_k", cuda)[0].t(), t(g, "mem_v", cuda)
    readout = (
        topk_readout(t(g, "k16", cuda).flatten(2)[0].t(), mem_k, mem_v.permute(2, 0, 1).flatten(1), int(g["top_k"]))
        .t()
        .reshape(2, 512, 6, 10)
    )
    assert_features(readout, g["readout"], "readout (sparse top-k on the GPU)")
    prob = net.decode_objects(t(g, "readout", cuda), t(g, "f16_thin", cuda), t(g, "f8", cuda), t(g, "f4", cuda))
    assert_prob(prob, g["seg_prob"], "seg_prob")


def test_golden_propagation(net):
    for name, ids in (("propagation", None), ("propagation_yv", [2, 5])):
        g = load(name)
        left, right, top, bottom = g["pad"].tolist()
        labels = g["labels"][0:1] if name == "propagation" else g["annotations"]
        required = set(g["req_frames"].tolist()) if "req_frames" in g else None
        core = InferenceCore(
            net, InferenceConfig(top_k=int(g["top_k"]), mem_every=int(g["mem_every"])), object_ids=ids or ()
        )
        for frame in range(len(g["rgb_uint8"])):
            mask = labels[frame] if frame < len(labels) and labels[frame].any() else None
            prob = core.step(
                g["rgb_uint8"][frame],
                mask,
                end=frame == len(g["rgb_uint8"]) - 1,
                need_output=required is None or frame in required,
            )
            if prob is None:
                continue
            golden = g["prob"][:, frame, 0, top:-bottom, left:-right]
            assert prob.device.type == net.decoder.pred.weight.device.type
            assert_prob(prob, golden, f"{name} frame {frame}")
            expected = g["out_masks"][frame] if name == "propagation" else g["out_labels"][frame]
            assert_argmax(core.prob_to_mask(prob), expected, golden, f"{name} mask {frame}")


def test_amp_propagation_agrees_with_float32(net):
    """float16 autocast (the reference's --amp) against float32 on the golden video.
    Bound: float16 keeps ~3 decimal digits, so probabilities move by ~1e-3; pixels whose
    float32 decision has a margin above 0.05 (25x that) must agree (at least 99.5% of them:
    a few may sit where the errors compound), and no probability moves by 0.05."""
    g = load("propagation")
    results = {}
    for amp in (False, True):
        core = InferenceCore(net, InferenceConfig(amp=amp))
        results[amp] = [core.step(frame, g["labels"][0] if i == 0 else None) for i, frame in enumerate(g["rgb_uint8"])]
    agree = decided = total = 0
    worst = 0.0
    for exact, half in zip(results[False], results[True]):
        top2 = exact.sort(dim=0).values[-2:]
        margin_ok = (top2[1] - top2[0]) > 0.05
        same = exact.argmax(0) == half.argmax(0)
        agree += int((same & margin_ok).sum())
        decided += int(margin_ok.sum())
        total += int(same.sum())
        worst = max(worst, float((exact - half).abs().max()))
    pixels = sum(p[0].numel() for p in results[False])
    print(
        f"AMP vs float32: {100 * total / pixels:.3f}% of pixels agree, {100 * agree / decided:.3f}% of decided "
        f"ones; largest probability difference {worst:.2e}"
    )
    assert agree / decided >= 0.995
    assert worst < 0.05


def test_checkpoints_cross_devices_both_ways(net, cuda, tmp_path):
    torch.save(net.state_dict(), tmp_path / "saved_on_gpu.pth")
    on_cpu = load_network(tmp_path / "saved_on_gpu.pth", "cpu")
    assert_same_weights({k: v.cpu() for k, v in net.state_dict().items()}, on_cpu.state_dict())
    torch.save(on_cpu.state_dict(), tmp_path / "saved_on_cpu.pth")
    back = load_network(tmp_path / "saved_on_cpu.pth", cuda)
    assert next(back.parameters()).device.type == cuda.type
    assert_same_weights({k: v.cpu() for k, v in back.state_dict().items()}, on_cpu.state_dict())


def train_args(root, save_root, iterations, extra=()):
    return args_for(root, save_root, iterations=iterations, extra=extra)  # weights and checkpoints every 2


def swap_device(args, device: str) -> list[str]:
    args = [a for a in args if a != "--no_amp"]  # AMP: on by default, what runs on a GPU
    args[args.index("--device") + 1] = device
    return args


def test_training_with_amp_on_a_one_process_nccl_group(synthetic_root, cuda, tmp_path):
    """torchrun with one process: a process group (NCCL on a GPU) and DDP; AMP with the
    gradient scaler; cudnn.benchmark; the full checkpoint then resumes on the CPU."""
    args = swap_device(train_args(synthetic_root, tmp_path, 4, ["--benchmark"]), cuda.type)
    result = run_ok(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=1",
            "--master_port=29641",
            str(REPO / "train.py"),
            *args,
        ]
    )
    assert ("nccl" if cuda.type == "cuda" else "gloo") in result.stdout
    (run,) = list(tmp_path.iterdir())
    checkpoint = read_checkpoint(run / f"{run.name}_checkpoint.pth")
    assert checkpoint["it"] == 4
    if cuda.type == "cuda":
        assert checkpoint["scaler"]["scale"] > 0  # the gradient scaler was on
    logged = [json.loads(line) for line in (run / "logs" / "metrics.jsonl").read_text().splitlines()]
    assert len(logged) == 4 and all(np.isfinite(entry["total_loss"]) for entry in logged)
    # a checkpoint written on the GPU continues on the CPU
    cpu_args = swap_device(
        train_args(synthetic_root, tmp_path, 6, ["--load_model", str(run), "--resume_anyway"]), "cpu"
    )  # 6 iterations instead of the checkpoint's 4
    assert train.main(cpu_args + ["--no_amp"]) == run
    assert read_checkpoint(run / f"{run.name}_checkpoint.pth")["it"] == 6


def test_exact_resume_on_the_device(synthetic_root, cuda, tmp_path):
    """A resumed run against two uninterrupted ones: GPU kernels need not be bit-reproducible
    (atomics in some backward passes), so the resumed run must differ from an uninterrupted
    one by no more than two uninterrupted runs differ from each other."""

    def run(name, iterations, extra=()):
        args = swap_device(train_args(synthetic_root, tmp_path / name, iterations, extra), cuda.type) + ["--no_amp"]
        run_ok([sys.executable, str(REPO / "train.py"), *args])
        (folder,) = list((tmp_path / name).iterdir())
        return folder

    first, second = run("a", 4), run("b", 4)
    split = run("c", 2)
    run("c", 4, ["--resume", "auto", "--resume_anyway"])  # the checkpoint's run had 2 iterations
    weights = [read_checkpoint(f / f"{f.name}_4.pth") for f in (first, second, split)]
    noise = max(float((weights[0][k].float() - weights[1][k].float()).abs().max()) for k in weights[0])
    resumed = max(float((weights[0][k].float() - weights[2][k].float()).abs().max()) for k in weights[0])
    print(f"largest weight difference: uninterrupted runs {noise:.2e}, resumed {resumed:.2e}")
    assert resumed <= 10 * noise + 1e-7


def test_eval_scripts_on_the_device(synthetic_root, golden_weights_file, cuda, tmp_path):
    davis = synthetic_root / "DAVIS"
    runs = {
        "d17": (eval_davis.main, ["--davis_path", davis / "2017"], ""),
        "d16": (eval_davis_2016.main, ["--davis_path", davis / "2016"], ""),
        "yv": (eval_youtube.main, ["--yv_path", synthetic_root / "YouTube", "--size", "-1"], "Annotations"),
        "gen": (
            eval_generic.main,
            [
                "--frames",
                davis / "2017" / "trainval" / "JPEGImages" / "480p" / "val00",
                "--mask",
                davis / "2017" / "trainval" / "Annotations" / "480p" / "val00" / "00000.png",
                "--overlay",
            ],
            "",
        ),
    }
    for name, (main, args, sub) in runs.items():
        outputs = {}
        for lane, device in (("reference", "cpu"), ("device", cuda.type)):
            out = tmp_path / f"{name}_{lane}"
            main([str(a) for a in ["--model", golden_weights_file, "--output", out, "--device", device, *args]])
            outputs[lane] = out / sub
            stats = json.loads((out / "eval_stats.json").read_text())
            assert stats["device"].startswith(device) and stats["peak_memory_mb"] > 0 and stats["fps"] > 0
        masks = sorted(
            p.relative_to(outputs["reference"])
            for p in outputs["reference"].glob("*/*.png")
            if not p.parent.name.startswith(".")
        )
        assert masks
        same = np.mean(
            [np.mean(read_mask(outputs["reference"] / m) == read_mask(outputs["device"] / m)) for m in masks]
        )
        print(f"{name}: {100 * same:.3f}% of mask pixels equal on CPU and {cuda.type}")
        assert same >= 0.98  # synthetic weights: many near-ties; float32 on both (TF32 off)


def test_benchmark_times_and_measures_the_device(cuda, tmp_path):
    out = tmp_path / "bench"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.benchmark",
            "--frames",
            "6",
            "--objects",
            "2",
            "--height",
            "96",
            "--width",
            "160",
            "--amp",
            "--device",
            cuda.type,
            "--train",
            "--train_batch",
            "1",
            "--crop",
            "64",
            "--iterations",
            "1",
            "--output",
            str(out),
        ],
        check=True,
        cwd=REPO,
        env=ENV,
    )
    report = json.loads((out / "benchmark.json").read_text())
    (row,) = report["inference"]
    for role in ("engine", "oracle", "engine_amp"):
        assert row[role]["fps"] > 0 and row[role]["peak_memory_mb"] > 0 and row[role]["gflop_per_frame"] > 0
        assert sum(row[role]["stages"].values()) > 0
    assert row["engine"]["decided_pixel_agreement"] >= 0.99
    assert report["conv_gflops"]["float32"] > 0
    assert report["training"][0]["engine"]["amp"] == (cuda.type == "cuda")
    assert (out / "benchmark.md").read_text().count("| engine |") == 2  # an inference and a training row


def test_network_moves_to_the_device_whole(cuda):
    net = GSFM().to(cuda)
    assert {p.device.type for p in net.parameters()} == {cuda.type}
    assert {b.device.type for b in net.buffers()} == {cuda.type}
