"""Train GSFM: stage 0 (static images, single-object) then stage 3 (DAVIS + YouTube-VOS),
or stages 1 -> 2 with BL30K. Works as one process, under torchrun, or under the legacy
torch.distributed.launch.

    python train.py --stage 0 --id s0
    torchrun --nproc_per_node=8 train.py --stage 3 --id s03 --load_network saves/<run>/<run>_40000.pth
"""
from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from datasets.train_datasets import TrainData
from model.checkpoint import load_network_file
from model.imagenet import imagenet_state_dicts
from model.network import GSFM
from model.resnet import zero_init_residual_scales
from model.trainer import Trainer
from model.training_run import TrainingRun
from util import cli, distributed
from util.configuration import TrainConfig
from util.logger import Logger
from util.rng import seed_everything, set_rng_state


def build_network(config: TrainConfig, log) -> GSFM:
    """ImageNet backbones (or fresh ones with --no_imagenet), then --load_network's weights."""
    network = GSFM(config.single_object, imagenet=None if config.no_imagenet else imagenet_state_dicts())
    if config.no_imagenet and not config.load_network:
        zero_init_residual_scales(network)  # from scratch: see Trainer.scale_keys
    if config.load_network:
        log(f"{config.load_network}: {load_network_file(network, config.load_network, for_training=True).describe()}")
    return network


def main(argv: list[str] | None = None) -> Path | None:
    """Train; returns the run folder (None with --id NULL)."""
    config, launcher = TrainConfig.parse(argv)
    processes = distributed.init(config.device, launcher.local_rank)
    log = print if processes.is_main else (lambda *_: None)
    batch_size = config.batch_per_process(processes.world_size)
    log(f"stage {config.stage}: batch {batch_size} per process x {processes.world_size} processes = "
        f"{batch_size * processes.world_size} global; {config.iterations} iterations on {processes.device}")
    seed_everything(config.seed)
    torch.backends.cudnn.benchmark = config.benchmark

    trainer = Trainer(build_network(config, log), config, processes.device, distributed=processes.world_size > 1)
    run = TrainingRun(config, processes.is_main, log)
    it = run.start_iteration
    if run.resume is not None:
        trainer.load_state_dict(run.resume)
        log(f"resumed {run.folder} at iteration {it}")
    data = TrainData(config, batch_size, processes.world_size, processes.rank,
                     pin_memory=processes.device.type == "cuda")
    rng = run.rng_state_for(processes.rank)
    if rng is not None:
        set_rng_state(rng)
    elif run.resume is None and config.no_imagenet and not config.load_network:
        # from scratch: keys at a useful scale from the start (one batch, no workers)
        factor = trainer.scale_keys(next(iter(data.loader(0, num_workers=0))))
        log(f"training from scratch: key projection scaled by {factor:.3g} (unit-scale keys)")

    logger = Logger(run.folder / "logs" if (run.folder is not None and processes.is_main) else None)
    progress = tqdm(total=config.iterations, initial=it, disable=not processes.is_main, unit="it", dynamic_ncols=True)
    try:
        for epoch in range(it // data.batches_per_epoch, data.total_epochs):
            if data.set_curriculum(epoch) and processes.is_main:
                progress.write(f"epoch {epoch}: max skip {data.max_skip}")
            start = it % data.batches_per_epoch if epoch == it // data.batches_per_epoch else 0
            for batch in data.loader(epoch, start):
                out, losses = trainer.step(batch, it)
                it += 1
                progress.update(1)
                if it % config.log_text_interval == 0:
                    iou = (losses["hide_iou/i"] + 1) / (losses["hide_iou/u"] + 1)
                    logger.scalars({"train/total_loss": losses["total_loss"], "train/iou": iou,
                                    "train/p": losses["p"], "train/lr": trainer.scheduler.get_last_lr()[0]}, it)
                    progress.set_postfix(loss=f"{losses['total_loss'].item():.4f}", iou=f"{float(iou):.3f}")
                if it % config.log_image_interval == 0:
                    logger.images(batch, out, it)
                if it % config.save_network_interval == 0 or it % config.save_checkpoint_interval == 0:
                    run.save(trainer, it)
                if it >= config.iterations:
                    break
            if it >= config.iterations:
                break
        run.save(trainer, it, final=True)
    finally:
        progress.close()
        logger.close()
    return run.folder


if __name__ == "__main__":
    cli.run(main)
