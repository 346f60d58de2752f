"""The whole pipeline on data the project makes itself, on CPU, in minutes.

    python demo.py            # about 7 minutes on an idle 2-core CPU (docs/PERFORMANCE.md)
    python demo.py --quick    # about a minute; what the tests run
    python demo.py --resume   # continue the last run that was stopped (Ctrl-C, SIGTERM)

1. generates synthetic DAVIS / YouTube-VOS / static-image datasets into data/synthetic/,
2. trains from scratch a short stage 0 and a short stage 3 with the real train.py,
3. evaluates the result as eval_davis.py does (the same evaluate() and DAVIS sink) on the
   synthetic val split and prints J&F next to the copy-the-first-mask baseline,
4. writes an animated GIF per val video and a labelled contact sheet PNG.

Each run writes its own folder, <output>/<date>_<time>[_quick]/; earlier runs are kept.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import signal
import time
from pathlib import Path
from typing import Iterator

import train
from datasets.eval_datasets import davis_videos
from datasets.synthetic import SyntheticConfig, generate
from evaluation.run import evaluate
from evaluation.sinks import DavisScores
from model.checkpoint import load_network
from model.training_run import finished_weights
from util import cli
from util.atomic import atomic_save
from util.configuration import InferenceConfig, TrainConfig
from util.errors import ConfigError
from util.log import get_logger
from util.metrics import evaluate_folders
from util.overlay import contact_sheet, overlay, write_gif
from util.palette import image_files, read_image, read_mask, read_palette, write_indexed_png
from util.stamp import machine_stamp

logger = get_logger("demo")
RUN_FILE = "demo.json"  # a run's mode, written first: what --resume continues
SUMMARY_FILE = "summary.json"  # written last: the run is complete
# A stage-3 iteration against a stage-0 one at the demo's sizes, for the overall estimate:
# an allowance (not a measurement) for stage 3's second object and its video decoding.
STAGE3_COST = 1.3

# The demo's data is an easy case of the synthetic generator: one object per video, larger
# objects, a low-contrast background (docs/PERFORMANCE.md says why).
FULL = dict(
    data=dict(
        height=96,
        width=160,
        frames=14,
        train_videos=40,
        val_videos=6,
        static_images=20,
        max_objects=1,
        object_size=(0.2, 0.32),
        background_contrast=0.4,
    ),
    stage0_its=40,
    stage3_its=190,
    crop=64,
    batch=4,
)
QUICK = dict(
    data=dict(
        height=64,
        width=96,
        frames=6,
        train_videos=3,
        val_videos=2,
        static_images=5,
        max_objects=2,
        object_size=(0.2, 0.32),
        background_contrast=0.4,
    ),
    stage0_its=2,
    stage3_its=2,
    crop=48,
    batch=1,
)
MEANING = {
    True: "2 + 2 iterations from scratch have barely started learning: a J&F near 0, below the "
    "baseline, is expected; --quick shows that every step runs, not what training achieves",
    False: "40 + 190 iterations from scratch on easy synthetic videos (one large object each) are "
    "enough to track: GSFM should beat copying the first mask (docs/PERFORMANCE.md has the published run)",
}


def copy_first_mask_baseline(davis: Path, videos: list[str], out: Path) -> None:
    for video in videos:
        frames = image_files(davis / "JPEGImages" / "480p" / video)
        first = davis / "Annotations" / "480p" / video / "00000.png"
        labels, palette = read_mask(first), read_palette(first)
        for f in frames:
            write_indexed_png(labels, palette, out / video / f"{f.stem}.png")


def training_options(cfg: dict, root: Path, save_root: Path, device: str) -> dict:
    """The TrainConfig fields both stages share: the data under ``root``, the size of the
    run, and a short schedule: a higher learning rate and plain CE (no bootstrapping)
    throughout."""
    return dict(
        no_imagenet=True,
        device=device,
        batch_size=cfg["batch"],
        crop_size=cfg["crop"],
        num_workers=0,
        save_root=str(save_root),
        static_root=str(root / "static"),
        davis_root=str(root / "DAVIS"),
        yv_root=str(root / "YouTube"),
        davis_subset=str(root / "davis_subset.txt"),
        yv_subset=str(root / "yv_subset.txt"),
        lr=4e-4,
        start_warm=100000,
        end_warm=200000,
        log_text_interval=10,
    )


def stage_config(cfg: dict, stage: int, root: Path, save_root: Path, device: str, load: Path | None) -> TrainConfig:
    """The demo's stage 0 (static images, from scratch) or stage 3 (from stage 0's weights);
    ``--resume auto`` always: a stopped stage continues, a new one starts fresh."""
    its = cfg[f"stage{stage}_its"]
    return TrainConfig(
        stage=stage,
        id=f"demo_s{stage}",
        iterations=its,
        steps=(its,),
        resume="auto",
        load_network=str(load) if load is not None else None,
        **training_options(cfg, root, save_root, device),
    )


def run_folder(output: Path, quick: bool, resume: bool) -> Path:
    """A new folder for this run, or with ``resume`` the newest one that has not finished."""
    if resume:
        stopped = sorted(p.parent for p in output.glob(f"*/{RUN_FILE}") if not (p.parent / SUMMARY_FILE).exists())
        if not stopped:
            raise ConfigError(f"{output}: no stopped demo run to resume (run python demo.py to start one)")
        return stopped[-1]
    name = datetime.datetime.now().strftime("%Y-%m-%d_%H.%M.%S") + ("_quick" if quick else "")
    out, n = output / name, 1
    while out.exists():  # two runs in one second
        n += 1
        out = output / f"{name}_{n}"
    out.mkdir(parents=True)
    atomic_save(lambda tmp: tmp.write_text(json.dumps({"quick": quick})), out / RUN_FILE)
    return out


@contextlib.contextmanager
def stop_on_signals(out: Path) -> Iterator[None]:
    """SIGTERM and Ctrl-C outside training end the demo with one line too (training has
    its own handler, which writes a checkpoint first)."""

    def stop(signum: int, _frame) -> None:
        raise train.Interrupted(signum, f"stopped by {signal.Signals(signum).name}", continue_hint(out))

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def continue_hint(out: Path) -> str:
    return f"python demo.py --resume --output {out.parent} continues {out.name}"


def overall_eta(cfg: dict, seconds_per_stage0_it: float) -> str:
    left = cfg["stage3_its"] * seconds_per_stage0_it * STAGE3_COST
    return (
        f"overall: about {left / 60:.1f} min of training left, then the evaluation "
        f"(from this machine's {seconds_per_stage0_it:.2f} s per stage-0 iteration)"
    )


def main(argv: list[str] | None = None) -> dict:
    p = cli.argument_parser(__doc__)
    p.add_argument("--quick", action="store_true", help="the minute-long version")
    p.add_argument("--device", default="cpu")
    p.add_argument("--root", default="data/synthetic", help="where the synthetic data goes")
    p.add_argument("--output", default="output/demo", type=Path, help="each run writes a folder in it")
    p.add_argument("--resume", action="store_true", help="continue the newest stopped run in --output")
    args = p.parse_args(argv)
    out = run_folder(args.output, args.quick, args.resume)
    quick = json.loads((out / RUN_FILE).read_text())["quick"]
    if args.resume:
        logger.info(f"resuming {out} ({'--quick' if quick else 'the full demo'})")
    with stop_on_signals(out):
        return run(args, out, quick)


def run(args: argparse.Namespace, out: Path, quick: bool) -> dict:
    """Data, training, evaluation and pictures into the run folder ``out``."""
    cfg = QUICK if quick else FULL
    start = time.time()
    stamp = machine_stamp(args.device)  # the code as it is now, before anything is written
    root = Path(args.root) / ("quick" if quick else "full")
    logger.info(f"[1/4] synthetic datasets -> {root}")
    generate(SyntheticConfig(root, seed=0, **cfg["data"]))
    logger.info(
        f"[2/4] training from scratch: stage 0 ({cfg['stage0_its']} its), then stage 3 ({cfg['stage3_its']} its); "
        f"the overall time left is estimated after stage 0"
    )
    saves = out / "saves"
    weights = None
    for stage in (0, 3):
        config = stage_config(cfg, stage, root, saves, args.device, weights)
        weights = finished_weights(config.save_root, config.run_id, config.iterations)
        if weights is not None:
            logger.info(f"stage {stage}: finished earlier, {weights}")
            continue
        began = time.time()
        try:
            train.train(config)
        except train.Interrupted as e:
            raise train.Interrupted(e.signum, f"stage {stage}: {e.stopped}", continue_hint(out)) from None
        weights = finished_weights(config.save_root, config.run_id, config.iterations)
        if stage == 0:
            logger.info(overall_eta(cfg, (time.time() - began) / cfg["stage0_its"]))
    logger.info(f"[3/4] evaluating {weights} on the synthetic DAVIS val split")
    masks = out / "masks"
    trainval = root / "DAVIS" / "2017" / "trainval"
    val, palette = davis_videos(trainval, trainval / "ImageSets" / "2017" / "val.txt")
    evaluate(
        load_network(weights, args.device),
        val,
        masks,
        InferenceConfig(),
        DavisScores(palette),
        protocol={"benchmark": "davis2017", "split": "val"},
    )
    videos = [video.name for video in val]
    copy_first_mask_baseline(trainval, videos, out / "baseline")
    model_jf = json.loads((masks / "jf_results.json").read_text())["overall"]["J&F-Mean"]
    baseline_jf = evaluate_folders(out / "baseline", trainval / "Annotations" / "480p", videos)["overall"]["J&F-Mean"]
    logger.info("[4/4] overlays")
    rows, columns = [], []
    for video in videos:
        frames = image_files(trainval / "JPEGImages" / "480p" / video)
        palette = read_palette(masks / video / "00000.png")
        pictures = [overlay(read_image(f), read_mask(masks / video / f"{f.stem}.png"), palette) for f in frames]
        write_gif(pictures, out / "overlays" / f"{video}.gif")
        step = max(1, len(pictures) // 6)
        rows.append(pictures[::step])
        columns = [f"frame {t}" for t in range(0, len(pictures), step)]
    contact_sheet(rows, out / "overlays" / "contact_sheet.png", videos, columns)
    summary = {
        "model_jf": model_jf,
        "baseline_jf": baseline_jf,
        "seconds": round(time.time() - start, 1),
        "model": str(weights),
        "overlays": sorted(str(p) for p in (out / "overlays").iterdir()),
        "quick": quick,
        "stamp": stamp,
    }
    atomic_save(lambda tmp: tmp.write_text(json.dumps(summary, indent=1)), out / SUMMARY_FILE)
    logger.info(
        f"\nJ&F-Mean on the synthetic val split: GSFM {model_jf:.4f}   copy-first-mask baseline {baseline_jf:.4f}"
    )
    logger.info(f"  what it means: {MEANING[quick]}")
    if not quick and model_jf <= baseline_jf:
        logger.info("  here it did not: compare with the published run in docs/PERFORMANCE.md")
    logger.info(f"trained weights: {weights}")
    logger.info("  they know only the demo's synthetic shapes; real videos need real weights (README, model zoo)")
    logger.info(f"pictures: {out / 'overlays'} (one GIF per video; contact_sheet.png: rows are videos, columns frames)")
    logger.info(f"total time {summary['seconds']} s; this run's folder: {out}")
    return summary


if __name__ == "__main__":
    cli.run(main)
