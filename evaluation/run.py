"""Many videos into one output folder, by one process or by many.

Every eval script calls ``run_evaluation``. Under torchrun (one or several machines; or the
legacy torch.distributed.launch) each rank takes its share of the videos, longest first and
balanced by frame count, then helps with what others have not started; independent runs
started on one output folder share the work the same way. A video is claimed before it is
computed (``evaluation.claims``: never two processes on one video; a dead process's claim is
free again), written into a hidden temporary folder and moved into place when complete, so
an interrupted run never leaves a folder that looks finished and a rerun computes only the
missing videos. Each process ends when every video is published; then one summary is
written (by rank 0, or by each independent run, always over all videos): ``eval_stats.json``
(frames/s, peak memory, per rank and per video) and what the sink adds (J&F, a zip). The
folder's record (``evaluation.record``) makes sure every video in it was made by the same
weights, settings and code.

    evaluate(network, videos, Path("output/d17"), InferenceConfig(), DavisScores(palette))
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from datasets.eval_datasets import EvalVideo
from evaluation.claims import Claims
from evaluation.record import RECORD_FILE, RecordMismatch, claim_folder, make_record, replace_record, withdraw_record
from evaluation.sinks import OutputSink
from evaluation.video import segment_video
from inference_backend import BACKENDS, Backend, OnnxRuntimeBackend, as_backend
from model.checkpoint import load_network
from model.network import GSFM
from model.zoo import resolve_model
from util import distributed
from util.atomic import atomic_save, check_writable, publish_dir
from util.configuration import InferenceConfig, add_arguments, from_arguments
from util.errors import ConfigError
from util.log import get_logger
from util.memory import peak_memory_mb, reset_peak_memory, synchronize
from util.paths import remove_tree_inside
from util.precision import autocast_enabled
from util.stamp import code_version

logger = get_logger(__name__)
STATS_FOLDER = ".eval_stats"  # one JSON per published video, for the summary
POLL_SECONDS = 1.0  # how often a process with nothing left to claim looks again


def add_network_args(parser: argparse.ArgumentParser, model_help: str | None = None) -> None:
    """The options that say what runs the network and where: the weights, the device, the
    CPU threads and the backend (the eval scripts' and the app's, read by ``start``)."""
    parser.add_argument(
        "--model",
        help=model_help or "network weights (.pth) or a published name (stcn-s012, ...); needed by the pytorch backend",
    )
    parser.add_argument(
        "--device", help="cuda or cpu (default: cuda when available; under torchrun each process uses cuda:LOCAL_RANK)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads per process (default: torch's, divided among this machine's processes under torchrun)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="pytorch",
        help="what runs the per-frame networks: pytorch (the --model weights) or onnxruntime (float32 "
        "only: the --model weights' graphs, exported on first use into --onnx_cache, or the graphs in --onnx)",
    )
    parser.add_argument(
        "--onnx",
        type=Path,
        help="export folder of the onnxruntime backend (python -m "
        "scripts.export_onnx), holding the padded frame size of the data; instead of --model",
    )
    parser.add_argument(
        "--onnx_cache",
        type=Path,
        help="where the onnxruntime backend caches the graphs it exports from --model, one subfolder per "
        "weights (default: $XDG_CACHE_HOME/gsfm/onnx, or ~/.cache/gsfm/onnx)",
    )


def add_common_args(parser: argparse.ArgumentParser, **inference_defaults) -> None:
    """Every eval script's options: the network's, the output folder, the inference settings,
    how many videos at once, overwriting."""
    add_network_args(parser)
    parser.add_argument("--output", required=True, type=Path, help="output folder")
    add_arguments(parser, InferenceConfig, **inference_defaults)
    parser.add_argument(
        "--videos_per_device",
        type=int,
        default=1,
        help="videos computed at once by this process, each by its own worker thread sharing the network "
        "(on a GPU each in its own CUDA stream); the masks are those of one at a time",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="recompute every video, also when the output "
        "folder holds results of other weights or settings (not with several runs sharing the "
        "folder)",
    )


def evaluate_from_arguments(
    args: argparse.Namespace, videos: list[EvalVideo], sink: OutputSink, protocol: dict, **settings
) -> dict | None:
    """The eval scripts' common end: the inference settings from ``args`` (``settings``
    overriding them), this process's place in the job, the network, then ``evaluate``."""
    if args.videos_per_device < 1:
        raise ConfigError(f"--videos_per_device must be at least 1, got {args.videos_per_device}")
    config = from_arguments(InferenceConfig, args, **settings)
    processes, network = start(args)
    fresh = not (Path(args.output) / RECORD_FILE).exists()
    try:
        return evaluate(
            network,
            videos,
            args.output,
            config,
            sink,
            processes,
            protocol=protocol,
            overwrite=args.overwrite,
            weights_file=next((str(p) for p in (args.model, args.onnx) if p), None),
            videos_per_device=args.videos_per_device,
        )
    except BaseException:
        # a failed start leaves no record: one process whose folder had none and got no video done
        out = Path(args.output)
        if fresh and processes.world_size == 1 and (out / RECORD_FILE).is_file():
            if not any((out / STATS_FOLDER).glob("*.json")):
                withdraw_record(out)
        raise


def start(args: argparse.Namespace) -> tuple[distributed.Processes, GSFM | OnnxRuntimeBackend]:
    """This process's place in the job (its device, its CPU threads) and the network (or
    the ONNX Runtime backend that stands for it)."""
    if args.backend == "onnxruntime" and args.amp:
        raise ConfigError("--amp does not apply to --backend onnxruntime (its graphs are float32)")
    if args.model is None and (args.backend == "pytorch" or args.onnx is None):
        raise ConfigError("--model is required (or --backend onnxruntime with --onnx DIR)")
    processes = distributed.init(args.device)
    if processes.device.type == "cpu" and (args.threads or processes.local_world_size > 1):
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        torch.set_num_threads(args.threads or max(1, cores // processes.local_world_size))
    if args.backend == "onnxruntime" and args.onnx is not None:
        return processes, OnnxRuntimeBackend(args.onnx, processes.device)
    if args.backend == "onnxruntime":  # exports on the CPU, whatever device runs the graphs
        network = load_network(resolve_model(args.model), "cpu")
        return processes, OnnxRuntimeBackend.cached(network, args.onnx_cache, processes.device, model_name=args.model)
    return processes, load_network(resolve_model(args.model), processes.device)


def shard(videos: list[EvalVideo], parts: int) -> list[list[EvalVideo]]:
    """Longest first, each to the part with the fewest frames so far (ties: lowest part)."""
    shards: list[list[EvalVideo]] = [[] for _ in range(parts)]
    loads = [0] * parts
    for video in sorted(videos, key=lambda v: (-v.num_frames, v.name)):
        part = loads.index(min(loads))
        shards[part].append(video)
        loads[part] += video.num_frames
    return shards


class JobProgress:
    """One bar for the whole job (every video, whoever computes it), on rank 0 only."""

    def __init__(self, videos: list[EvalVideo], mask_root: Path, enabled: bool):
        self.videos, self.mask_root = videos, mask_root
        self.bar = tqdm(total=sum(v.num_frames for v in videos), unit="frame", disable=not enabled, dynamic_ncols=True)
        self.own, self.polled = 0, 0.0  # frames read of the videos this process is computing

    def frame(self) -> None:
        self.own += 1
        self.refresh()

    def published(self, frames: int) -> None:
        """A video of this process's is published: its frames now count among the done."""
        self.own -= frames

    def refresh(self, force: bool = False) -> None:
        if self.bar.disable or (not force and time.monotonic() - self.polled < 2):
            return
        self.polled = time.monotonic()
        done = [v for v in self.videos if (self.mask_root / v.name).is_dir()]
        self.bar.n = sum(v.num_frames for v in done) + self.own
        self.bar.set_postfix(videos=f"{len(done)}/{len(self.videos)}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.refresh(force=True)
        self.bar.close()


def evaluate(
    network: GSFM | Backend,
    videos: list[EvalVideo],
    out_root: Path,
    config: InferenceConfig,
    sink: OutputSink,
    processes: distributed.Processes | None = None,
    protocol: dict | None = None,
    overwrite: bool = False,
    weights_file: str | None = None,
    videos_per_device: int = 1,
) -> dict | None:
    """Segment ``videos`` into ``out_root/<sink.masks_subdir>/<video>/``, every wanted frame
    through ``sink``; every process of the job calls this. ``protocol``: the benchmark's
    settings that change the masks (split, frames read, layout), recorded with the inference
    settings, the weights' fingerprint and the code version. ``network``: a ``GSFM`` or a
    backend (``inference_backend``). ``weights_file``: where the weights were read from, for
    the record. ``videos_per_device``: videos this process computes at once
    (``_work_together``). Returns the summary statistics (None on ranks other than 0)."""
    network = as_backend(network)
    processes = processes or distributed.init(network.device.type)
    # --amp as it will run (a CPU without bfloat16 falls back to float32): what the record says
    config = dataclasses.replace(config, amp=autocast_enabled(network.device, config.amp, config.amp_anyway))
    check_writable(out_root)
    mask_root = out_root / sink.masks_subdir
    stats_root = out_root / STATS_FOLDER
    device = processes.device
    record = make_record(
        network.weights_sha256,
        {**dataclasses.asdict(config), "backend": network.name},
        protocol or {},
        code_version(),
        weights_file,
    )
    if overwrite and processes.is_main:
        for video in videos:
            remove_tree_inside(out_root, mask_root / video.name)
            (stats_root / f"{video.name}.json").unlink(missing_ok=True)
        replace_record(out_root, record)
    distributed.barrier()
    started = time.perf_counter()
    published = lambda video: (mask_root / video.name).is_dir()  # noqa: E731
    skipped = sum(published(v) for v in videos)
    claim_folder(out_root, record, has_results=skipped > 0)
    claims = Claims(out_root)
    shards = shard(videos, processes.world_size)
    # this rank's share first, then (smallest first) whatever the others have not started
    queue = shards[processes.rank] + sorted(
        (v for v in videos if v not in shards[processes.rank]), key=lambda v: (v.num_frames, v.name)
    )
    progress = JobProgress(videos, mask_root, processes.is_main)
    reset_peak_memory(device)
    compute = lambda video: _compute(  # noqa: E731
        network, video, mask_root, stats_root, config, processes, sink, progress, record["id"]
    )
    if videos_per_device == 1:
        mine = _work(queue, claims, published, compute, progress)
    else:
        mine = _work_together(videos_per_device, queue, claims, published, compute, progress, device)
    progress.close()
    rank_stats = {
        "rank": processes.rank,
        "host": socket.gethostname(),
        "device": str(device),
        "videos": len(mine),
        "frames": sum(s["frames"] for s in mine),
        "seconds": round(sum(s["seconds"] for s in mine), 3),
        "peak_memory_mb": round(peak_memory_mb(device), 1),
        "videos_per_device": videos_per_device,
    }
    rank_stats["fps"] = round(rank_stats["frames"] / rank_stats["seconds"], 3) if rank_stats["seconds"] else None
    distributed.barrier()
    gathered = distributed.all_gather_object(rank_stats)
    if not processes.is_main:
        return None
    stats = _summary(videos, stats_root, gathered, skipped, time.perf_counter() - started, record)
    logger.info(
        f"{stats['videos_processed']} videos ({skipped} already done), {stats['frames']} frames, "
        f"{stats['fps']} frames/s per process, {stats['throughput_fps']} frames/s in all "
        f"({len(gathered)} process{'es' if len(gathered) > 1 else ''}), peak memory {stats['peak_memory_mb']} MB"
    )
    atomic_save(lambda tmp: tmp.write_text(json.dumps(stats, indent=1)), out_root / "eval_stats.json")
    sink.finish(videos, out_root)
    return stats


def _work(
    queue: list[EvalVideo],
    claims: Claims,
    published: Callable[[EvalVideo], bool],
    compute: Callable[[EvalVideo], dict],
    progress: JobProgress,
    stop: threading.Event | None = None,
) -> list[dict]:
    """Claim and compute videos of ``queue`` until every one is published (by anyone);
    the statistics of those computed here. ``stop``: set when a fellow worker failed."""
    mine: list[dict] = []
    while queue and not (stop and stop.is_set()):
        claimed_any = False
        for video in list(queue):
            if stop and stop.is_set():
                break
            if not published(video) and claims.try_claim(video.name) is not None:
                claimed_any = True
                try:
                    if not published(video):  # finished by another process just before we claimed it
                        mine.append(compute(video))
                finally:
                    claims.release(video.name)
            if published(video):
                queue.remove(video)
        if queue and not claimed_any:  # the rest is being computed elsewhere: wait for it
            progress.refresh(force=True)
            time.sleep(POLL_SECONDS)
    return mine


def _work_together(
    workers: int,
    queue: list[EvalVideo],
    claims: Claims,
    published: Callable[[EvalVideo], bool],
    compute: Callable[[EvalVideo], dict],
    progress: JobProgress,
    device: torch.device,
) -> list[dict]:
    """``_work`` by ``workers`` threads, each with the whole queue, sharing the claims and the network: one
    video each at a time (the claims keep two threads off one video as they keep two
    processes off it). On a GPU each thread queues its kernels on its own CUDA stream, so
    one video's kernels fill the gaps another's leave. The first error stops the others
    from claiming more and is raised once they have finished their videos."""
    stop = threading.Event()

    def worker() -> list[dict]:
        streams = torch.cuda.stream(torch.cuda.Stream(device)) if device.type == "cuda" else contextlib.nullcontext()
        try:
            with streams:
                return _work(list(queue), claims, published, compute, progress, stop)
        except BaseException:
            stop.set()
            raise

    with ThreadPoolExecutor(workers, thread_name_prefix="video") as pool:
        futures = [pool.submit(worker) for _ in range(workers)]
    return [stats for future in futures for stats in future.result()]


def _compute(
    network: Backend,
    video: EvalVideo,
    mask_root: Path,
    stats_root: Path,
    config: InferenceConfig,
    processes: distributed.Processes,
    sink: OutputSink,
    progress: JobProgress,
    record_id: str,
) -> dict:
    """One claimed video: masks into a temporary folder, its statistics, then published."""
    tmp_dir = mask_root / f".tmp_{video.name}"
    shutil.rmtree(tmp_dir, ignore_errors=True)  # a dead process's unfinished attempt
    tmp_dir.mkdir(parents=True)

    synchronize(processes.device)
    start = time.perf_counter()
    frames = segment_video(
        network,
        video,
        config,
        lambda frame: sink.write(video, frame, tmp_dir),
        scratch=tmp_dir,
        on_frame=progress.frame,
    )
    synchronize(processes.device)
    stats = {
        "video": video.name,
        "frames": frames,
        "seconds": round(time.perf_counter() - start, 3),
        "rank": processes.rank,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "device": str(processes.device),
        "record": record_id,
    }
    atomic_save(lambda tmp: tmp.write_text(json.dumps(stats)), stats_root / f"{video.name}.json")
    publish_dir(tmp_dir, mask_root / video.name)
    progress.published(video.num_frames)
    return stats


def _summary(
    videos: list[EvalVideo], stats_root: Path, ranks: list[dict], skipped: int, wall_seconds: float, record: dict
) -> dict:
    """The job's statistics over every video; a video published under another record (or
    without statistics) is an error, never part of the summary."""
    frames = sum(r["frames"] for r in ranks)
    seconds = sum(r["seconds"] for r in ranks)
    per_video = {}
    for video in videos:
        path = stats_root / f"{video.name}.json"
        per_video[video.name] = json.loads(path.read_text()) if path.is_file() else {}
    foreign = [name for name, stats in per_video.items() if stats.get("record") != record["id"]]
    if foreign:
        raise RecordMismatch(
            f"{len(foreign)} video(s) in {stats_root.parent} were not made under its "
            f"{RECORD_FILE} (e.g. {foreign[0]}); rerun with --overwrite"
        )
    return {
        "videos": len(videos),
        "videos_processed": sum(r["videos"] for r in ranks),
        "videos_skipped": skipped,
        "frames": frames,
        "seconds": round(seconds, 3),
        "fps": round(frames / seconds, 3) if seconds else None,
        "wall_seconds": round(wall_seconds, 3),
        "throughput_fps": round(frames / wall_seconds, 3) if frames else None,
        "peak_memory_mb": max(r["peak_memory_mb"] for r in ranks),
        "device": ranks[0]["device"],
        "processes": len(ranks),
        "settings": record["inference"],
        "protocol": record["protocol"],
        "weights": record["weights"],
        "code": record["code"],
        "ranks": ranks,
        "per_video": per_video,
    }
