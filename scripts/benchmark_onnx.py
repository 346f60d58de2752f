"""ONNX Runtime against PyTorch on the CPU: the same engine, the same video, the same threads.

The benchmark's synthetic 854x480 video (``scripts.benchmarking``: deterministic weights, JPEG
frames, first-frame mask; default settings top 50, mem_every 3) goes through the evaluation
path (``scripts.benchmarking.run_engine``) twice per object count, once with each backend, in
one process and one after the other, after a two-frame warm-up of each (ONNX Runtime
sessions, oneDNN primitives). Reported: frames/s, seconds in each of the three network calls
(the rest, memory read, aggregation, reading and writing, is the same code for both), the
agreement of the masks (as the benchmark measures it against the oracle), the export's time
and the graphs' sizes.

    python -m scripts.benchmark_onnx [--frames 60] [--objects 1 3] [--threads 2]
Results: ``<output>/benchmark_onnx.json`` (with the machine stamp) and ``benchmark_onnx.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

import torch

from inference_backend import OnnxRuntimeBackend, PyTorchBackend
from model.export import export_size
from scripts.benchmarking import REPO, StageClock, agreement, benchmark_network, make_benchmark_video, run_engine
from util import cli
from util.atomic import atomic_save
from util.log import get_logger
from util.stamp import describe, machine_stamp

logger = get_logger(__name__)

BACKEND_CALLS = ("key encoding", "decoding", "value encoding")  # the stages of the three network calls
WARM_UP_FRAMES = 2


def timed_run(backend, video: Path, out_dir: Path) -> dict:
    """Warm-up, then the whole video through the engine with ``backend``; frames/s and the
    seconds of each network call."""
    shutil.rmtree(out_dir, ignore_errors=True)
    (out_dir / "warm_up").mkdir(parents=True)
    run_engine(backend, video, out_dir / "warm_up", None, frames=WARM_UP_FRAMES)
    stages = StageClock(torch.device("cpu"))
    masks = out_dir / "masks"
    masks.mkdir()
    start = time.perf_counter()
    frames = run_engine(backend, video, masks, stages)
    seconds = time.perf_counter() - start
    return {
        "frames": frames,
        "seconds": round(seconds, 2),
        "fps": round(frames / seconds, 3),
        "stages": {stage: round(stages.seconds[stage], 2) for stage in BACKEND_CALLS},
    }


def parser() -> argparse.ArgumentParser:
    p = cli.argument_parser(__doc__)
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--objects", type=int, nargs="+", default=[1, 3])
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=854)
    p.add_argument("--threads", type=int, default=0, help="threads of both backends (0: torch's default)")
    p.add_argument("--output", type=Path, default=REPO / "output" / "benchmark_onnx")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    out = args.output
    network = benchmark_network(torch.device("cpu"))
    report = {
        "stamp": machine_stamp("cpu", threads),
        "load_average_before": os.getloadavg(),
        "weights": "synthetic (model/synthetic_weights.py)",
        "height": args.height,
        "width": args.width,
        "frames": args.frames,
        "settings": "top_k 50, mem_every 3 (defaults)",
        "rows": [],
    }
    started = time.perf_counter()
    entry = export_size(network, out / "onnx", args.height, args.width, model_name="synthetic weights")
    report["export"] = {
        "seconds": round(time.perf_counter() - started, 1),
        "size": [entry["height"], entry["width"]],
        "graph_mb": {
            name: round((out / "onnx" / file).stat().st_size / 2**20, 1) for name, file in entry["graphs"].items()
        },
    }
    logger.info(f"export: {report['export']}")
    for objects in args.objects:
        video = make_benchmark_video(out / "videos", args.frames, objects, args.height, args.width)
        row = {"objects": objects}
        backends = {"pytorch": PyTorchBackend(network), "onnxruntime": OnnxRuntimeBackend(out / "onnx", "cpu", threads)}
        for name, backend in backends.items():
            row[name] = timed_run(backend, video, out / "runs" / f"{video.name}_{name}")
            logger.info(f"{objects} object(s), {name}: {row[name]}")
        row["speedup"] = round(row["onnxruntime"]["fps"] / row["pytorch"]["fps"], 3)
        row["agreement"] = agreement(
            out / "runs" / f"{video.name}_onnxruntime" / "masks", out / "runs" / f"{video.name}_pytorch" / "masks"
        )
        logger.info(f"  agreement: {row['agreement']}")
        report["rows"].append(row)
    report["load_average_after"] = os.getloadavg()
    atomic_save(lambda tmp: tmp.write_text(json.dumps(report, indent=1)), out / "benchmark_onnx.json")
    atomic_save(lambda tmp: tmp.write_text(markdown(report)), out / "benchmark_onnx.md")
    logger.info(markdown(report))
    return report


def markdown(report: dict) -> str:
    """The report as the docs' table, with its stamp."""
    export = report["export"]
    lines = [
        f"{report['width']}x{report['height']} (padded {export['size'][1]}x{export['size'][0]}), "
        f"{report['frames']} frames, {report['settings']}; {describe(report['stamp'])}; load average "
        f"{report['load_average_before'][0]:.1f} before, {report['load_average_after'][0]:.1f} after.",
        "",
        "| objects | backend | frames/s | vs PyTorch | seconds: "
        + " / ".join(BACKEND_CALLS)
        + " | masks equal (not near-ties) | max probability difference |",
        "|---" * 7 + "|",
    ]
    for row in report["rows"]:
        a = row["agreement"]
        for name in ("pytorch", "onnxruntime"):
            r = row[name]
            same = (
                ("", "")
                if name == "pytorch"
                else (
                    f"{100 * a['pixel_agreement']:.3f}% ({100 * a['decided_pixel_agreement']:.3f}%)",
                    f"{a['max_prob_difference']:.1e}",
                )
            )
            lines.append(
                f"| {row['objects']} | {name} | {r['fps']} | "
                f"{row['speedup'] if name == 'onnxruntime' else 1}x | "
                + " / ".join(f"{r['stages'][s]:.1f}" for s in BACKEND_CALLS)
                + f" | {same[0]} | {same[1]} |"
            )
    lines += [
        "",
        f"Export: {export['seconds']} s; graphs "
        + ", ".join(f"{name} {mb} MB" for name, mb in export["graph_mb"].items())
        + ".",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    cli.run(main)
