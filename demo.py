"""The whole pipeline on data the project makes itself, on CPU, in minutes.

    python demo.py            # minutes on a 2-core CPU (docs/PERFORMANCE.md: stamped time and J&F)
    python demo.py --quick    # seconds; what the tests run

1. generates synthetic DAVIS / YouTube-VOS / static-image datasets into data/synthetic/,
2. trains from scratch a short stage 0 and a short stage 3 with the real train.py,
3. evaluates the result as eval_davis.py does (the same evaluate() and DAVIS sink) on the
   synthetic val split and prints J&F next to the copy-the-first-mask baseline,
4. writes an animated GIF per val video and a contact sheet PNG, and prints their paths.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import train
from datasets.eval_datasets import davis_videos
from datasets.synthetic import SyntheticConfig, generate
from evaluation.run import evaluate
from evaluation.sinks import DavisScores
from model.checkpoint import load_network
from util import cli
from util.atomic import atomic_save
from util.configuration import InferenceConfig, TrainConfig
from util.metrics import evaluate_folders
from util.overlay import contact_sheet, overlay, write_gif
from util.palette import image_files, read_image, read_mask, read_palette, write_indexed_png
from util.stamp import machine_stamp

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


def stage0_config(cfg: dict, root: Path, save_root: Path, device: str) -> TrainConfig:
    """The demo's stage 0 (static images, from scratch)."""
    return TrainConfig(
        stage=0,
        id="demo_s0",
        iterations=cfg["stage0_its"],
        steps=(cfg["stage0_its"],),
        **training_options(cfg, root, save_root, device),
    )


def main(argv: list[str] | None = None) -> dict:
    p = cli.argument_parser(__doc__)
    p.add_argument("--quick", action="store_true", help="the seconds-long version")
    p.add_argument("--device", default="cpu")
    p.add_argument("--root", default="data/synthetic", help="where the synthetic data goes")
    p.add_argument("--output", default="output/demo")
    p.add_argument("--keep", action="store_true", help="keep earlier demo outputs instead of starting fresh")
    args = p.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    start = time.time()
    stamp = machine_stamp(args.device)  # the code as it is now, before anything is written
    out = Path(args.output)
    if out.exists() and not args.keep:
        shutil.rmtree(out)
    root = Path(args.root) / ("quick" if args.quick else "full")
    print(f"[1/4] synthetic datasets -> {root}")
    generate(SyntheticConfig(root, seed=0, **cfg["data"]))
    print(f"[2/4] training: stage 0 ({cfg['stage0_its']} its), then stage 3 ({cfg['stage3_its']} its)")
    common = training_options(cfg, root, out / "saves", args.device)
    run0 = train.train(stage0_config(cfg, root, out / "saves", args.device))
    run3 = train.train(
        TrainConfig(
            stage=3,
            id="demo_s03",
            iterations=cfg["stage3_its"],
            steps=(cfg["stage3_its"],),
            load_network=str(run0 / f"{run0.name}_{cfg['stage0_its']}.pth"),
            **common,
        )
    )
    model = run3 / f"{run3.name}_{cfg['stage3_its']}.pth"
    print(f"[3/4] evaluating {model} on the synthetic DAVIS val split")
    masks = out / "masks"
    trainval = root / "DAVIS" / "2017" / "trainval"
    val, palette = davis_videos(trainval, trainval / "ImageSets" / "2017" / "val.txt")
    evaluate(
        load_network(model, args.device),
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
    print("[4/4] overlays")
    rows = []
    for video in videos:
        frames = image_files(trainval / "JPEGImages" / "480p" / video)
        palette = read_palette(masks / video / "00000.png")
        pictures = [overlay(read_image(f), read_mask(masks / video / f"{f.stem}.png"), palette) for f in frames]
        write_gif(pictures, out / "overlays" / f"{video}.gif")
        rows.append(pictures[:: max(1, len(pictures) // 6)])
    contact_sheet(rows, out / "overlays" / "contact_sheet.png")
    summary = {
        "model_jf": model_jf,
        "baseline_jf": baseline_jf,
        "seconds": round(time.time() - start, 1),
        "model": str(model),
        "overlays": sorted(str(p) for p in (out / "overlays").iterdir()),
        "quick": args.quick,
        "stamp": stamp,
    }
    atomic_save(lambda tmp: tmp.write_text(json.dumps(summary, indent=1)), out / "summary.json")
    print(f"\nJ&F-Mean on the synthetic val split: GSFM {model_jf:.4f}   copy-first-mask baseline {baseline_jf:.4f}")
    print(f"pictures: {out / 'overlays'} (one GIF per video, contact_sheet.png)")
    print(f"total time {summary['seconds']} s")
    return summary


if __name__ == "__main__":
    cli.run(main)
