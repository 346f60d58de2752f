"""Fine-tuning on your own videos, measured: the demo's stage-0 network fine-tuned on a
generated folder of custom videos (``--videos``) with validation every few iterations
(``--val_videos``); writes the validation curve (J&F against iteration) as a PNG and the
numbers, with the machine stamp, as JSON (``results/fine_tuning_cpu.json``, which
``scripts.render_docs`` renders into docs/FINE_TUNING.md).

    python -m scripts.fine_tune_curve [--output docs] [--work output/fine_tune]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

import train
from datasets.synthetic import FINE_TUNING_EXAMPLE, CustomConfig, SyntheticConfig, generate, generate_custom
from demo import FULL, stage_config, training_options
from model.checkpoint import read_checkpoint
from util import cli
from util.atomic import atomic_save
from util.configuration import TrainConfig
from util.log import get_logger
from util.stamp import describe, machine_stamp

logger = get_logger(__name__)

CUSTOM = FINE_TUNING_EXAMPLE  # what python -m datasets.synthetic --custom writes
FINE_TUNE_ITERATIONS = 40
VAL_INTERVAL = 10


def stage0_network(work: Path) -> Path:
    """The demo's stage-0 network (trained here as ``demo.py`` trains it when absent)."""
    found = sorted((work / "saves").glob(f"*_demo_s0/*_demo_s0_{FULL['stage0_its']}.pth"))
    if found:
        return found[-1]
    root = generate(SyntheticConfig(work / "demo_data", seed=0, **FULL["data"]))
    folder = train.train(stage_config(FULL, 0, root, work / "saves", "cpu", None))
    return folder / f"{folder.name}_{FULL['stage0_its']}.pth"


def draw_curve(points: list[tuple[int, float]], path: Path, caption: str, size=(640, 400)) -> None:
    """J&F against iteration: axes, grid, the line and its points (PIL only)."""
    w, h = size
    left, right, top, bottom = 60, 20, 30, 70
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    max_it = max(it for it, _ in points)
    x = lambda it: left + (w - left - right) * it / max_it  # noqa: E731
    y = lambda v: top + (h - top - bottom) * (1 - v)  # noqa: E731
    for v in np.linspace(0, 1, 6):
        draw.line([(left, y(v)), (w - right, y(v))], fill=(225, 225, 225))
        draw.text((8, y(v) - 6), f"{v:.1f}", fill="black")
    for it in [0] + [it for it, _ in points]:
        draw.line([(x(it), top), (x(it), h - bottom)], fill=(235, 235, 235))
        draw.text((x(it) - 8, h - bottom + 6), str(it), fill="black")
    draw.rectangle([left, top, w - right, h - bottom], outline="black")
    draw.line([(x(it), y(v)) for it, v in points], fill=(31, 119, 180), width=2)
    for it, v in points:
        draw.ellipse([x(it) - 3, y(v) - 3, x(it) + 3, y(v) + 3], fill=(31, 119, 180))
    draw.text((left, 8), "validation J&F against training iteration", fill="black")
    draw.text((w // 2 - 25, h - bottom + 22), "iteration", fill="black")
    draw.text((left, h - 24), caption[:110], fill=(90, 90, 90))
    atomic_save(lambda tmp: image.save(tmp, format="PNG"), path)


def main(argv: list[str] | None = None) -> dict:
    p = cli.argument_parser(__doc__)
    p.add_argument(
        "--output",
        type=Path,
        default=Path("docs"),
        help="where the PNG goes, and the JSON (results/fine_tuning_cpu.json)",
    )
    p.add_argument("--work", type=Path, default=Path("output/fine_tune"), help="data and runs")
    p.add_argument("--threads", type=int, default=2, help="CPU threads")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.time()
    weights = stage0_network(args.work)
    custom = generate_custom(CustomConfig(args.work / "custom", **CUSTOM))
    # the demo's stage-3 schedule, on the custom videos instead of DAVIS + YouTube-VOS
    options = training_options(FULL, args.work / "demo_data", args.work / "saves", "cpu")
    run = train.train(
        TrainConfig(
            stage=3,
            id="fine_tune",
            iterations=FINE_TUNE_ITERATIONS,
            steps=(FINE_TUNE_ITERATIONS,),
            load_network=str(weights),
            videos=(f"{custom / 'train'}:repeat=2",),
            val_videos=str(custom / "val"),
            val_interval=VAL_INTERVAL,
            keep_checkpoint=True,  # its record of the best validation is read below
            **options,
        )
    )
    records = [json.loads(line) for line in (run / "logs" / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in records if "val/J&F" in r]
    train_seconds = sum(r["seconds_per_it"] * options["log_text_interval"] for r in records if "seconds_per_it" in r)
    val_seconds = sum(r["val/seconds"] for r in val)
    stamp = machine_stamp("cpu", args.threads)
    results = {
        "curve": [
            {"it": r["it"], "J&F": r["val/J&F"], "J": r["val/J"], "F": r["val/F"], "seconds": r["val/seconds"]}
            for r in val
        ],
        "train_seconds": round(train_seconds, 1),
        "validation_seconds": round(val_seconds, 1),
        "validation_share": round(val_seconds / (train_seconds + val_seconds), 3),
        "iterations": FINE_TUNE_ITERATIONS,
        "val_interval": VAL_INTERVAL,
        "val_videos": CUSTOM["val_videos"],
        "val_frames": CUSTOM["val_frames"],
        "frame_size": [CUSTOM["height"], CUSTOM["width"]],
        "stage0_weights": str(weights),
        "best": read_checkpoint(run / f"{run.name}_checkpoint.pth").get("best"),
        "total_seconds": round(time.time() - start, 1),
        "stamp": stamp,
    }
    atomic_save(
        lambda tmp: tmp.write_text(json.dumps(results, indent=1)), args.output / "results" / "fine_tuning_cpu.json"
    )
    draw_curve([(c["it"], c["J&F"]) for c in results["curve"]], args.output / "fine_tuning_curve.png", describe(stamp))
    logger.info(json.dumps({k: v for k, v in results.items() if k != "stamp"}, indent=1))
    return results


if __name__ == "__main__":
    cli.run(main)
