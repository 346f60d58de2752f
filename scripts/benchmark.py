"""Speed and memory benchmark: this implementation against the reference's formulation.

Inference: a synthetic 854x480 video (``--frames``, ``--objects``) is written once under
``<output>/videos/``; each implementation then runs in its own process (so peak memory is
its own) with fixed deterministic weights and the default settings (top 50, mem_every 3):
- ``engine``: the evaluation scripts' path (frames streamed from disk through
  ``evaluation.video.segment_video`` and ``InferenceCore.step`` into PNGs);
- ``oracle``: ``reference/inference.py``, the reference's DAVIS inference (whole video in
  memory, concatenated memory, dense top-k affinity, boundary head computed).
Reported: frames/s, per-stage seconds (key encoding, memory read, decoding, value encoding,
writing; the device synchronised around each), peak memory while the video is processed
(peak RSS on CPU, max allocated on CUDA; from when the weights are loaded) and the working
memory (that peak minus what was in use then: libraries and weights, which both share),
the agreement of the two outputs, and the arithmetic: GFLOP per frame (convolutions and
dense matrix products, counted with torch.utils.flop_counter over the first frames), this
machine's measured throughput on the decoder's dominant convolution, and the fraction of it
each implementation reaches.

Mixed precision (``--amp``): this implementation also runs with ``--amp`` in the plain
(NCHW) layout (``engine_amp_nchw``) and in channels-last (``engine_amp``, what ``--amp``
does), each with the agreement of its masks with float32; the precisions and layouts are
also timed on their own: the decoder's 3x3 convolution and the key encoder on one padded
frame, in float32 and autocast, NCHW and channels-last. ``--amp`` here insists on bfloat16
on a CPU without bfloat16 instructions (it measures what was asked; the report lists the
CPU's instruction sets).

Training (``--train``): seconds per optimisation step at ``--crop`` (384 as the reference)
for each ``--train_batch``, with AMP on CUDA as the reference trains:
``model.train_forward.clip_forward`` on ``GSFM`` against the reference's training verbs
(``reference/training.py``).

    python -m scripts.benchmark                      # 60 frames, 1 and 3 objects, + oracle
    python -m scripts.benchmark --frames 60 200 --train
Results: a table on stdout, ``<output>/benchmark.json`` and ``<output>/benchmark.md``.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from datasets.eval_datasets import EvalVideo, generic_video
from datasets.synthetic import make_video
from model.network import GSFM
from model.synthetic_weights import synthetic_state_dict
from util import cli
from util.atomic import atomic_save
from util.configuration import InferenceConfig
from util.memory import peak_memory_mb, reset_peak_memory, synchronize
from util.palette import davis_palette, read_mask, write_indexed_png
from util.precision import autocast_dtype, cpu_bfloat16_instructions
from util.stamp import describe, machine_stamp
from util.tensor_util import normalise, unpad

REPO = Path(__file__).resolve().parents[1]
STAGES = ("key encoding", "memory read", "decoding", "value encoding", "writing")
# this implementation's runs: float32 (the default), --amp in the plain layout, --amp as it runs (channels-last)
ENGINE_CONFIGS = {
    "engine": InferenceConfig(),
    "engine_amp_nchw": InferenceConfig(amp=True, amp_anyway=True, channels_last=False),
    "engine_amp": InferenceConfig(amp=True, amp_anyway=True),
}
AMP_ROLES = ("engine_amp_nchw", "engine_amp")
# precision and layout of the throughput rows: (autocast, channels-last)
VARIANTS = {
    "float32": (False, False),
    "float32_channels_last": (False, True),
    "amp": (True, False),
    "amp_channels_last": (True, True),
}
THROUGHPUT_OF_ROLE = {
    "engine": "float32",
    "oracle": "float32",
    "engine_amp_nchw": "amp",
    "engine_amp": "amp_channels_last",
}
FLOP_FRAMES = 7  # frames counted for GFLOP per frame (two memory writes at mem_every 3)
clock = time.perf_counter  # what every timing reads; --cpu_time: this process's CPU time


# ---- shared helpers ----------------------------------------------------------------


def benchmark_network(device: torch.device) -> GSFM:
    """Deterministic weights: the golden data's synthetic weights (model/synthetic_weights.py)."""
    network = GSFM()
    network.load_state_dict(synthetic_state_dict(network))
    return network.to(device).eval()


def make_benchmark_video(root: Path, frames: int, objects: int, height: int, width: int) -> Path:
    """JPEG frames + first-frame palette mask, generated once per size."""
    folder = root / f"{width}x{height}_{frames}f_{objects}obj"
    if (folder / "done").exists():
        return folder
    from PIL import Image

    images, labels = make_video(
        np.random.RandomState(frames * 10 + objects), height, width, frames, objects, late_objects=False
    )
    (folder / "frames").mkdir(parents=True, exist_ok=True)
    for t, image in enumerate(images):
        Image.fromarray(image).save(folder / "frames" / f"{t:05d}.jpg", quality=95)
    write_indexed_png(labels[0], davis_palette(), folder / "first.png")
    (folder / "done").touch()
    return folder


def first_frames(video: EvalVideo, count: int) -> EvalVideo:
    """The same video cut to its first ``count`` frames."""
    frames = video.frames
    frames.names = frames.names[:count]
    if frames.files is not None:
        frames.files = frames.files[:count]
    return video


class StageTimer:
    """Wraps methods so their wall time adds up per stage (device synchronised)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, owner, name: str, stage: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            synchronize(self.device)
            start = clock()
            result = original(*args, **kwargs)
            synchronize(self.device)
            self.seconds[stage] += clock() - start
            return result

        setattr(owner, name, timed)


def start_memory_measurement(device: torch.device) -> float:
    """Peak memory from now on (after the weights are loaded); returns the memory in use."""
    if device.type == "cpu":
        try:  # give the heap freed while the weights were built back to the OS (glibc only):
            ctypes.CDLL("libc.so.6").malloc_trim(0)  # else it stays in RSS and blurs the baseline
        except (OSError, AttributeError):
            pass
    return reset_peak_memory(device)


def best_seconds(function, device: torch.device, repeats: int) -> float:
    """The shortest of ``repeats`` timed calls, after one warm-up call (device synchronised)."""
    function()
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = clock()
        function()
        synchronize(device)
        best = min(best, clock() - start)
    return best


def padded_size(height: int, width: int) -> tuple[int, int]:
    """A frame's size as the network sees it (padded to multiples of its stride)."""
    return -(-height // 16) * 16, -(-width // 16) * 16


def conv_throughput(
    device: torch.device,
    amp: bool = False,
    channels_last: bool = False,
    height: int = 480,
    width: int = 854,
    repeats: int = 5,
) -> float:
    """GFLOP/s of the decoder's dominant operation on this machine: a 3x3 convolution,
    256 -> 256 channels, at 1/4 of the padded frame (120x216 for 854x480), in float32 or
    under autocast, NCHW or channels-last (best of ``repeats``)."""
    layout = torch.channels_last if channels_last else torch.contiguous_format
    h, w = (side // 4 for side in padded_size(height, width))
    conv = torch.nn.Conv2d(256, 256, 3, padding=1).to(device, memory_format=layout)
    x = torch.randn(1, 256, h, w, device=device).contiguous(memory_format=layout)
    with torch.inference_mode(), torch.autocast(device.type, dtype=autocast_dtype(device), enabled=amp):
        seconds = best_seconds(lambda: conv(x), device, repeats)
    return 2 * 256 * 256 * 9 * h * w / seconds / 1e9


def key_encoder_seconds(
    network: GSFM, amp: bool = False, channels_last: bool = False, height: int = 480, width: int = 854, repeats: int = 2
) -> float:
    """Seconds of the key encoder (ResNet-50 trunk) on one padded frame (480x864 for
    854x480), in float32 or under autocast, NCHW or channels-last (best of ``repeats``)."""
    device = next(network.parameters()).device
    encoder = network.use_channels_last(channels_last).key_encoder
    frame = torch.randn(1, 3, *padded_size(height, width), device=device)
    with torch.inference_mode(), torch.autocast(device.type, dtype=autocast_dtype(device), enabled=amp):
        return best_seconds(lambda: encoder(frame), device, repeats)


def float32_layout_difference(network: GSFM, height: int = 480, width: int = 854) -> float:
    """The largest difference between the key encoder's float32 outputs (f16, f8, f4) in
    channels-last and in NCHW on one padded frame: 0 only if the layout is free in float32."""
    device = next(network.parameters()).device
    frame = torch.randn(1, 3, *padded_size(height, width), generator=torch.Generator().manual_seed(0)).to(device)
    with torch.inference_mode():
        plain = network.use_channels_last(False).key_encoder(frame)
        nhwc = network.use_channels_last(True).key_encoder(frame)
    network.use_channels_last(False)
    return max(float((a - b).abs().max()) for a, b in zip(plain, nhwc))


# ---- workers (one process each) ----------------------------------------------------


def _sampled(num_frames: int) -> set[int]:
    return set(range(1, num_frames, max(1, num_frames // 6)))


def run_engine(
    network: GSFM,
    video_dir: Path,
    out_dir: Path,
    timer: StageTimer | None,
    config: InferenceConfig = InferenceConfig(),
    frames: int | None = None,
) -> int:
    """The evaluation path over the video (its first ``frames``); with ``timer``, timed per stage."""
    import inference_memory_bank
    from evaluation.video import segment_video

    video, palette = generic_video(video_dir / "frames", video_dir / "first.png")
    if frames is not None:
        video = first_frames(video, frames)
    sampled = _sampled(video.num_frames)
    if timer is not None:
        timer.wrap(network, "encode_key", "key encoding")
        timer.wrap(inference_memory_bank.MemoryBank, "read", "memory read")
        timer.wrap(network, "decode_objects", "decoding")
        timer.wrap(network, "encode_value_objects", "value encoding")

    def on_output(frame) -> None:
        start = clock()
        write_indexed_png(frame.labels, palette, out_dir / f"{frame.name}.png")
        if frame.index in sampled:
            np.save(out_dir / f"prob_{frame.index:05d}.npy", frame.prob.cpu().numpy())
        if timer is not None:
            timer.seconds["writing"] += clock() - start

    segment_video(network, video, config, on_output)
    return video.num_frames


def run_oracle(
    network: GSFM, video_dir: Path, out_dir: Path, timer: StageTimer | None, frames: int | None = None
) -> int:
    from reference.inference import ReferenceInferenceCore, ReferenceMemoryBank

    device = next(network.parameters()).device
    video, palette = generic_video(video_dir / "frames", video_dir / "first.png")
    if frames is not None:
        video = first_frames(video, frames)
    decoded = list(video.read())  # the reference loads the whole video
    images = torch.stack([normalise(f.rgb) for f in decoded]).unsqueeze(0).to(device)
    first = torch.stack([torch.from_numpy(decoded[0].labels == obj) for obj in video.object_ids]).float()
    names = [f.name for f in decoded]
    del decoded
    if timer is not None:
        timer.wrap(network, "encode_key", "key encoding")
        timer.wrap(ReferenceMemoryBank, "match_memory", "memory read")
        timer.wrap(network.decoder, "forward", "decoding")
        timer.wrap(network, "encode_value_objects", "value encoding")
    core = ReferenceInferenceCore(network, images, len(video.object_ids), top_k=50, mem_every=3)
    core.interact(first.unsqueeze(1).to(device), 0)
    sampled = _sampled(len(names))
    lut = np.array([0] + video.object_ids, dtype=np.uint8)
    start = clock()
    for t, name in enumerate(names):
        prob = unpad(core.prob[:, t], core.pad)[:, 0]
        if t in sampled:
            np.save(out_dir / f"prob_{t:05d}.npy", prob.cpu().numpy())
        write_indexed_png(lut[torch.argmax(prob, dim=0).cpu().numpy()], palette, out_dir / f"{name}.png")
    if timer is not None:
        timer.seconds["writing"] += clock() - start
    return len(names)


def count_flops(role: str, network: GSFM, video_dir: Path, out_dir: Path) -> float:
    """GFLOP per frame over the first FLOP_FRAMES frames (convolutions and dense matrix
    products; the engine's sparse top-k product, k x 512 multiply-adds per pixel, is not counted)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        if role == "oracle":
            frames = run_oracle(network, video_dir, out_dir, None, FLOP_FRAMES)
        else:
            frames = run_engine(network, video_dir, out_dir, None, ENGINE_CONFIGS[role], frames=FLOP_FRAMES)
    return counter.get_total_flops() / frames / 1e9


def run_training(implementation: str, batch: int, crop: int, iterations: int, device: torch.device) -> dict:
    """Seconds per optimisation step (after one warm-up), with AMP and a gradient scaler on
    CUDA as the reference trains."""
    from model.losses import LossComputer
    from model.train_forward import clip_forward
    from reference.training import ReferenceGSFM

    torch.manual_seed(0)
    network_class = GSFM if implementation == "engine" else ReferenceGSFM
    network = network_class(single_object=False).to(device).train()  # BatchNorm frozen, as in training
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-5)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=amp)
    losses = LossComputer(0, 1)
    generator = torch.Generator().manual_seed(0)
    rgb = torch.randn(batch, 3, 3, crop, crop, generator=generator).to(device)
    gt = (torch.rand(batch, 3, 1, crop, crop, generator=generator) > 0.5).float().to(device)
    sec_gt = (torch.rand(batch, 3, 1, crop, crop, generator=generator) > 0.7).float().to(device) * (1 - gt)
    data = {
        "rgb": rgb,
        "gt": gt,
        "sec_gt": sec_gt,
        "selector": torch.ones(batch, 2, device=device),
        "cls_gt": (gt[:, :, 0] + 2 * sec_gt[:, :, 0]).long(),
    }
    start_memory_measurement(device)
    times = []
    for _ in range(iterations + 1):  # the first iteration warms up
        synchronize(device)
        start = clock()
        with torch.autocast(device.type, enabled=amp):
            out = clip_forward(network, rgb, gt, sec_gt, data["selector"])
            loss = losses.compute({**data, **out}, 0)["total_loss"]
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        synchronize(device)
        times.append(clock() - start)
    step = float(np.mean(times[1:]))
    return {
        "seconds_per_iteration": round(step, 3),
        "iterations_per_second": round(1 / step, 3),
        "amp": amp,
        "loss": round(loss.item(), 6),
        "peak_memory_mb": round(peak_memory_mb(device), 1),
    }


def worker(args: argparse.Namespace) -> None:
    global clock
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.cpu_time:
        clock = time.process_time
    if args.worker.startswith("train_"):
        result = run_training(args.worker[len("train_") :], args.train_batch[0], args.crop, args.iterations, device)
    elif args.worker == "throughput":
        variants = {name: v for name, v in VARIANTS.items() if args.amp or not v[0]}
        size = {"height": args.height, "width": args.width}
        network = benchmark_network(device)
        result = {
            "conv_gflops": {name: round(conv_throughput(device, *v, **size), 1) for name, v in variants.items()},
            "key_encoder_seconds": {
                name: round(key_encoder_seconds(network, *v, **size), 3) for name, v in variants.items()
            },
            "key_encoder_float32_layout_difference": float32_layout_difference(network, **size),
        }
    else:
        out_dir = Path(args.result).parent / "masks"
        out_dir.mkdir(parents=True, exist_ok=True)
        video = Path(args.video)
        network = benchmark_network(device)
        timer = StageTimer(device)
        baseline = start_memory_measurement(device)
        start = clock()
        with torch.inference_mode():
            if args.worker == "oracle":
                frames = run_oracle(network, video, out_dir, timer)
            else:
                frames = run_engine(network, video, out_dir, timer, ENGINE_CONFIGS[args.worker])
        synchronize(device)
        seconds = clock() - start
        peak = peak_memory_mb(device)
        result = {
            "frames": frames,
            "seconds": round(seconds, 3),
            "fps": round(frames / seconds, 3),
            "stages": {s: round(timer.seconds.get(s, 0.0), 3) for s in STAGES},
            "peak_memory_mb": round(peak, 1),
            "working_memory_mb": round(peak - baseline, 1),
            "gflop_per_frame": round(
                count_flops(args.worker, benchmark_network(device), video, out_dir.parent / "flops"), 2
            ),
        }
    Path(args.result).write_text(json.dumps(result))


# ---- driver --------------------------------------------------------------------------


def launch(args: argparse.Namespace, role: str, result: Path, extra: list[str]) -> dict:
    if args.reuse and result.exists():
        print(f"  reusing {result}")
        return json.loads(result.read_text())
    result.parent.mkdir(parents=True, exist_ok=True)
    cmd = (
        [
            sys.executable,
            "-m",
            "scripts.benchmark",
            "--worker",
            role,
            "--result",
            str(result),
            "--device",
            args.device,
            "--threads",
            str(args.threads),
        ]
        + (["--cpu_time"] if args.cpu_time else [])
        + extra
    )
    print(f"  running {role} {' '.join(extra)}", flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)
    return json.loads(result.read_text())


def agreement(engine_dir: Path, oracle_dir: Path) -> dict:
    """Equal mask pixels over all frames; on the sampled frames, also the agreement where the
    oracle's decision is not a near-tie (top-two margin > 1e-4, the golden tests' rule) and
    the probability differences. (The --amp runs: against this implementation's float32.)"""
    equal = total = decided_equal = decided_total = beyond = values = 0
    prob_diff = 0.0
    for path in sorted(engine_dir.glob("*.png")):
        a, b = read_mask(path), read_mask(oracle_dir / path.name)
        equal += int((a == b).sum())
        total += a.size
    for path in sorted(engine_dir.glob("prob_*.npy")):
        mine, theirs = np.load(path), np.load(oracle_dir / path.name)
        diff = np.abs(mine - theirs)
        prob_diff = max(prob_diff, float(diff.max()))
        beyond += int((diff > 1e-4).sum())
        values += diff.size
        top2 = np.sort(theirs, axis=0)[-2:]
        decided = top2[1] - top2[0] > 1e-4
        decided_equal += int(((mine.argmax(0) == theirs.argmax(0)) & decided).sum())
        decided_total += int(decided.sum())
    return {
        "pixel_agreement": equal / total,
        "decided_pixel_agreement": decided_equal / max(decided_total, 1),
        "max_prob_difference": prob_diff,
        "prob_values_beyond_1e-4": beyond / max(values, 1),
    }


def parser() -> argparse.ArgumentParser:
    p = cli.argument_parser(__doc__)
    p.add_argument("--frames", type=int, nargs="+", default=[60])
    p.add_argument("--objects", type=int, nargs="+", default=[1, 3])
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=854)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument(
        "--cpu_time",
        action="store_true",
        help="time in CPU seconds of the measuring process instead of "
        "wall seconds (CPU only): on a busy shared machine, with --threads 1, close to what a quiet one's "
        "wall clock shows, as the other processes' load stretches wall time, not CPU time",
    )
    p.add_argument("--no_oracle", action="store_true", help="only this implementation")
    p.add_argument(
        "--amp",
        action="store_true",
        help="also this implementation with --amp (bfloat16 autocast on "
        "CPU, float16 on CUDA: changes outputs; agreement reported)",
    )
    p.add_argument("--no_inference", action="store_true", help="skip the inference benchmark")
    p.add_argument("--train", action="store_true", help="also the training-step benchmark")
    p.add_argument("--train_batch", type=int, nargs="+", default=[1, 4])
    p.add_argument("--crop", type=int, default=384)
    p.add_argument("--iterations", type=int, default=3, help="timed training iterations (after 1 warm-up)")
    p.add_argument("--output", default=str(REPO / "output" / "benchmark"))
    p.add_argument(
        "--reuse",
        action="store_true",
        help="reuse finished runs found in --output (delete a run's folder under runs/ to redo it)",
    )
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--video", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> dict:
    args = parser().parse_args(argv)
    if args.cpu_time and args.device != "cpu":
        raise SystemExit("--cpu_time measures CPU work: --device cpu only")
    if args.worker:
        worker(args)
        return {}
    out = Path(args.output)
    stamp = machine_stamp(args.device, args.threads)
    report = {
        "device": args.device,
        "device_name": stamp["gpu"] or stamp["cpu"],
        "torch": torch.__version__,
        "threads": stamp["threads"],
        "stamp": stamp,
        "clock": "process CPU time" if args.cpu_time else "wall",
        "cpu_bfloat16_instructions": cpu_bfloat16_instructions(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "weights": "synthetic (model/synthetic_weights.py)",
        "inference": [],
        "training": [],
    }
    size = ["--height", str(args.height), "--width", str(args.width)]
    report.update(launch(args, "throughput", out / "runs" / "throughput.json", size + (["--amp"] if args.amp else [])))
    roles = ["engine"] if args.no_oracle else ["engine", "oracle"]
    for frames in [] if args.no_inference else args.frames:
        for objects in args.objects:
            video = make_benchmark_video(out / "videos", frames, objects, args.height, args.width)
            row = {"frames": frames, "objects": objects}
            video_roles = roles + (list(AMP_ROLES) if args.amp else [])
            for role in video_roles:
                row[role] = launch(
                    args, role, out / "runs" / f"{video.name}_{role}" / "result.json", ["--video", str(video)]
                )
                limit = report["conv_gflops"][THROUGHPUT_OF_ROLE[role]]
                row[role]["fraction_of_conv_throughput"] = round(
                    row[role]["gflop_per_frame"] * row[role]["fps"] / limit, 3
                )
            if "oracle" in row:
                oracle = row["oracle"]
                for role in [r for r in video_roles if r != "oracle"]:
                    mine = row[role]
                    mine["speedup"] = round(oracle["seconds"] / mine["seconds"], 2)  # unrounded: same frames
                    mine["memory_ratio"] = round(mine["peak_memory_mb"] / oracle["peak_memory_mb"], 3)
                    mine["working_memory_ratio"] = round(
                        mine["working_memory_mb"] / max(oracle["working_memory_mb"], 1e-9), 3
                    )
                    mine.update(
                        agreement(
                            out / "runs" / f"{video.name}_{role}" / "masks",
                            out / "runs" / f"{video.name}_oracle" / "masks",
                        )
                    )
            for role in [r for r in AMP_ROLES if r in row]:
                row[role]["speedup_over_float32"] = round(row[role]["fps"] / row["engine"]["fps"], 2)
                row[role]["float32_agreement"] = agreement(
                    out / "runs" / f"{video.name}_{role}" / "masks", out / "runs" / f"{video.name}_engine" / "masks"
                )
            report["inference"].append(row)
            print_row(row)
    for batch in args.train_batch if args.train else []:
        row = {"batch": batch, "crop": args.crop}
        for role in roles:
            row[role] = launch(
                args,
                f"train_{role}",
                out / "runs" / f"train_b{batch}_{role}.json",
                ["--train_batch", str(batch), "--crop", str(args.crop), "--iterations", str(args.iterations)],
            )
        if "oracle" in row:
            row["speedup"] = round(row["oracle"]["seconds_per_iteration"] / row["engine"]["seconds_per_iteration"], 2)
        report["training"].append(row)
        print(json.dumps(row))
    out.mkdir(parents=True, exist_ok=True)
    atomic_save(lambda tmp: tmp.write_text(json.dumps(report, indent=1)), out / "benchmark.json")
    atomic_save(lambda tmp: tmp.write_text(markdown(report)), out / "benchmark.md")
    print(f"written: {out / 'benchmark.json'}, {out / 'benchmark.md'}")
    return report


def describe_agreement(a: dict | None) -> str:
    """One table cell from ``agreement``'s figures (empty without)."""
    if not a:
        return ""
    return (
        f"{100 * a['pixel_agreement']:.3f}% of pixels ({100 * a['decided_pixel_agreement']:.3f}% where not a "
        f"near-tie); probabilities within {a['max_prob_difference']:.1e}"
    )


def markdown(report: dict) -> str:
    """The report as markdown tables, under the stamp of the machine that measured it
    (docs/PERFORMANCE.md includes them through scripts/render_docs.py)."""
    autocast = "float16" if report["device"] == "cuda" else "bfloat16"
    names = [n for n in VARIANTS if n in report["conv_gflops"]]
    titles = {
        "float32": "float32 NCHW",
        "float32_channels_last": "float32 channels-last",
        "amp": f"{autocast} NCHW",
        "amp_channels_last": f"{autocast} channels-last",
    }
    bf16 = ", ".join(report.get("cpu_bfloat16_instructions") or []) or "none"
    clock = "" if report.get("clock", "wall") == "wall" else f"; times in {report['clock']}"
    lines = [
        f"Measured on {describe(report['stamp'])} ({report['device']}); CPU bfloat16 instructions: {bf16}{clock}.",
        "",
        "| precision and layout | " + " | ".join(titles[n] for n in names) + " |",
        "|---" * (len(names) + 1) + "|",
        "| 3x3 conv 256->256 at 1/4 of the padded frame (GFLOP/s) | "
        + " | ".join(str(report["conv_gflops"][n]) for n in names)
        + " |",
        "| key encoder on one padded frame (s) | "
        + " | ".join(str(report["key_encoder_seconds"][n]) for n in names)
        + " |",
        "",
        f"In float32, channels-last changes the key encoder's outputs by up to "
        f"{report['key_encoder_float32_layout_difference']:.1e} (other kernels, other rounding).",
        "",
        "| frames | objects | implementation | frames/s | speed-up | peak MB | working MB | GFLOP/frame | "
        "share of conv throughput | seconds: " + " / ".join(STAGES) + " | agreement with the oracle | "
        "agreement with float32 |",
        "|---" * 12 + "|",
    ]
    for row in report["inference"]:
        for role in ("oracle", "engine") + AMP_ROLES:
            if role not in row:
                continue
            r = row[role]
            memory = f" ({r['memory_ratio']})" if "memory_ratio" in r else ""
            over_float32 = f" ({r['speedup_over_float32']}x float32)" if "speedup_over_float32" in r else ""
            speedup = f"{r['speedup']}x" if "speedup" in r else "1x" if role == "oracle" else ""
            lines.append(
                f"| {row['frames']} | {row['objects']} | {role} | {r['fps']}{over_float32} | "
                f"{speedup} | {r['peak_memory_mb']:.0f}{memory} | {r['working_memory_mb']:.0f} | "
                f"{r['gflop_per_frame']} | {r['fraction_of_conv_throughput']} | "
                + " / ".join(f"{r['stages'][s]:.1f}" for s in STAGES)
                + f" | {describe_agreement(r if 'pixel_agreement' in r else None)} | "
                f"{describe_agreement(r.get('float32_agreement'))} |"
            )
    if report["training"]:
        lines += [
            "",
            "| training batch | crop | implementation | s/iteration | speed-up | peak MB | AMP |",
            "|---" * 7 + "|",
        ]
        for row in report["training"]:
            for role in ("oracle", "engine"):
                if role in row:
                    r = row[role]
                    speedup = f"{row['speedup']}x" if role == "engine" and "speedup" in row else "1x"
                    lines.append(
                        f"| {row['batch']} | {row['crop']} | {role} | {r['seconds_per_iteration']} | "
                        f"{speedup} | {r['peak_memory_mb']:.0f} | {r['amp']} |"
                    )
    return "\n".join(lines) + "\n"


def print_row(row: dict) -> None:
    print(f"{row['frames']} frames, {row['objects']} object(s):")
    print(
        f"  {'':15s} {'fps':>7s} {'peak MB':>8s} {'work MB':>8s} {'GFLOP/f':>8s} {'share':>6s} "
        + " ".join(f"{s:>14s}" for s in STAGES)
    )
    roles = [r for r in ("engine", *AMP_ROLES, "oracle") if r in row]
    for role in roles:
        r = row[role]
        print(
            f"  {role:15s} {r['fps']:7.3f} {r['peak_memory_mb']:8.0f} {r['working_memory_mb']:8.0f} "
            f"{r['gflop_per_frame']:8.1f} {r['fraction_of_conv_throughput']:6.3f} "
            + " ".join(f"{r['stages'][s]:14.2f}" for s in STAGES)
        )
    for role in roles:
        r = row[role]
        if "speedup" in r:
            print(
                f"  {role}: speed-up {r['speedup']}x, memory ratio {r['memory_ratio']} (working memory "
                f"{r['working_memory_ratio']}), pixel agreement {r['pixel_agreement']:.6f} "
                f"({r['decided_pixel_agreement']:.6f} where not a near-tie), max prob difference "
                f"{r['max_prob_difference']:.2e} ({r['prob_values_beyond_1e-4']:.2e} of values beyond 1e-4)",
                flush=True,
            )
        if "float32_agreement" in r:
            print(
                f"  {role}: {r['speedup_over_float32']}x float32, masks: {describe_agreement(r['float32_agreement'])}",
                flush=True,
            )


if __name__ == "__main__":
    cli.run(main)
