"""Throughput of several videos at once on one device, the two ways of the issue: ``workers``
(``--videos_per_device N``: N worker threads sharing the network, each running its own video
through the engine, the eval scripts' path) and ``batched`` (N videos advance together frame
by frame; each per-frame network call runs once on the stacked batch of their N frames, while
each video keeps its own memory bank, memory read and soft aggregation: ``LockstepNetwork``).

A generated DAVIS 2017 validation set is segmented whole once per N and mode (in that
order), each into a fresh folder, in this process, after a one-video warm-up (the batched
mode also warms its batch of N on the first two frames). Reported per run: frames/s over its
wall time, its peak memory (GPU: max allocated; CPU: peak resident set), the share of mask
pixels equal to the first run's (by default workers with N = 1, the eval scripts' normal
path) and the load average after it.

    python -m scripts.videos_per_device --device cuda [--modes workers batched] [--counts 1 2 4 8]
        [--videos 8] [--frames 30]
Results: ``<output>/videos_per_device.json`` (with the machine stamp); ``scripts.gpu_check``
runs it on a GPU, ``scripts.render_docs`` renders it (``markdown``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from datasets.eval_datasets import EvalVideo, davis_videos
from datasets.synthetic import SyntheticConfig, generate
from evaluation.run import evaluate
from evaluation.sinks import DavisScores, OutputSink
from evaluation.video import segment_video
from inference_backend import PyTorchBackend
from model.network import GSFM, KeyFeatures, other_objects
from scripts.benchmarking import REPO, benchmark_network, first_frames
from util import cli
from util.atomic import atomic_save
from util.configuration import InferenceConfig
from util.log import get_logger
from util.memory import peak_memory_mb, reset_peak_memory, synchronize
from util.stamp import describe, machine_stamp

logger = get_logger(__name__)
MODES = ("workers", "batched")


def parser() -> argparse.ArgumentParser:
    p = cli.argument_parser(__doc__)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="the ways to measure")
    p.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4, 8], help="the N to measure")
    p.add_argument("--videos", type=int, default=8)
    p.add_argument("--frames", type=int, default=30, help="frames per video")
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=854)
    p.add_argument("--output", type=Path, default=REPO / "output" / "videos_per_device")
    return p


class LockstepNetwork(PyTorchBackend):
    """The network of ``videos`` videos that advance together, as the backend of each one's
    ``InferenceCore``: every video runs the engine unchanged in its own thread, and each of
    its network calls waits until every video has made the same call, then runs once on the
    stacked batch (by the last thread to arrive) and hands each video its part. The videos
    must make the same calls in the same order: same length, same padded size, same number
    of objects. A video that ends or fails calls ``abort``, so that a fellow still waiting
    for it gets ``threading.BrokenBarrierError`` instead of waiting forever."""

    def __init__(self, network: GSFM, videos: int):
        super().__init__(network)
        self._arrive = threading.Lock()
        self._calls: list[tuple[str, tuple[torch.Tensor, ...]]] = []
        self._results: list = []
        self._barrier = threading.Barrier(videos, action=self._run)

    def abort(self) -> None:
        self._barrier.abort()

    def encode_key(self, frame: torch.Tensor) -> KeyFeatures:
        return self._together("keys", frame)

    def encode_value_objects(self, frame: torch.Tensor, key_f16: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return self._together("values", frame, key_f16, masks)

    def decode_objects(
        self, readout: torch.Tensor, f16_thin: torch.Tensor, f8: torch.Tensor, f4: torch.Tensor
    ) -> torch.Tensor:
        return self._together("decoding", readout, f16_thin, f8, f4)

    def _together(self, call: str, *inputs: torch.Tensor):
        with self._arrive:
            position = len(self._calls)
            self._calls.append((call, inputs))
        # the batch runs in the barrier's action, before anyone is released; the next batch
        # starts only when every video has arrived again, that is after each took its result
        self._barrier.wait()
        return self._results[position]

    def _run(self) -> None:
        calls, self._calls = self._calls, []
        names = sorted({call for call, _ in calls})
        if len(names) > 1:
            raise RuntimeError(f"videos advancing together made different network calls at once: {names}")
        per_argument = [list(argument) for argument in zip(*(inputs for _, inputs in calls))]
        self._results = getattr(self, f"_{names[0]}")(*per_argument)

    def _keys(self, frames: list[torch.Tensor]) -> list[KeyFeatures]:
        keys = self.network.encode_key(torch.cat(frames))
        return [KeyFeatures(*(feature[i : i + 1] for feature in keys)) for i in range(len(frames))]

    def _values(
        self, frames: list[torch.Tensor], keys_f16: list[torch.Tensor], masks: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        # each object with its own video's frame and features, and the others of its own video
        counts = [m.shape[0] for m in masks]
        repeats = torch.tensor(counts, device=self.device)
        values = self.network.encode_value(
            torch.cat(frames).repeat_interleave(repeats, 0),
            torch.cat(keys_f16).repeat_interleave(repeats, 0),
            torch.cat(masks),
            torch.cat([other_objects(m) for m in masks]),
        )
        return list(values.split(counts))

    def _decoding(
        self, readouts: list[torch.Tensor], f16_thin: list[torch.Tensor], f8: list[torch.Tensor], f4: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        # object-major (object o of video v at o * videos + v), as the decoder takes several
        # frames: one pass per object decodes it in every video, sharing each frame's skip features
        videos, objects = len(readouts), readouts[0].shape[0]
        prob = self.network.decode_objects(
            torch.stack(readouts, 1).flatten(0, 1),
            torch.cat(f16_thin).repeat(objects, 1, 1, 1),
            torch.cat(f8),
            torch.cat(f4),
        )
        return list(prob.view(objects, videos, *prob.shape[1:]).unbind(1))


def segment_batched(
    network: GSFM, videos: list[EvalVideo], count: int, out: Path, config: InferenceConfig, sink: OutputSink
) -> int:
    """``videos`` in groups of ``count`` that advance together (``LockstepNetwork``), their
    masks through ``sink`` into ``out/<video>/``; returns the frames processed."""
    frames = 0
    for start in range(0, len(videos), count):
        group = videos[start : start + count]
        lockstep = LockstepNetwork(network, len(group))

        def one(video: EvalVideo) -> int:
            folder = out / video.name
            folder.mkdir(parents=True, exist_ok=True)
            try:
                return segment_video(lockstep, video, config, lambda frame: sink.write(video, frame, folder))
            finally:
                lockstep.abort()  # nothing more of this video: a fellow that still waits fails

        with ThreadPoolExecutor(len(group), thread_name_prefix="batched") as pool:
            futures = [pool.submit(one, video) for video in group]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:  # the cause, not the broken barrier it left its fellows
            cause = next((e for e in errors if not isinstance(e, threading.BrokenBarrierError)), None)
            if cause is None:
                raise RuntimeError("videos advancing together must make the same network calls") from errors[0]
            raise cause
        frames += sum(f.result() for f in futures)
    return frames


def run_batched(
    network: GSFM, videos: list[EvalVideo], count: int, out: Path, config: InferenceConfig, sink: OutputSink
) -> dict:
    """The batched mode's statistics, as ``evaluate`` gives the workers' (wall time, frames/s,
    peak memory)."""
    device = next(network.parameters()).device
    reset_peak_memory(device)
    synchronize(device)
    started = time.perf_counter()
    frames = segment_batched(network, videos, count, out, config, sink)
    synchronize(device)
    wall = time.perf_counter() - started
    return {
        "frames": frames,
        "wall_seconds": round(wall, 3),
        "throughput_fps": round(frames / wall, 3),
        "peak_memory_mb": round(peak_memory_mb(device), 1),
    }


def pixels_equal(folder: Path, reference: Path) -> tuple[int, int]:
    """(pixels equal, pixels) over every mask of ``reference``; a mask missing from
    ``folder`` counts as all different."""
    equal, total = 0, 0
    for png in sorted(p.relative_to(reference) for p in reference.glob("*/*.png")):
        expected = np.array(Image.open(reference / png))
        total += expected.size
        if (folder / png).is_file():
            equal += int((np.array(Image.open(folder / png)) == expected).sum())
    return equal, total


def measure(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = generate(
        SyntheticConfig(
            args.output / "data",
            seed=7,
            height=args.height,
            width=args.width,
            frames=args.frames,
            train_videos=1,
            val_videos=args.videos,
            static_images=1,
        )
    )
    root = data / "DAVIS" / "2017" / "trainval"
    listing = root / "ImageSets" / "2017" / "val.txt"
    network = benchmark_network(device)
    config = InferenceConfig()
    videos, palette = davis_videos(root, listing)
    report = {
        "stamp": machine_stamp(device.type, torch.get_num_threads()),
        "weights": "synthetic (model/synthetic_weights.py)",
        "videos": args.videos,
        "frames_per_video": args.frames,
        "objects": len(videos[0].object_ids),
        "size": [args.height, args.width],
        "load_average_before": os.getloadavg(),
        "rows": [],
    }
    # warm-up (oneDNN primitives, cuDNN's choices), so that the first N measured pays none
    shutil.rmtree(args.output / "runs", ignore_errors=True)
    evaluate(network, videos[:1], args.output / "runs" / "warm_up", config, DavisScores(palette))
    first = None
    # each N's ways one after the other, so that a change in the machine's load between the
    # runs weighs on both ways alike
    runs = [(mode, count) for count in args.counts for mode in args.modes]
    for index, (mode, count) in enumerate(runs):
        out = args.output / "runs" / f"{index}_{mode}_n{count}"
        videos, palette = davis_videos(root, listing)
        if mode == "workers":
            stats = evaluate(network, videos, out, config, DavisScores(palette), videos_per_device=count)
        else:
            # the batch of N's own warm-up: its first two frames
            warm_up = [first_frames(v, 2) for v in davis_videos(root, listing)[0][:count]]
            segment_batched(
                network,
                warm_up,
                count,
                args.output / "runs" / f"{index}_warm_up_n{count}",
                config,
                DavisScores(palette),
            )
            stats = run_batched(network, videos, count, out, config, DavisScores(palette))
        first = first or out
        equal, total = pixels_equal(out, first)
        row = {
            "mode": mode,
            "videos_per_device": count,
            "frames": stats["frames"],
            "wall_seconds": stats["wall_seconds"],
            "throughput_fps": stats["throughput_fps"],
            "peak_memory_mb": stats["peak_memory_mb"],
            "pixels_equal_to_first": equal / total,
            "pixels_different_from_first": total - equal,
            "masks_equal_to_first": equal == total,
            "load_average_after": os.getloadavg()[0],
        }
        logger.info(f"{mode}, {count} videos at once: {row}")
        report["rows"].append(row)
    report["load_average_after"] = os.getloadavg()
    return report


def markdown(report: dict) -> str:
    """The measurement as a table (``scripts.render_docs``)."""
    h, w = report["size"]
    first = report["rows"][0]
    lines = [
        f"Measured on {describe(report['stamp'])}: {report['videos']} generated videos of "
        f"{report['frames_per_video']} frames at {w}x{h} with {report['objects']} objects each, segmented whole "
        f"for each way and N; masks compared with the first row's ({first['mode']}, N = "
        f"{first['videos_per_device']}); load average {report['load_average_before'][0]:.1f} before, "
        f"{report['load_average_after'][0]:.1f} after.",
        "",
        "| way | N | frames/s | peak memory MB | pixels equal to the first row's | load average after |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['mode']} | {r['videos_per_device']} | {r['throughput_fps']:.3f} | {r['peak_memory_mb']:,.1f} | "
        f"{100 * r['pixels_equal_to_first']:.4f} % ({r['pixels_different_from_first']:,} differ) | "
        f"{r['load_average_after']:.1f} |"
        for r in report["rows"]
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    args = parser().parse_args(argv)
    report = measure(args)
    atomic_save(lambda tmp: tmp.write_text(json.dumps(report, indent=1)), args.output / "videos_per_device.json")
    return report


if __name__ == "__main__":
    cli.run(main)
