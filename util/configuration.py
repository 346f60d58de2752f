"""Training configuration: the reference's arguments and per-stage presets."""
from __future__ import annotations

import argparse

# stage -> the reference's defaults (REFERENCE.md section 10)
STAGE_PRESETS = {
    0: dict(lr=4e-5, batch_size=16, iterations=40000, steps=[20000], start_warm=3000, end_warm=10000,
            single_object=True),
    1: dict(lr=6e-5, batch_size=8, iterations=65000, steps=[50000], start_warm=5000, end_warm=20000,
            single_object=False),
    2: dict(lr=6e-5, batch_size=8, iterations=40000, steps=[30000], start_warm=3000, end_warm=10000,
            single_object=False),
    3: dict(lr=4e-5, batch_size=8, iterations=30000, steps=[25000], start_warm=3000, end_warm=15000,
            single_object=False),
}
# max-skip curriculum: values and the fractions of the total epochs where each starts
MAX_SKIP_VALUES = [10, 15, 20, 25, 5]
SKIP_FRACTIONS = {1: [0.1, 0.2, 0.3, 0.4, 0.8, 1.0], 2: [0.1, 0.2, 0.3, 0.4, 0.9, 1.0],
                  3: [0.1, 0.2, 0.3, 0.4, 0.9, 1.0]}
INITIAL_MAX_SKIP = 5
SEED = 14159265


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train GSFM (stage presets as the reference; every value overridable)")
    p.add_argument("--stage", type=int, default=0, choices=sorted(STAGE_PRESETS))
    p.add_argument("--id", default="NULL", help="experiment name; NULL disables TensorBoard and saving")
    p.add_argument("--benchmark", action="store_true", help="cudnn.benchmark")
    p.add_argument("--no_amp", action="store_true", help="train in float32 (AMP is on by default on CUDA)")
    p.add_argument("--static_root", default="data/static")
    p.add_argument("--bl_root", default="data/BL30K")
    p.add_argument("--yv_root", default="data/YouTube")
    p.add_argument("--davis_root", default="data/DAVIS")
    p.add_argument("--davis_subset", default="util/davis_subset.txt", help="video list file, or 'all'")
    p.add_argument("--yv_subset", default="util/yv_subset.txt", help="video list file, or 'all'")
    p.add_argument("--load_network", help="network weights to start from (4->5 channel extension done)")
    p.add_argument("--load_model", help="full training checkpoint (or a run folder) to resume")
    p.add_argument("--resume", choices=["auto"], help="auto: resume from the newest readable full checkpoint of "
                   "the runs with this --id under --save_root (start fresh when there is none)")
    p.add_argument("--no_imagenet", action="store_true", help="fresh backbones instead of ImageNet weights")
    p.add_argument("-b", "--batch_size", type=int, help="per process (the reference's meaning)")
    p.add_argument("--global_batch_size", type=int, help="total over all processes (divided among them)")
    p.add_argument("-i", "--iterations", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--steps", type=int, nargs="*")
    p.add_argument("--gamma", type=float, default=0.1)
    p.add_argument("--weight_decay", type=float, default=1e-7)
    p.add_argument("--start_warm", type=int)
    p.add_argument("--end_warm", type=int)
    p.add_argument("--crop_size", type=int, default=384)
    p.add_argument("--num_workers", type=int, default=8)
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--save_network_interval", type=int, default=10000)
    p.add_argument("--save_checkpoint_interval", type=int, default=10000)
    p.add_argument("--log_text_interval", type=int, default=100)
    p.add_argument("--log_image_interval", type=int, default=800)
    p.add_argument("--save_root", default="saves")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--local_rank", "--local-rank", type=int, default=None,
                   help="set by the legacy torch.distributed.launch")
    return p


def parse(argv: list[str] | None = None) -> dict:
    args = parser().parse_args(argv)
    config = dict(vars(args))
    for key, value in STAGE_PRESETS[args.stage].items():
        if config.get(key) is None:
            config[key] = value
    config["amp"] = not args.no_amp
    return config
