"""Train GSFM: stage 0 (static images, single-object) then stage 3 (DAVIS + YouTube-VOS),
or stages 1 -> 2 with BL30K. Works as one process, under torchrun, or under the legacy
torch.distributed.launch.

    python train.py --stage 0 --id s0
    python train.py --stage 3 --id mine --load_network saves/gsfm.pth --videos my_videos:repeat=5 --val_videos my_val
    torchrun --nproc_per_node=8 train.py --stage 3 --id s03 --load_network saves/<run>/<run>_40000.pth
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import torch
from tqdm import tqdm

from datasets.train_datasets import TrainData, describe_train_set
from evaluation.validation import Validator
from model.checkpoint import load_network_file
from model.imagenet import imagenet_state_dicts
from model.network import GSFM
from model.resnet import zero_init_residual_scales
from model.trainer import NonFiniteLossError, Trainer
from model.training_run import TrainingRun
from model.zoo import resolve_model
from util import cli, distributed
from util.configuration import InferenceConfig, TrainConfig
from util.errors import GSFMError
from util.log import get_logger
from util.logger import IntervalMeans, Logger
from util.rng import seed_everything, set_rng_state
from util.signals import StopRequests

console = get_logger(__name__)


def build_network(config: TrainConfig, resumed: bool, processes: distributed.Processes, log) -> GSFM:
    """ImageNet backbones (or fresh ones with --no_imagenet), then --load_network's weights.
    ImageNet weights are not read at all when a resume or --load_network replaces them."""
    imagenet = None
    if not (config.no_imagenet or config.load_network or resumed):
        if not processes.is_main:  # the main process downloads them once, the others read its copy
            distributed.barrier()
        imagenet = imagenet_state_dicts()
        if processes.is_main:
            distributed.barrier()
    network = GSFM(config.single_object, imagenet=imagenet)
    if config.no_imagenet and not config.load_network:
        zero_init_residual_scales(network)  # from scratch: see Trainer.scale_keys
    if config.load_network:
        weights = resolve_model(config.load_network)
        report = load_network_file(network, weights, for_training=True, stcn_init=config.stcn_init)
        log(f"{config.load_network}: {report.describe()}")
    return network


class Interrupted(GSFMError):
    """Stopped by SIGTERM/SIGINT after writing a checkpoint; the exit status is 128 + signal."""

    def __init__(self, signum: int, message: str, how_to_continue: str = ""):
        super().__init__(message + (f"; {how_to_continue}" if how_to_continue else ""))
        self.exit_code = 128 + signum
        self.signum, self.stopped = signum, message  # what a caller with its own way to continue reports


def train(config: TrainConfig, local_rank: int | None = None) -> Path | None:
    """Train as ``config`` says; returns the run folder (None with --id NULL).
    ``local_rank``: the legacy torch.distributed.launch's --local_rank (torchrun sets
    LOCAL_RANK instead)."""
    processes = distributed.init(config.device, local_rank)
    log = console.info if processes.is_main else (lambda *_: None)
    batch_size = config.batch_per_process(processes.world_size)
    log(
        f"stage {config.stage}: batch {batch_size} per process x {processes.world_size} processes = "
        f"{batch_size * processes.world_size} global; {config.iterations} iterations on {processes.device} "
        f"({processes.backend or 'no process group'})"
    )
    seed_everything(config.seed)
    torch.backends.cudnn.benchmark = config.benchmark

    run = TrainingRun(config, processes.is_main, log, processes.world_size)
    log(run.describe())
    trainer = Trainer(
        build_network(config, run.resume is not None, processes, log),
        config,
        processes.device,
        distributed=processes.backend is not None,
    )
    it = run.start_iteration
    if run.resume is not None:
        trainer.load_state_dict(run.resume)
        log(f"resumed {run.folder} at iteration {it}")
    data = TrainData(
        config, batch_size, processes.world_size, processes.rank, pin_memory=processes.device.type == "cuda"
    )
    for line in describe_train_set(data.dataset):
        log(line)
    validator = None
    if config.val_videos is not None:
        validator = Validator(config.val_videos, InferenceConfig(max_size=config.val_max_size), processes)
        log(
            f"validation: {len(validator.videos)} videos of {config.val_videos} every {config.val_interval} "
            f"iterations and at the end" + (f"; best so far {run.best}" if run.best else "")
        )
    rng = run.rng_state_for(processes.rank)
    if rng is not None:
        set_rng_state(rng)
    elif run.resume is None and config.no_imagenet and not config.load_network:
        # from scratch: keys at a useful scale from the start (one batch, no workers)
        factor = trainer.scale_keys(next(iter(data.loader(0, num_workers=0))))
        log(f"training from scratch: key projection scaled by {factor:.3g} (unit-scale keys)")

    logger = Logger(run.folder / "logs" if run.folder is not None else None, config.iterations, processes.is_main)
    try:
        with StopRequests(processes.device) as stop:
            train_iterations(trainer, run, data, logger, stop, it, processes, validator)
    finally:
        logger.close()
    return run.folder


def main(argv: list[str] | None = None) -> Path | None:
    """The command line: parse, then ``train``."""
    config, launcher = TrainConfig.parse(argv)
    return train(config, launcher.local_rank)


def train_iterations(
    trainer: Trainer,
    run: TrainingRun,
    data: TrainData,
    logger: Logger,
    stop: StopRequests,
    it: int,
    processes: distributed.Processes,
    validator: Validator | None = None,
) -> None:
    """The loop: from iteration ``it`` to the configured end, epoch by epoch, logging,
    validating and saving at their intervals; a stop signal ends it with a checkpoint
    (``Interrupted``), another exception after ``--crash_save_after`` iterations too."""
    config = run.config
    means = IntervalMeans(processes.device)
    progress = tqdm(total=config.iterations, initial=it, disable=not processes.is_main, unit="it", dynamic_ncols=True)
    interval_start, interval_first = time.perf_counter(), it
    validated = -1  # the iteration last validated at

    def validate() -> None:
        nonlocal validated, interval_start
        result = validator(trainer.network, it)
        logger.validation(
            it, {"J&F": result.jf, "J": result.j, "F": result.f}, result.per_video, result.seconds, write=progress.write
        )
        if run.record_validation(trainer, it, result.jf) and processes.is_main:
            progress.write(f"it {it}: best validation J&F so far" + (f", {run.name}_best.pth" if run.name else ""))
        validated = it
        interval_start += result.seconds  # the logged seconds per iteration are training's

    try:
        while it < config.iterations:
            epoch = it // data.batches_per_epoch
            if data.set_curriculum(epoch) and processes.is_main:
                progress.write(f"epoch {epoch}: max skip {data.max_skip}")
            batches = iter(data.loader(epoch, it % data.batches_per_epoch))
            while it < config.iterations:
                batch = _next_batch(batches, stop)
                signum = stop.agreed()  # every rank stops at the same iteration
                if signum:
                    path = run.save(trainer, it, checkpoint=True)
                    raise Interrupted(
                        signum,
                        f"stopped by {signal.Signals(signum).name} at iteration {it}"
                        + (f"; checkpoint {path}" if path is not None else " (--id NULL: nothing saved)"),
                        f"continue with --resume auto --id {config.run_id}" if path is not None else "",
                    )
                if batch is None:  # end of the epoch
                    break
                step = trainer.step(batch, it)
                it += 1
                progress.update(1)
                means.add(step.losses.logged())
                if trainer.skipped:
                    logger.message(
                        it,
                        f"iteration {it}: non-finite gradients under AMP, the step was skipped "
                        f"({trainer.consecutive_skips} in a row, at most {config.max_amp_skips})",
                        write=progress.write,
                    )
                if it % config.log_text_interval == 0:
                    seconds = (time.perf_counter() - interval_start) / (it - interval_first)
                    logger.interval(
                        it, means.finalize(), seconds, trainer.scheduler.get_last_lr()[0], write=progress.write
                    )
                    interval_start, interval_first = time.perf_counter(), it
                if it % config.log_image_interval == 0:
                    logger.images(batch, *step.images(), it)
                if validator is not None and it % config.val_interval == 0:
                    validate()
                weights_due = it % config.save_network_interval == 0
                checkpoint_due = it % config.save_checkpoint_interval == 0
                if weights_due or checkpoint_due:
                    run.save(trainer, it, weights=weights_due, checkpoint=checkpoint_due)
        if validator is not None and validated != it:
            validate()
        run.save(trainer, it, weights=True, checkpoint=config.keep_checkpoint)
        run.finish(progress.write)
    except (Interrupted, NonFiniteLossError):
        raise  # a checkpoint was written / the last good one is kept
    except Exception:
        if it >= config.crash_save_after:
            _crash_save(run, trainer, it, progress)
        raise
    finally:
        progress.close()


def _crash_save(run: TrainingRun, trainer: Trainer, it: int, progress: tqdm) -> None:
    """A full checkpoint at the last finished iteration before an exception ends training
    (as the reference's ``finally``); this process's own, since other ranks may be gone."""
    try:
        path = run.save(trainer, it, checkpoint=True, gather=False)
    except OSError as e:
        progress.write(f"training failed at iteration {it}; the crash checkpoint could not be written: {e}")
        return
    if path is not None:
        progress.write(
            f"training failed at iteration {it}; checkpoint {path} written (continue with --resume auto "
            f"--id {run.config.run_id} once the cause is fixed)"
        )


def _next_batch(batches, stop: StopRequests) -> dict | None:
    """The next batch, None at the end of the epoch, or when a stop signal also ended the
    data loader's workers."""
    try:
        return next(batches)
    except StopIteration:
        return None
    except RuntimeError:
        if stop.signum:
            return None
        raise


if __name__ == "__main__":
    cli.run(main)
