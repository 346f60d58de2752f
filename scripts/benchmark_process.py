"""Whole-process speed on a CPU: ``eval_davis.py`` as a user times it, against the
reference's float32 run of the same video.

The benchmark's synthetic video (``scripts.benchmark.make_benchmark_video``: deterministic,
``--objects`` objects, JPEG frames, the first frame annotated; 854x480 and 30 frames by
default) is laid out as a DAVIS 2017 test-dev set with one video, and its deterministic
weights are saved as a weights file. Each run is its own process, timed from outside from
its start to its exit (interpreter start-up, imports, reading the weights, the video, the
masks written):
- ``reference``: the reference's formulation (``reference/inference.py`` through
  ``scripts.benchmark.run_oracle``: whole video in memory, all objects decoded together,
  the boundary head computed), float32;
- ``pytorch``: ``eval_davis.py`` with its defaults;
- ``onnxruntime, cold``: ``eval_davis.py --backend onnxruntime`` with an empty export cache
  (the export's seconds are reported apart);
- ``onnxruntime, warm``: the same again, the cache now holding the graphs;
- ``pytorch --amp`` (where the CPU has bfloat16 instructions; ``--amp on|off`` decides);
- ``pytorch --winograd`` (where PyTorch has NNPACK): Winograd 3x3 convolutions, float32.
Every run gets the same ``--threads``. Reported: seconds, the speed-up over the reference,
and the share of mask pixels equal to the reference's. The report is saved after each run.

    python -m scripts.benchmark_process [--frames 30] [--objects 2] [--threads 2] [--amp auto|on|off] [--runs NAME ...]
Results: ``<output>/benchmark_process.json`` (with the machine stamp and the load average
before and after); docs/PERFORMANCE.md renders a copy in docs/results/ (scripts.render_docs).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from model.winograd import nnpack_available
from scripts.benchmarking import REPO, benchmark_network, make_benchmark_video
from util import cli
from util.atomic import atomic_save
from util.log import get_logger
from util.palette import read_mask
from util.precision import cpu_bfloat16_instructions
from util.stamp import describe, machine_stamp

logger = get_logger(__name__)
VIDEO = "bench"  # the one video of the generated test-dev set
FOLDERS = {
    "reference": "reference",
    "pytorch": "pytorch",
    "onnxruntime, cold cache": "onnx_cold",
    "onnxruntime, warm cache": "onnx_warm",
    "pytorch --amp": "amp",
    "pytorch --winograd": "winograd",
}
EXPORTED = re.compile(r"exported the ONNX graphs of \S+ frames into .* in (\d+) s")


def parser() -> argparse.ArgumentParser:
    p = cli.argument_parser(__doc__)
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--objects", type=int, default=2)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=854)
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="CPU threads of every run")
    p.add_argument(
        "--amp",
        choices=("auto", "on", "off"),
        default="auto",
        help="a run with --amp (auto: where the CPU has bfloat16)",
    )
    p.add_argument(
        "--runs",
        nargs="+",
        choices=[name for name in FOLDERS if name != "reference"],
        help="only these runs (and the reference's)",
    )
    p.add_argument("--output", type=Path, default=REPO / "output" / "benchmark_process")
    p.add_argument("--reference_run", nargs=3, type=Path, metavar=("VIDEO", "MASKS", "WEIGHTS"), help=argparse.SUPPRESS)
    return p


def reference_run(video: Path, masks: Path, weights: Path, threads: int) -> None:
    """The reference's run (a process of its own): its weights file read, the video segmented."""
    from model.network import GSFM
    from scripts.benchmarking import run_oracle

    torch.set_num_threads(threads)
    network = GSFM()
    network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    masks.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode():
        run_oracle(network.eval(), video, masks, None)


def davis_layout(video: Path, root: Path) -> Path:
    """The generated video as a DAVIS 2017 test-dev set (links to its files); the set's root."""
    split = root / "test-dev"
    frames = split / "JPEGImages" / "480p" / VIDEO
    if not frames.is_dir():
        frames.mkdir(parents=True)
        for jpg in sorted((video / "frames").glob("*.jpg")):
            (frames / jpg.name).symlink_to(jpg.resolve())
        (split / "Annotations" / "480p" / VIDEO).mkdir(parents=True)
        shutil.copy(video / "first.png", split / "Annotations" / "480p" / VIDEO / "00000.png")
        (split / "ImageSets" / "2017").mkdir(parents=True)
        (split / "ImageSets" / "2017" / "test-dev.txt").write_text(f"{VIDEO}\n")
    return root


def timed(command: list[str]) -> tuple[float, str]:
    """Seconds from the process's start to its exit, and what it printed."""
    logger.info(" ".join(command))
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{command[1]} failed ({result.returncode}): {result.stderr[-2000:]}")
    return seconds, result.stdout + result.stderr


def pixel_agreement(masks: Path, reference: Path) -> float:
    equal = total = 0
    for path in sorted(reference.glob("*.png")):
        a, b = read_mask(masks / path.name), read_mask(path)
        equal += int((a == b).sum())
        total += a.size
    return equal / total


def measure(args: argparse.Namespace, path: Path) -> dict:
    """Every run, the report saved at ``path`` after each (``complete`` false until the last)."""
    out = args.output
    video = make_benchmark_video(out / "videos", args.frames, args.objects, args.height, args.width)
    davis = davis_layout(video, out / "davis" / video.name)
    weights = out / "weights.pth"
    if not weights.is_file():
        torch.save(benchmark_network(torch.device("cpu")).state_dict(), weights)
    shutil.rmtree(out / "runs", ignore_errors=True)
    threads = ["--threads", str(args.threads)]
    eval_davis = [sys.executable, "eval_davis.py", "--model", str(weights), "--davis_path", str(davis)]
    eval_davis += ["--split", "testdev", "--device", "cpu", *threads]
    onnx = ["--backend", "onnxruntime", "--onnx_cache", str(out / "runs" / "onnx_cache")]
    masks = {name: out / "runs" / folder for name, folder in FOLDERS.items()}
    runs = {
        "reference": [sys.executable, "-m", "scripts.benchmark_process", *threads, "--reference_run"]
        + [str(video), str(masks["reference"]), str(weights)],
        "pytorch": [*eval_davis],
        "onnxruntime, cold cache": [*eval_davis, *onnx],
        "onnxruntime, warm cache": [*eval_davis, *onnx],
    }
    if args.amp == "on" or (args.amp == "auto" and cpu_bfloat16_instructions()):
        runs["pytorch --amp"] = [*eval_davis, "--amp"]
    if nnpack_available():
        runs["pytorch --winograd"] = [*eval_davis, "--winograd"]
    if args.runs:
        runs = {name: command for name, command in runs.items() if name == "reference" or name in args.runs}
    for name in runs:
        if name != "reference":
            runs[name] += ["--output", str(masks[name])]
            masks[name] = masks[name] / VIDEO
    import onnxruntime

    report = {
        "stamp": machine_stamp("cpu", args.threads),
        "onnxruntime": onnxruntime.__version__,
        "load_average_before": os.getloadavg(),
        "weights": "synthetic (model/synthetic_weights.py)",
        "size": [args.height, args.width],
        "frames": args.frames,
        "objects": args.objects,
        "settings": "top_k 50, mem_every 3 (defaults)",
        "rows": [],
        "complete": False,
    }
    for name, command in runs.items():
        seconds, printed = timed(command)
        row = {"run": name, "seconds": round(seconds, 1)}
        exported = EXPORTED.search(printed)
        if exported:
            row["export_seconds"] = int(exported[1])
        row["speedup"] = round(report["rows"][0]["seconds"] / seconds if report["rows"] else 1.0, 3)
        row["pixel_agreement"] = pixel_agreement(masks[name], masks["reference"])
        logger.info(f"{name}: {row}")
        report["rows"].append(row)
        report["load_average_after"] = os.getloadavg()
        report["complete"] = len(report["rows"]) == len(runs)
        atomic_save(lambda tmp: tmp.write_text(json.dumps(report, indent=1)), path)
    return report


def markdown(report: dict) -> str:
    """The report as the docs' table, with its stamp."""
    height, width = report["size"]
    lines = [
        f"Measured on {describe(report['stamp'])}, onnxruntime {report['onnxruntime']}; {width}x{height}, "
        f"{report['frames']} frames, {report['objects']} objects, {report['settings']}; load average "
        f"{report['load_average_before'][0]:.1f} before, {report['load_average_after'][0]:.1f} after"
        + ("." if report["complete"] else "; the runs after the last row did not finish."),
        "",
        "| process | seconds | vs the reference | mask pixels equal to the reference's |",
        "|---|---|---|---|",
    ]
    for row in report["rows"]:
        export = f" (export {row['export_seconds']} s)" if "export_seconds" in row else ""
        lines.append(
            f"| {row['run']} | {row['seconds']}{export} | {row['speedup']}x | {100 * row['pixel_agreement']:.3f}% |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict | None:
    args = parser().parse_args(argv)
    if args.reference_run:
        reference_run(*args.reference_run, args.threads)
        return None
    path = args.output / "benchmark_process.json"
    report = measure(args, path)
    logger.info(markdown(report))
    logger.info(f"results: {path}")
    return report


if __name__ == "__main__":
    # the reference's run with the C library's allocator as it is by default, as the reference's code runs
    cli.run(main, keep_freed_memory="--reference_run" not in sys.argv)
