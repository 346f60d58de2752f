"""One command for a GPU machine: runs the CUDA paths, measures them against the reference
formulation and writes one report (markdown + JSON).

    python3 -m scripts.gpu_check                     # = make gpu-check; report in output/gpu_check/
    python3 -m scripts.gpu_check --output "$OUT"     # the report where the machine hands files back

Within ``--budget`` seconds (default 450): 1. the environment (GPU, torch, the packages the
project imports); 2. the tests marked ``cuda``; 3. the benchmark at 854x480 (60 frames with
1 and 3 objects, float32 and --amp, --amp both in channels-last (as it runs) and in NCHW,
with the 3x3 convolution and the key encoder timed in each precision and layout; 200 frames
with 1 object, for memory; one training step at crop 384 and the reference's batch of 8);
4. a profile of a few frames of each implementation (what dominates); 5. the throughput of
1, 2, 4 and 8 videos at once over a generated 8-video benchmark, both ways (worker threads,
``--videos_per_device``, and the per-frame networks batched over the videos), with the GPU's
memory (``scripts.videos_per_device``); 6. the targets: >= 2x
the reference's frames/s in float32 with the same masks outside near-ties, >= 3x with --amp
(channels-last; NCHW and the agreement with float32 alongside), <= 1/3 of its peak memory at
200 frames, a training step >= 1.3x. A step that no longer fits the budget is skipped and
listed.
It uses the machine's python3 and packages; nothing is installed.
"""

from __future__ import annotations

import importlib
import json
import platform
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import torch

from util import cli
from util.atomic import atomic_save
from util.log import get_logger

logger = get_logger(__name__)

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("numpy", "PIL", "cv2", "tqdm", "torchvision", "tensorboard", "pytest", "scipy")  # runtime, then tests
TARGETS = {"float32 speed-up": 2.0, "amp speed-up": 3.0, "memory ratio": 1 / 3, "training speed-up": 1.3}


class Budget:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


def environment(device: str) -> dict:
    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": device,
        "tf32": {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32},
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        env.update(
            gpu=props.name,
            gpu_memory_gb=round(props.total_memory / 2**30, 1),
            multiprocessors=props.multi_processor_count,
        )
    missing = []
    for name in PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    env["missing_packages"] = missing
    return env


def cuda_tests(out: Path, timeout: float) -> dict:
    xml = out / "cuda_tests.xml"
    started = time.monotonic()
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-m",
                "cuda",
                "tests",
                "-p",
                "no:cacheprovider",
                f"--junitxml={xml}",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        tail = (result.stdout + result.stderr)[-4000:]
    except subprocess.TimeoutExpired as e:
        tail = f"timed out after {timeout:.0f} s\n" + str(e.stdout or "")[-3000:]
    summary = {"seconds": round(time.monotonic() - started, 1), "output_tail": tail, "failed_tests": []}
    if xml.is_file():
        suite = ElementTree.parse(xml).getroot()
        suite = suite.find("testsuite") if suite.tag == "testsuites" else suite
        for key in ("tests", "failures", "errors", "skipped"):
            summary[key] = int(suite.get(key, 0))
        for case in suite.iter("testcase"):
            problem = case.find("failure") if case.find("failure") is not None else case.find("error")
            if problem is not None:
                summary["failed_tests"].append(
                    {"test": case.get("name"), "message": (problem.get("message") or "")[:500]}
                )
    return summary


def measurement(module: str, out: Path, args: list[str], timeout: float) -> dict:
    """``python -m scripts.<module> --output out`` in its own process (each starts its own
    runs), then the JSON it wrote (``<module>.json``), or the error that stopped it."""
    try:
        subprocess.run(
            [sys.executable, "-m", f"scripts.{module}", "--output", str(out), *args],
            cwd=REPO,
            check=True,
            timeout=timeout,
        )
    except (subprocess.TimeoutExpired, subprocess.CalledProcessError) as e:
        return {"error": f"{type(e).__name__}: {e}"}
    return json.loads((out / f"{module}.json").read_text())


def profile(video_dir: Path, device: torch.device, frames: int) -> dict:
    """The most expensive operations over the first frames of each implementation."""
    from scripts.benchmarking import benchmark_network, run_engine, run_oracle

    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    activities = [torch.profiler.ProfilerActivity.CPU] + (
        [torch.profiler.ProfilerActivity.CUDA] if device.type == "cuda" else []
    )
    tables = {}
    for role, run in (("engine", run_engine), ("oracle", run_oracle)):
        network = benchmark_network(device)
        scratch = video_dir.parent.parent / "profile" / role
        scratch.mkdir(parents=True, exist_ok=True)
        with torch.inference_mode(), torch.profiler.profile(activities=activities) as prof:
            run(network, video_dir, scratch, None, frames=frames)
        tables[role] = prof.key_averages().table(sort_by=sort, row_limit=12)
    return tables


def verdicts(report: dict) -> dict:
    """Each target: the measured ratio and whether it is met."""
    results = {}
    for row in report.get("benchmark_short", {}).get("inference", []):
        key = f"{row['objects']} object{'s' if row['objects'] > 1 else ''}"
        if "oracle" not in row:
            continue
        engine = row["engine"]
        results[f"float32 speed-up, {key}"] = {
            "value": engine["speedup"],
            "target": TARGETS["float32 speed-up"],
            "met": engine["speedup"] >= TARGETS["float32 speed-up"] and engine["decided_pixel_agreement"] == 1.0,
            "masks equal outside near-ties": engine["decided_pixel_agreement"],
        }
        if "engine_amp" in row:
            amp = row["engine_amp"]
            results[f"amp speed-up, {key}"] = {
                "value": amp["speedup"],
                "target": TARGETS["amp speed-up"],
                "met": amp["speedup"] >= TARGETS["amp speed-up"],
            }
            if "engine_amp_nchw" in row:  # the layout's share of it
                results[f"amp speed-up, {key}"]["NCHW"] = row["engine_amp_nchw"]["speedup"]
            if "float32_agreement" in amp:
                results[f"amp speed-up, {key}"]["masks equal to float32 outside near-ties"] = amp["float32_agreement"][
                    "decided_pixel_agreement"
                ]
    for row in report.get("benchmark_long", {}).get("inference", []):
        if "oracle" in row:
            ratio = row["engine"]["memory_ratio"]
            results[f"memory ratio at {row['frames']} frames"] = {
                "value": ratio,
                "target": round(TARGETS["memory ratio"], 3),
                "met": ratio <= TARGETS["memory ratio"],
            }
    for row in report.get("benchmark_short", {}).get("training", []):
        if "speedup" in row:
            results[f"training speed-up, batch {row['batch']}"] = {
                "value": row["speedup"],
                "target": TARGETS["training speed-up"],
                "met": row["speedup"] >= TARGETS["training speed-up"],
            }
    return results


def markdown(report: dict) -> str:
    env = report["environment"]
    lines = [
        "# GPU check",
        "",
        f"{env.get('gpu', env['device'])}, torch {env['torch']} (CUDA {env['cuda']}), "
        f"Python {env['python']}; TF32 {env['tf32']}; missing packages: {env['missing_packages'] or 'none'}; "
        f"{report['seconds']:.0f} s in all.",
        "",
    ]
    tests = report.get("tests")
    if tests:
        lines += [
            "## Tests marked cuda",
            "",
            f"{tests.get('tests', '?')} tests, {tests.get('failures', '?')} failed, "
            f"{tests.get('errors', '?')} errors, {tests.get('skipped', '?')} skipped, {tests['seconds']} s",
            "",
        ]
        lines += [f"- {f['test']}: {f['message']}" for f in tests["failed_tests"]]
        lines += ["", "```", tests["output_tail"][-1500:], "```", ""]
    lines += ["## Targets", "", "| target | measured | wanted | met | alongside |", "|---|---|---|---|---|"]
    for name, result in report.get("targets", {}).items():
        wanted = f"<= {result['target']}" if "memory" in name else f">= {result['target']}"
        alongside = "; ".join(f"{k}: {v}" for k, v in result.items() if k not in ("value", "target", "met"))
        lines.append(f"| {name} | {result['value']} | {wanted} | {'yes' if result['met'] else 'NO'} | {alongside} |")
    for key, title in (("benchmark_short", "Benchmark"), ("benchmark_long", "Benchmark: memory on a long video")):
        bench = report.get(key)
        if bench:
            body = bench["error"] if "error" in bench else Path(bench["markdown"]).read_text()
            lines += ["", f"## {title}", "", body]
    several = report.get("videos_per_device")
    if several:
        lines += ["", "## Several videos at once (--videos_per_device)", ""]
        if "error" in several:
            lines.append(several["error"])
        else:
            lines += [
                f"{several['videos']} generated videos of {several['frames_per_video']} frames at "
                f"{several['size'][1]}x{several['size'][0]}, evaluated whole for each way and N: workers "
                "(--videos_per_device N) or batched (the per-frame networks run once on the N videos' frames).",
                "",
                "| way | N | frames/s | peak memory MB (GPU: max allocated) | masks equal to the first row's "
                "| share of pixels equal |",
                "|---|---|---|---|---|---|",
            ]
            # reports from before the batched way measured the workers alone, without the share
            lines += [
                f"| {r.get('mode', 'workers')} | {r['videos_per_device']} | {r['throughput_fps']} | "
                f"{r['peak_memory_mb']} | {'yes' if r['masks_equal_to_first'] else 'NO'} | "
                f"{r.get('pixels_equal_to_first', '')} |"
                for r in several["rows"]
            ]
    for role, table in report.get("profile", {}).items():
        lines += ["", f"## Profile: {role}", "", "```", table, "```"]
    if report["skipped"]:
        lines += ["", "## Skipped (out of time)", ""] + [f"- {s}" for s in report["skipped"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = cli.argument_parser(__doc__)
    parser.add_argument("--output", type=Path, default=REPO / "output" / "gpu_check")
    parser.add_argument("--budget", type=float, default=450, help="seconds for everything")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a dry run of this script on the CPU)")
    parser.add_argument("--skip_tests", action="store_true", help="no pytest step")
    args = parser.parse_args(argv)
    budget = Budget(args.budget)
    started = time.monotonic()
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    report: dict = {"environment": environment(args.device), "skipped": []}
    size = ["--height", "96", "--width", "160"] if args.quick else []  # 60 memory positions a frame: >= top-k 50
    frames = (4, 6) if args.quick else (60, 200)
    train = (
        ["--train", "--train_batch", "1", "--crop", "32", "--iterations", "1"]
        if args.quick
        else ["--train", "--train_batch", "8", "--crop", "384", "--iterations", "3"]
    )
    amp = [] if args.quick else ["--amp"]  # a CPU without bfloat16 instructions takes minutes per frame
    steps = [
        ("tests", lambda: None if args.skip_tests else cuda_tests(out, min(budget.left() * 0.4, 300))),
        (
            "benchmark_short",
            lambda: measurement(
                "benchmark",
                out / "benchmark_short",
                ["--device", args.device, "--frames", str(frames[0]), "--objects", "1", "3", *amp, *size, *train],
                budget.left(),
            ),
        ),
        (
            "benchmark_long",
            lambda: measurement(
                "benchmark",
                out / "benchmark_long",
                ["--device", args.device, "--frames", str(frames[1]), "--objects", "1", *size],
                budget.left(),
            ),
        ),
        (
            "videos_per_device",
            lambda: measurement(
                "videos_per_device",
                out / "videos_per_device",
                ["--device", args.device, "--modes", "workers", "batched"]
                + (
                    ["--height", "64", "--width", "96", "--frames", "4", "--videos", "4", "--counts", "1", "2"]
                    if args.quick
                    else []
                ),
                budget.left(),
            ),
        ),
        (
            "profile",
            lambda: profile(next((out / "benchmark_short" / "videos").glob("*_3obj")), torch.device(args.device), 4),
        ),
    ]
    for name, step in steps:
        if budget.left() < 20:
            report["skipped"].append(name)
            continue
        logger.info(f"[gpu check] {name} ({budget.left():.0f} s left)")
        try:
            result = step()
        except Exception as e:  # a broken step must not cost the rest of the report
            result = {"error": f"{type(e).__name__}: {e}"}
        if result is not None:
            report[name] = result
            if name.startswith("benchmark") and "error" not in result:
                result["markdown"] = str(out / name / "benchmark.md")
    report["targets"] = verdicts(report)
    report["seconds"] = round(time.monotonic() - started, 1)
    atomic_save(lambda tmp: tmp.write_text(json.dumps(report, indent=1, default=str)), out / "gpu_check.json")
    atomic_save(lambda tmp: tmp.write_text(markdown(report)), out / "gpu_check.md")
    logger.info(f"[gpu check] report: {out / 'gpu_check.md'} and {out / 'gpu_check.json'} ({report['seconds']:.0f} s)")
    return report


if __name__ == "__main__":
    cli.run(main)
