"""Train GSFM: stage 0 (static images, single-object) then stage 3 (DAVIS + YouTube-VOS),
or stages 1 -> 2 with BL30K. Works as one process, under torchrun, or under the legacy
torch.distributed.launch.

    python train.py --stage 0 --id s0
    torchrun --nproc_per_node=8 train.py --stage 3 --id s03 --load_network saves/<run>/<run>_40000.pth
"""
from __future__ import annotations

import datetime
import math
import random
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from datasets.train_datasets import ResumableSampler, build_train_set
from model.checkpoint import (CheckpointError, find_latest_checkpoint, find_resume_checkpoint, load_network_file,
                              read_checkpoint, save_file)
from model.imagenet import imagenet_state_dicts
from model.network import GSFM
from model.resnet import zero_init_residual_scales
from model.trainer import NonFiniteLossError, Trainer
from util import configuration, distributed
from util.atomic import check_writable
from util.logger import Logger


def rng_state() -> dict:
    """This process's generator states as plain Python values (gatherable across ranks and
    loadable with torch.load(weights_only=True))."""
    np_state = np.random.get_state()
    return {"torch": torch.random.get_rng_state().tolist(),
            "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]], "python": random.getstate(),
            "cuda": [s.tolist() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    torch.random.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def skip_for_epoch(stage: int, epoch: int, total_epochs: int) -> int:
    """The max-skip curriculum: 5, then 10/15/20/25 at 10/20/30/40% of the epochs, back to 5."""
    skip = configuration.INITIAL_MAX_SKIP
    if stage == 0:
        return skip
    starts = [round(total_epochs * f) for f in configuration.SKIP_FRACTIONS[stage]]
    for value, start in zip(configuration.MAX_SKIP_VALUES, starts):
        if epoch >= start:
            skip = value
    return skip


def resolve_batch_size(config: dict, world_size: int) -> int:
    if config["global_batch_size"] is not None:
        if config["global_batch_size"] % world_size:
            raise SystemExit(f"error: --global_batch_size {config['global_batch_size']} does not divide over "
                             f"{world_size} processes")
        return config["global_batch_size"] // world_size
    return config["batch_size"]


def main(argv: list[str] | None = None) -> Path | None:
    config = configuration.parse(argv)
    rank, local_rank, world_size, device = distributed.init(config["local_rank"], config["device"])
    main_process = distributed.is_main(rank)
    batch_size = resolve_batch_size(config, world_size)
    config["batch_size"] = batch_size
    if main_process:
        print(f"stage {config['stage']}: batch {batch_size} per process x {world_size} processes = "
              f"{batch_size * world_size} global; {config['iterations']} iterations on {device}")
    torch.manual_seed(config["seed"])
    np.random.seed(config["seed"])
    random.seed(config["seed"])
    torch.backends.cudnn.benchmark = config["benchmark"]

    network = GSFM(config["single_object"], imagenet=None if config["no_imagenet"] else imagenet_state_dicts())
    from_scratch = config["no_imagenet"] and not config["load_network"]
    if from_scratch:
        zero_init_residual_scales(network)
    if config["load_network"]:
        report = load_network_file(network, config["load_network"], for_training=True)
        if main_process:
            print(f"{config['load_network']}: {report.describe()}")
    trainer = Trainer(network, config, device, distributed=world_size > 1)

    it, run_dir, resume = 0, None, None
    if config["resume"] == "auto":
        if config["id"] == "NULL":
            raise SystemExit("error: --resume auto needs the --id of the run to continue")
        found = find_resume_checkpoint(config["save_root"], config["id"])
        if found is not None:
            config["load_model"] = str(found)
        elif main_process:
            print(f"--resume auto: no checkpoint of run '{config['id']}' under {config['save_root']}; starting fresh")
    if config["load_model"]:
        path = Path(config["load_model"])
        resume_path = find_latest_checkpoint(path) if path.is_dir() else path
        if resume_path is None:
            raise CheckpointError(f"{path}: no readable training checkpoint in this folder")
        resume = read_checkpoint(resume_path)
        saved = resume.get("config", {})
        if saved.get("single_object") != config["single_object"]:
            raise CheckpointError(f"{resume_path}: a stage {saved.get('stage')} checkpoint cannot resume stage "
                                  f"{config['stage']} (single- vs multi-object network); use --load_network")
        trainer.load_state_dict(resume)
        it = int(resume["it"])
        run_dir = resume_path.parent
        if main_process:
            print(f"resumed {resume_path} at iteration {it}")
    if run_dir is None and config["id"] != "NULL":
        long_id = f"{datetime.datetime.now().strftime('%b%d_%H.%M.%S')}_{config['id']}"
        run_dir = Path(config["save_root"]) / long_id
    run_name = run_dir.name if run_dir is not None else None
    if run_dir is not None and main_process:
        check_writable(run_dir)  # fail before training, not at the first checkpoint
    logger = Logger(run_dir / "logs" if (run_dir is not None and main_process) else None)

    saved = {"weights": -1, "checkpoint": -1}  # the iteration each was last written at

    def save(final: bool = False) -> None:
        # every rank's generators, and a checksum of its weights (replicas must agree)
        gathered = distributed.all_gather_object(
            (rng_state(), float(sum(p.detach().double().sum() for p in network.parameters()))))
        if not main_process or run_dir is None:
            return
        if (final or it % config["save_network_interval"] == 0) and saved["weights"] != it:
            save_file(network.state_dict(), run_dir / f"{run_name}_{it}.pth")
            saved["weights"] = it
        if (final or it % config["save_checkpoint_interval"] == 0) and saved["checkpoint"] != it:
            current = run_dir / f"{run_name}_checkpoint.pth"
            if current.exists():  # keep one older checkpoint to fall back to
                current.replace(run_dir / f"{run_name}_checkpoint_prev.pth")
            save_file({**trainer.state_dict(), "it": it, "config": config, "rng": [g[0] for g in gathered],
                       "rank_weight_sums": [g[1] for g in gathered]}, current)
            saved["checkpoint"] = it

    skip = skip_for_epoch(config["stage"], 0, 1)
    dataset = build_train_set(config, skip)
    sampler = ResumableSampler(len(dataset), world_size, rank, config["seed"])
    batches_per_epoch = len(sampler) // batch_size
    if batches_per_epoch == 0:
        raise SystemExit(f"error: {len(dataset)} training samples over {world_size} processes give no full batch "
                         f"of {batch_size}")
    total_epochs = math.ceil(config["iterations"] / batches_per_epoch)

    def epoch_loader(epoch: int, start: int = 0, num_workers: int = config["num_workers"]) -> DataLoader:
        """The batches of ``epoch`` from sample ``start`` on (the same on a resume)."""
        dataset.set_epoch(config["seed"], epoch)
        sampler.set_epoch(epoch, start=start)
        return DataLoader(dataset, batch_size, sampler=sampler, num_workers=num_workers, drop_last=True,
                          pin_memory=device.type == "cuda")

    if resume is not None:
        set_rng_state(resume["rng"][rank] if rank < len(resume["rng"]) else resume["rng"][0])
    elif from_scratch:  # keys at a useful scale from the start (see Trainer.scale_keys)
        factor = trainer.scale_keys(next(iter(epoch_loader(0, num_workers=0))))  # no workers for one batch
        if main_process:
            print(f"training from scratch: key projection scaled by {factor:.3g} (unit-scale keys)")
    progress = tqdm(total=config["iterations"], initial=it, disable=not main_process, unit="it", dynamic_ncols=True)
    try:
        for epoch in range(it // batches_per_epoch, total_epochs):
            new_skip = skip_for_epoch(config["stage"], epoch, total_epochs)
            if new_skip != skip:
                skip = new_skip
                dataset = build_train_set(config, skip)
                if main_process:
                    progress.write(f"epoch {epoch}: max skip {skip}")
            start = (it % batches_per_epoch) * batch_size if epoch == it // batches_per_epoch else 0
            for data in epoch_loader(epoch, start):
                out, losses = trainer.step(data, it)
                it += 1
                progress.update(1)
                if it % config["log_text_interval"] == 0:
                    iou = (losses["hide_iou/i"] + 1) / (losses["hide_iou/u"] + 1)
                    logger.scalars({"train/total_loss": losses["total_loss"], "train/iou": iou,
                                    "train/p": losses["p"], "train/lr": trainer.scheduler.get_last_lr()[0]}, it)
                    progress.set_postfix(loss=f"{losses['total_loss'].item():.4f}", iou=f"{float(iou):.3f}")
                if it % config["log_image_interval"] == 0:
                    logger.images(data, out, it)
                if it % config["save_network_interval"] == 0 or it % config["save_checkpoint_interval"] == 0:
                    save()
                if it >= config["iterations"]:
                    break
            if it >= config["iterations"]:
                break
        save(final=True)
    except NonFiniteLossError as e:
        sys.exit(f"error: {e}")
    finally:
        progress.close()
        logger.close()
        distributed.cleanup()
    return run_dir


if __name__ == "__main__":
    try:
        main()
    except (CheckpointError, OSError) as e:  # OSError: missing files, disk full
        sys.exit(f"error: {e}")
