"""Speed and memory benchmark: this implementation against the reference's formulation.

Inference: a synthetic 854x480 video (``--frames``, ``--objects``) is written once under
``<output>/videos/``; each implementation then runs in its own process (so peak memory is
its own) with fixed deterministic weights and the default settings (top 50, mem_every 3):
- ``engine``: the evaluation scripts' path (frames streamed from disk through
  ``util.evaluation.segment_video`` into PNGs);
- ``oracle``: ``reference/inference.py``, the reference's DAVIS inference (whole
  video in memory, concatenated memory, dense top-k affinity, boundary head computed).
Reported: frames/s, per-stage seconds (key encoding, memory read, decoding, value
encoding, writing), peak memory while the video is processed (peak RSS on CPU, max
allocated on CUDA; measured from when the weights are loaded) and the working memory (that
peak minus what was in use at that point: the libraries and weights both implementations
share), and the agreement of the two outputs (equal mask pixels; largest probability difference on sampled frames).

Training (``--train``): iterations/s of one optimisation step at ``--crop`` (384 as the
reference) for each ``--train_batch``: ``model.train_forward.clip_forward`` on ``GSFM`` against
the reference's training verbs (``reference/training.py``).

    python -m scripts.benchmark                      # 60 frames, 1 and 3 objects, + oracle
    python -m scripts.benchmark --frames 60 200 --train
Results: a table on stdout and ``<output>/benchmark.json``.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import resource
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from datasets.eval_datasets import generic_video
from datasets.synthetic import make_video
from model.network import GSFM
from model.synthetic_weights import synthetic_state_dict
from util.atomic import atomic_save
from util.palette import davis_palette, read_mask, write_indexed_png

REPO = Path(__file__).resolve().parents[1]

STAGES = ("key encoding", "memory read", "decoding", "value encoding", "writing")


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
    images, labels = make_video(np.random.RandomState(frames * 10 + objects), height, width, frames, objects,
                                late_objects=False)
    (folder / "frames").mkdir(parents=True, exist_ok=True)
    for t, image in enumerate(images):
        Image.fromarray(image).save(folder / "frames" / f"{t:05d}.jpg", quality=95)
    write_indexed_png(labels[0], davis_palette(), folder / "first.png")
    (folder / "done").touch()
    return folder


class StageTimer:
    """Wraps methods so their wall time adds up per stage (device synchronised)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds: dict[str, float] = defaultdict(float)
        self.baseline_mb = 0.0  # memory in use once the network is loaded

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def wrap(self, owner, name: str, stage: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            self._sync()
            start = time.perf_counter()
            result = original(*args, **kwargs)
            self._sync()
            self.seconds[stage] += time.perf_counter() - start
            return result
        setattr(owner, name, timed)


def reset_peak_memory(device: torch.device) -> float:
    """Start measuring the peak from now (after the weights are loaded, so the loading
    transient does not count); returns the memory in use now, the baseline."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device) / 2 ** 20
    try:  # give the heap freed while the weights were built back to the OS (glibc only):
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # else it stays in RSS and blurs the baseline
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets the process's peak RSS (VmHWM)
    except OSError:
        pass
    return _proc_status_mb("VmRSS")


def peak_memory_mb(device: torch.device) -> float:
    """Peak since the last reset: max allocated on CUDA, peak RSS (VmHWM) on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return _proc_status_mb("VmHWM")


def _proc_status_mb(field: str) -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: the lifetime peak


# ---- workers (one process each) ----------------------------------------------------

def _sampled(num_frames: int) -> set[int]:
    return set(range(1, num_frames, max(1, num_frames // 6)))


def run_engine(video_dir: Path, out_dir: Path, device: torch.device, timer: StageTimer, amp: bool = False) -> int:
    import inference_memory_bank
    from util.evaluation import EvalSettings, segment_video
    network = benchmark_network(device)
    timer.baseline_mb = reset_peak_memory(device)
    video, palette = generic_video(video_dir / "frames", video_dir / "first.png")
    sampled = _sampled(video.num_frames)
    timer.wrap(network, "encode_key", "key encoding")
    timer.wrap(inference_memory_bank.MemoryBank, "read", "memory read")
    timer.wrap(network, "decode_objects", "decoding")
    timer.wrap(network, "encode_value_objects", "value encoding")

    def on_mask(index: int, name: str, labels: np.ndarray) -> None:
        start = time.perf_counter()
        write_indexed_png(labels, palette, out_dir / f"{name}.png")
        timer.seconds["writing"] += time.perf_counter() - start

    def on_prob(index: int, prob: torch.Tensor) -> None:
        if index in sampled:
            np.save(out_dir / f"prob_{index:05d}.npy", prob.cpu().numpy())

    segment_video(network, video, EvalSettings(amp=amp), device, on_mask, on_prob)
    return video.num_frames


def run_oracle(video_dir: Path, out_dir: Path, device: torch.device, timer: StageTimer) -> int:
    from inference_core import output_prob
    from reference.inference import ReferenceInferenceCore, ReferenceMemoryBank
    network = benchmark_network(device)
    timer.baseline_mb = reset_peak_memory(device)
    video, palette = generic_video(video_dir / "frames", video_dir / "first.png")
    frames = list(video.read_frames())  # the reference loads the whole video
    images = torch.stack([f.image for f in frames]).unsqueeze(0).to(device)
    first_mask = frames[0].mask.unsqueeze(1).to(device)
    names = [f.name for f in frames]
    del frames
    timer.wrap(network, "encode_key", "key encoding")
    timer.wrap(ReferenceMemoryBank, "match_memory", "memory read")
    timer.wrap(network.decoder, "forward", "decoding")
    timer.wrap(network, "encode_value_objects", "value encoding")
    core = ReferenceInferenceCore(network, images, video.num_objects, top_k=50, mem_every=3)
    core.interact(first_mask, 0)
    sampled = _sampled(len(names))
    start = time.perf_counter()
    for t, name in enumerate(names):
        prob = output_prob(core.prob[:, t], core.pad, video.output_size)[:, 0]
        if t in sampled:
            np.save(out_dir / f"prob_{t:05d}.npy", prob.cpu().numpy())
        labels = torch.argmax(prob, dim=0).to(torch.uint8).cpu().numpy()
        write_indexed_png(video.mapping.to_labels(labels), palette, out_dir / f"{name}.png")
    timer.seconds["writing"] += time.perf_counter() - start
    return len(names)


def run_training(implementation: str, batch: int, crop: int, iterations: int, device: torch.device) -> dict:
    from model.losses import LossComputer
    from model.train_forward import clip_forward
    from reference.training import ReferenceGSFM
    torch.manual_seed(0)
    network_class = GSFM if implementation == "engine" else ReferenceGSFM
    network = network_class(single_object=False).to(device).eval()  # frozen BatchNorm, as in training
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-5)
    losses = LossComputer(0, 1)
    generator = torch.Generator().manual_seed(0)
    rgb = torch.randn(batch, 3, 3, crop, crop, generator=generator).to(device)
    gt = (torch.rand(batch, 3, 1, crop, crop, generator=generator) > 0.5).float().to(device)
    sec_gt = (torch.rand(batch, 3, 1, crop, crop, generator=generator) > 0.7).float().to(device) * (1 - gt)
    data = {"rgb": rgb, "gt": gt, "sec_gt": sec_gt, "selector": torch.ones(batch, 2, device=device),
            "cls_gt": (gt[:, :, 0] + 2 * sec_gt[:, :, 0]).long()}
    times = []
    for it in range(iterations + 1):  # the first iteration warms up
        start = time.perf_counter()
        out = clip_forward(network, rgb, gt, sec_gt, data["selector"])
        loss = losses.compute({**data, **out}, 0)["total_loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    step = float(np.mean(times[1:]))
    return {"seconds_per_iteration": round(step, 3), "iterations_per_second": round(1 / step, 3),
            "loss": round(loss.item(), 6), "peak_memory_mb": round(peak_memory_mb(device), 1)}


def worker(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    torch.set_num_threads(args.threads) if args.threads else None
    if args.worker.startswith("train_"):
        result = run_training(args.worker[len("train_"):], args.train_batch[0], args.crop, args.iterations, device)
    else:
        out_dir = Path(args.result).parent / "masks"
        out_dir.mkdir(parents=True, exist_ok=True)
        timer = StageTimer(device)
        start = time.perf_counter()
        with torch.inference_mode():
            if args.worker == "oracle":
                frames = run_oracle(Path(args.video), out_dir, device, timer)
            else:
                frames = run_engine(Path(args.video), out_dir, device, timer, amp=args.worker == "engine_amp")
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
        result = {"frames": frames, "seconds": round(seconds, 3), "fps": round(frames / seconds, 3),
                  "stages": {s: round(timer.seconds.get(s, 0.0), 3) for s in STAGES},
                  "peak_memory_mb": round(peak_memory_mb(device), 1),
                  "working_memory_mb": round(peak_memory_mb(device) - timer.baseline_mb, 1)}
    Path(args.result).write_text(json.dumps(result))


# ---- driver --------------------------------------------------------------------------

def launch(args: argparse.Namespace, role: str, result: Path, extra: list[str]) -> dict:
    if args.reuse and result.exists():
        print(f"  reusing {result}")
        return json.loads(result.read_text())
    result.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "scripts.benchmark", "--worker", role, "--result", str(result),
           "--device", args.device, "--threads", str(args.threads)] + extra
    print(f"  running {role} {' '.join(extra)}", flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)
    return json.loads(result.read_text())


def agreement(engine_dir: Path, oracle_dir: Path) -> dict:
    """Equal mask pixels over all frames; on the sampled frames, also the agreement where the
    oracle's decision is not a near-tie (top-two margin > 1e-4, the golden tests' rule) and
    the probability differences."""
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
    return {"pixel_agreement": equal / total, "decided_pixel_agreement": decided_equal / max(decided_total, 1),
            "max_prob_difference": prob_diff, "prob_values_beyond_1e-4": beyond / max(values, 1)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[60])
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--no_oracle", action="store_true", help="only this implementation")
    parser.add_argument("--amp", action="store_true", help="also this implementation with --amp (bfloat16 "
                        "autocast on CPU, float16 on CUDA: changes outputs; agreement reported)")
    parser.add_argument("--no_inference", action="store_true", help="skip the inference benchmark")
    parser.add_argument("--train", action="store_true", help="also the training-step benchmark")
    parser.add_argument("--train_batch", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--crop", type=int, default=384)
    parser.add_argument("--iterations", type=int, default=3, help="timed training iterations (after 1 warm-up)")
    parser.add_argument("--output", default=str(REPO / "output" / "benchmark"))
    parser.add_argument("--reuse", action="store_true", help="reuse finished runs found in --output (delete a "
                        "run's folder under runs/ to redo it)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--video", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return {}

    out = Path(args.output)
    report = {"device": args.device, "torch": torch.__version__, "weights": "synthetic (model/synthetic_weights.py)",
              "inference": [], "training": []}
    roles = ["engine"] if args.no_oracle else ["engine", "oracle"]
    for frames in [] if args.no_inference else args.frames:
        for objects in args.objects:
            video = make_benchmark_video(out / "videos", frames, objects, args.height, args.width)
            row = {"frames": frames, "objects": objects}
            video_roles = roles + (["engine_amp"] if args.amp else [])
            for role in video_roles:
                run_dir = out / "runs" / f"{video.name}_{role}"
                row[role] = launch(args, role, run_dir / "result.json", ["--video", str(video)])
            if "oracle" in row:
                oracle = row["oracle"]
                for role in [r for r in video_roles if r != "oracle"]:
                    mine = row[role]
                    mine["speedup"] = round(mine["fps"] / oracle["fps"], 2)
                    mine["memory_ratio"] = round(mine["peak_memory_mb"] / oracle["peak_memory_mb"], 3)
                    mine["working_memory_ratio"] = round(mine["working_memory_mb"] / oracle["working_memory_mb"], 3)
                    mine.update(agreement(out / "runs" / f"{video.name}_{role}" / "masks",
                                          out / "runs" / f"{video.name}_oracle" / "masks"))
            report["inference"].append(row)
            print_row(row)
    for batch in args.train_batch if args.train else []:
        row = {"batch": batch, "crop": args.crop}
        for role in roles:
            row[role] = launch(args, f"train_{role}", out / "runs" / f"train_b{batch}_{role}.json",
                               ["--train_batch", str(batch), "--crop", str(args.crop),
                                "--iterations", str(args.iterations)])
        if "oracle" in row:
            row["speedup"] = round(row["engine"]["iterations_per_second"] / row["oracle"]["iterations_per_second"], 2)
        report["training"].append(row)
        print(json.dumps(row))
    out.mkdir(parents=True, exist_ok=True)
    atomic_save(lambda tmp: tmp.write_text(json.dumps(report, indent=1)), out / "benchmark.json")
    print(f"written: {out / 'benchmark.json'}")
    return report


def print_row(row: dict) -> None:
    print(f"{row['frames']} frames, {row['objects']} object(s):")
    print(f"  {'':10s} {'fps':>7s} {'peak MB':>8s} {'work MB':>8s} " + " ".join(f"{s:>14s}" for s in STAGES))
    roles = [r for r in ("engine", "engine_amp", "oracle") if r in row]
    for role in roles:
        r = row[role]
        print(f"  {role:10s} {r['fps']:7.3f} {r['peak_memory_mb']:8.0f} {r['working_memory_mb']:8.0f} "
              + " ".join(f"{r['stages'][s]:14.2f}" for s in STAGES))
    for role in roles:
        r = row[role]
        if "speedup" in r:
            print(f"  {role}: speed-up {r['speedup']}x, memory ratio {r['memory_ratio']} (working memory "
                  f"{r['working_memory_ratio']}), pixel agreement {r['pixel_agreement']:.6f} "
                  f"({r['decided_pixel_agreement']:.6f} where not a near-tie), max prob difference "
                  f"{r['max_prob_difference']:.2e} ({r['prob_values_beyond_1e-4']:.2e} of values beyond 1e-4)",
                  flush=True)


if __name__ == "__main__":
    main()
