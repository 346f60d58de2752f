"""The speed and memory benchmark's library: this implementation against the reference's
formulation (the command is ``scripts/benchmark.py``, its tables ``scripts/benchmark_report.py``).

Stages are timed through the inference backend protocol (``inference_backend.Backend``):
``TimedBackend`` answers the engine's three network calls by timing the backend it wraps
(the device synchronised around each), and the memory read is the interval between a
frame's key encoding and its decoding, where the engine (``InferenceCore._segment``) and
the oracle (``reference/inference.py``) both read the memory. The oracle's network is
wrapped the same way (``TimedReferenceNetwork``); nothing is patched.

- ``run_engine``: the evaluation scripts' path (frames streamed from disk through
  ``evaluation.video.segment_video`` and ``InferenceCore.step`` into PNGs);
- ``run_oracle``: ``reference/inference.py``, the reference's DAVIS inference (whole video
  in memory, concatenated memory, dense top-k affinity, boundary head computed);
- ``measure``: one role's figures (frames/s, stages, peak and working memory, GFLOP per
  frame), the precisions' throughput, or a training step's seconds;
- ``agreement``: how far two runs' masks and probabilities agree.
"""

from __future__ import annotations

import ctypes
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from datasets.eval_datasets import EvalVideo, generic_video
from datasets.synthetic import make_video
from inference_backend import Backend, as_backend
from model.network import GSFM, KeyFeatures
from model.synthetic_weights import synthetic_state_dict
from util.configuration import CLIP_FRAMES, InferenceConfig
from util.memory import peak_memory_mb, reset_peak_memory, synchronize
from util.palette import davis_palette, read_mask, write_indexed_png
from util.precision import autocast_dtype
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
clock = time.perf_counter  # what every timing reads (use_process_time: this process's CPU time)


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


class StageClock:
    """Seconds per stage, the device synchronised around each timed call; ``gap`` turns
    the interval from the end of a key encoding to the start of the next decoding into
    the memory read."""

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds: dict[str, float] = defaultdict(float)
        self.key_encoded: float | None = None  # when the last key encoding ended

    def time(self, stage: str, function, *args, **kwargs):
        synchronize(self.device)
        start = clock()
        if stage == "decoding" and self.key_encoded is not None:
            self.seconds["memory read"] += start - self.key_encoded
            self.key_encoded = None
        result = function(*args, **kwargs)
        synchronize(self.device)
        end = clock()
        self.seconds[stage] += end - start
        if stage == "key encoding":
            self.key_encoded = end
        return result


class TimedBackend:
    """A backend (``inference_backend.Backend``) whose network calls are timed on ``stages``."""

    def __init__(self, backend: Backend, stages: StageClock):
        self.backend, self.stages = backend, stages
        self.name, self.device = backend.name, backend.device

    @property
    def weights_sha256(self) -> str:
        return self.backend.weights_sha256

    def use_channels_last(self, enabled: bool) -> None:
        self.backend.use_channels_last(enabled)

    def use_winograd(self, enabled: bool) -> None:
        self.backend.use_winograd(enabled)

    def encode_key(self, frame: torch.Tensor) -> KeyFeatures:
        return self.stages.time("key encoding", self.backend.encode_key, frame)

    def encode_value_objects(self, frame: torch.Tensor, key_f16: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return self.stages.time("value encoding", self.backend.encode_value_objects, frame, key_f16, masks)

    def decode_objects(
        self, readout: torch.Tensor, f16_thin: torch.Tensor, f8: torch.Tensor, f4: torch.Tensor
    ) -> torch.Tensor:
        return self.stages.time("decoding", self.backend.decode_objects, readout, f16_thin, f8, f4)


class TimedReferenceNetwork:
    """What the oracle calls of a ``GSFM`` (``encode_key``, ``encode_value_objects``,
    ``decoder``), timed on ``stages`` as ``TimedBackend`` times the engine's calls."""

    def __init__(self, network: GSFM, stages: StageClock):
        self.network, self.stages = network, stages

    def encode_key(self, frame: torch.Tensor):
        return self.stages.time("key encoding", self.network.encode_key, frame)

    def encode_value_objects(self, frame: torch.Tensor, key_f16: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return self.stages.time("value encoding", self.network.encode_value_objects, frame, key_f16, masks)

    def decoder(self, *inputs: torch.Tensor):
        return self.stages.time("decoding", self.network.decoder, *inputs)


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
    network: GSFM | Backend,
    video_dir: Path,
    out_dir: Path,
    stages: StageClock | None,
    config: InferenceConfig = InferenceConfig(),
    frames: int | None = None,
) -> int:
    """The evaluation path over the video (its first ``frames``) with ``network`` (a ``GSFM``
    or a backend); with ``stages``, timed per stage."""
    from evaluation.video import segment_video

    video, palette = generic_video(video_dir / "frames", video_dir / "first.png")
    if frames is not None:
        video = first_frames(video, frames)
    sampled = _sampled(video.num_frames)
    backend = as_backend(network) if stages is None else TimedBackend(as_backend(network), stages)

    def on_output(frame) -> None:
        start = clock()
        write_indexed_png(frame.labels, palette, out_dir / f"{frame.name}.png")
        if frame.index in sampled:
            np.save(out_dir / f"prob_{frame.index:05d}.npy", frame.prob.cpu().numpy())
        if stages is not None:
            stages.seconds["writing"] += clock() - start

    segment_video(backend, video, config, on_output)
    return video.num_frames


def run_oracle(
    network: GSFM, video_dir: Path, out_dir: Path, stages: StageClock | None, frames: int | None = None
) -> int:
    """The reference's inference over the video (its first ``frames``); with ``stages``, timed per stage."""
    from reference.inference import ReferenceInferenceCore

    device = next(network.parameters()).device
    video, palette = generic_video(video_dir / "frames", video_dir / "first.png")
    if frames is not None:
        video = first_frames(video, frames)
    decoded = list(video.read())  # the reference loads the whole video
    images = torch.stack([normalise(f.rgb) for f in decoded]).unsqueeze(0).to(device)
    first = torch.stack([torch.from_numpy(decoded[0].labels == obj) for obj in video.object_ids]).float()
    names = [f.name for f in decoded]
    del decoded
    timed = network if stages is None else TimedReferenceNetwork(network, stages)
    core = ReferenceInferenceCore(timed, images, len(video.object_ids), top_k=50, mem_every=3)
    core.interact(first.unsqueeze(1).to(device), 0)
    sampled = _sampled(len(names))
    lut = np.array([0] + video.object_ids, dtype=np.uint8)
    start = clock()
    for t, name in enumerate(names):
        prob = unpad(core.prob[:, t], core.pad)[:, 0]
        if t in sampled:
            np.save(out_dir / f"prob_{t:05d}.npy", prob.cpu().numpy())
        write_indexed_png(lut[torch.argmax(prob, dim=0).cpu().numpy()], palette, out_dir / f"{name}.png")
    if stages is not None:
        stages.seconds["writing"] += clock() - start
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
    rgb = torch.randn(batch, CLIP_FRAMES, 3, crop, crop, generator=generator).to(device)
    gt = (torch.rand(batch, CLIP_FRAMES, 1, crop, crop, generator=generator) > 0.5).float().to(device)
    sec_gt = (torch.rand(batch, CLIP_FRAMES, 1, crop, crop, generator=generator) > 0.7).float().to(device) * (1 - gt)
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
            frames = clip_forward(network, rgb, gt, sec_gt, data["selector"])
            loss = losses.compute(data, frames, 0).total
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


# ---- driver --------------------------------------------------------------------------


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


def compare(row: dict, runs: Path, video: str, conv_gflops: dict[str, float]) -> None:
    """Add to one video's ``row`` of runs (``runs/<video>_<role>/masks``) what relates them:
    each run's share of the convolution throughput; against the oracle, the speed-up, the
    memory ratios and the agreement; the --amp runs' speed-up over float32 and agreement."""
    for role in [r for r in row if r in THROUGHPUT_OF_ROLE]:
        limit = conv_gflops[THROUGHPUT_OF_ROLE[role]]
        row[role]["fraction_of_conv_throughput"] = round(row[role]["gflop_per_frame"] * row[role]["fps"] / limit, 3)
    if "oracle" in row:
        oracle = row["oracle"]
        for role in [r for r in row if r in THROUGHPUT_OF_ROLE and r != "oracle"]:
            mine = row[role]
            mine["speedup"] = round(oracle["seconds"] / mine["seconds"], 2)  # unrounded: same frames
            mine["memory_ratio"] = round(mine["peak_memory_mb"] / oracle["peak_memory_mb"], 3)
            mine["working_memory_ratio"] = round(mine["working_memory_mb"] / max(oracle["working_memory_mb"], 1e-9), 3)
            mine.update(agreement(runs / f"{video}_{role}" / "masks", runs / f"{video}_oracle" / "masks"))
    for role in [r for r in AMP_ROLES if r in row]:
        row[role]["speedup_over_float32"] = round(row[role]["fps"] / row["engine"]["fps"], 2)
        row[role]["float32_agreement"] = agreement(
            runs / f"{video}_{role}" / "masks", runs / f"{video}_engine" / "masks"
        )


def use_process_time() -> None:
    """Time in this process's CPU seconds instead of wall seconds (``--cpu_time``)."""
    global clock
    clock = time.process_time


def measure(
    role: str,
    device: torch.device,
    video: Path | None = None,
    out_dir: Path | None = None,
    amp: bool = False,
    height: int = 480,
    width: int = 854,
    batch: int = 1,
    crop: int = 384,
    iterations: int = 3,
) -> dict:
    """One run's figures: ``throughput`` (the precisions and layouts, ``amp`` included or
    not), ``train_engine`` / ``train_oracle`` (a training step at ``batch`` and ``crop``), or
    an inference role of ``ENGINE_CONFIGS`` or ``oracle`` on ``video`` (masks into ``out_dir``)."""
    if role.startswith("train_"):
        return run_training(role[len("train_") :], batch, crop, iterations, device)
    if role == "throughput":
        variants = {name: v for name, v in VARIANTS.items() if amp or not v[0]}
        size = {"height": height, "width": width}
        network = benchmark_network(device)
        return {
            "conv_gflops": {name: round(conv_throughput(device, *v, **size), 1) for name, v in variants.items()},
            "key_encoder_seconds": {
                name: round(key_encoder_seconds(network, *v, **size), 3) for name, v in variants.items()
            },
            "key_encoder_float32_layout_difference": float32_layout_difference(network, **size),
        }
    out_dir.mkdir(parents=True, exist_ok=True)
    network = benchmark_network(device)
    stages = StageClock(device)
    baseline = start_memory_measurement(device)
    start = clock()
    with torch.inference_mode():
        if role == "oracle":
            frames = run_oracle(network, video, out_dir, stages)
        else:
            frames = run_engine(network, video, out_dir, stages, ENGINE_CONFIGS[role])
    synchronize(device)
    seconds = clock() - start
    peak = peak_memory_mb(device)
    return {
        "frames": frames,
        "seconds": round(seconds, 3),
        "fps": round(frames / seconds, 3),
        "stages": {s: round(stages.seconds.get(s, 0.0), 3) for s in STAGES},
        "peak_memory_mb": round(peak, 1),
        "working_memory_mb": round(peak - baseline, 1),
        "gflop_per_frame": round(count_flops(role, benchmark_network(device), video, out_dir.parent / "flops"), 2),
    }
