"""Where a training run keeps its files, and which checkpoint it continues from.

A run folder ``<save_root>/<Mon DD_HH.MM.SS>_<id>/`` holds network weights
``<run>_<it>.pth`` (what the evaluation scripts load) and the full checkpoint
``<run>_checkpoint.pth`` (network, optimiser, scheduler, grad scaler, iteration, the
configuration, every rank's generator states, the best validation so far), the previous one
kept as ``<run>_checkpoint_prev.pth``, and with validation ``<run>_best.pth``: the weights
with the best validation J&F. Every file is written atomically. A resumed run continues in
the folder of the checkpoint it resumes; ``--resume auto`` also finds the reference's
``<save_root>/<id>/`` folders.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re
from pathlib import Path
from typing import Callable

from model.checkpoint import FIRST_VALUE_CONV, find_latest_checkpoint, read_checkpoint, save_file
from model.trainer import Trainer
from util import distributed
from util.atomic import check_writable
from util.configuration import TrainConfig
from util.errors import CheckpointError, ConfigError
from util.log import get_logger
from util.rng import rng_state

logger = get_logger(__name__)
RUN_TIME_FORMAT = "%b%d_%H.%M.%S"
# Settings that do not change what is trained: where and in which precision it runs (a
# checkpoint may continue on another device), how often it saves and logs, where the
# weights come from (a resume replaces them), the run's name. Every other setting of a
# resumed run must match the checkpoint's, or --resume_anyway.
NOT_TRAINING_SETTINGS = frozenset(
    {
        "id",
        "benchmark",
        "amp",
        "device",
        "num_workers",
        "save_network_interval",
        "save_checkpoint_interval",
        "keep_checkpoint",
        "log_text_interval",
        "log_image_interval",
        "save_root",
        "load_network",
        "stcn_init",
        "load_model",
        "resume",
        "resume_anyway",
        "no_imagenet",
        "max_amp_skips",
        "batch_size",
        "global_batch_size",  # compared as the batch per process and the global batch
    }
)
# Settings a resume may change, said once: a longer --iterations continues the shorter run
# (the learning-rate steps and the bootstrapped-CE warm-up count absolute iterations), and
# validation never touches the weights (test_training::test_validation_does_not_change_training).
# A shorter --iterations stays a difference: the run would stop somewhere its schedule was not
# planned for.
CONTINUATION_SETTINGS = ("iterations", "val_videos", "val_interval", "val_max_size")
VALIDATION_DATA = ("val_videos", "val_max_size")  # another one makes the best J&F so far incomparable
PATH_SETTINGS = ("static_root", "bl_root", "yv_root", "davis_root", "davis_subset", "yv_subset")


def is_run_folder_of(folder: Path, run_id: str) -> bool:
    """Whether ``folder`` belongs to run ``run_id``: ``<timestamp>_<run_id>`` exactly (so id
    ``s0`` is not ``..._ablation_s0``), or the reference's plain ``<run_id>``."""
    timestamp = r"[^_]*\d\d_\d\d\.\d\d\.\d\d_"
    return folder.name == run_id or re.fullmatch(timestamp + re.escape(run_id), folder.name) is not None


def find_resume_checkpoint(save_root: str | os.PathLike, run_id: str) -> Path | None:
    """``--resume auto``: the newest readable full checkpoint among the folders of run
    ``run_id`` under ``save_root`` (None when there is none)."""
    root = Path(save_root)
    folders = [d for d in root.iterdir() if d.is_dir() and is_run_folder_of(d, run_id)] if root.is_dir() else []
    found = [p for p in map(find_latest_checkpoint, folders) if p is not None]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def finished_weights(save_root: str | os.PathLike, run_id: str, iterations: int) -> Path | None:
    """The final weights of run ``run_id`` when one of its folders holds them (the run
    finished: its full checkpoint was removed then, unless kept), else None."""
    root = Path(save_root)
    folders = [d for d in root.iterdir() if d.is_dir() and is_run_folder_of(d, run_id)] if root.is_dir() else []
    return next((p for p in (d / f"{d.name}_{iterations}.pth" for d in sorted(folders)) if p.exists()), None)


def resume_checkpoint_path(config: TrainConfig, log: Callable[[str], None] = logger.info) -> Path | None:
    """The checkpoint ``--resume auto`` or ``--load_model`` names (None: a fresh start)."""
    if config.resume == "auto":
        found = find_resume_checkpoint(config.save_root, config.run_id)
        finished = finished_weights(config.save_root, config.run_id, config.iterations) if found is None else None
        if finished is not None:  # rerunning a finished run's command must not start it again
            raise ConfigError(
                f"--resume auto: run '{config.run_id}' has finished, its final weights are {finished}; "
                f"a new run needs another --id (a finished run continues only from a --keep_checkpoint checkpoint)"
            )
        if found is None:
            log(f"--resume auto: no checkpoint of run '{config.run_id}' under {config.save_root}; starting fresh")
        return found
    if config.load_model:
        path = Path(config.load_model)
        found = find_latest_checkpoint(path) if path.is_dir() else path
        if found is None:
            raise CheckpointError(f"{path}: no readable training checkpoint in this folder")
        return found
    return None


def training_differences(checkpoint: dict, config: TrainConfig, world_size: int) -> list[str]:
    """The settings that change training on which the checkpoint's recorded configuration
    and ``config`` (run by ``world_size`` processes) differ, one line each; empty for a
    checkpoint without a recorded configuration (the reference's)."""
    recorded = checkpoint.get("config")
    if not isinstance(recorded, dict):
        return []
    now = dataclasses.asdict(config)
    differences = []
    for name, value in now.items():
        if name in NOT_TRAINING_SETTINGS or name not in recorded:
            continue
        if name in CONTINUATION_SETTINGS and (name != "iterations" or value >= recorded[name]):
            continue
        if not _same(name, recorded[name], value):
            differences.append(f"--{name}: {_shown(recorded[name])} in the checkpoint, {_shown(value)} now")
    processes = len(checkpoint.get("rng") or ())
    if processes and "batch_size" in recorded:
        recorded_global = recorded.get("global_batch_size") or recorded["batch_size"] * processes
        batch = config.batch_per_process(world_size)
        if (recorded_global // processes, recorded_global) != (batch, batch * world_size):
            differences.append(
                f"batch: {recorded_global // processes} per process x {processes} processes in the "
                f"checkpoint, {batch} x {world_size} now"
            )
    return differences


def continuation_changes(checkpoint: dict, config: TrainConfig) -> list[str]:
    """The settings of ``CONTINUATION_SETTINGS`` that ``config`` changes and a resume
    accepts (a longer --iterations, any validation setting), one line each."""
    recorded = checkpoint.get("config")
    if not isinstance(recorded, dict):
        return []
    now = dataclasses.asdict(config)
    changes = []
    for name in CONTINUATION_SETTINGS:
        if name not in recorded or _same(name, recorded[name], now[name]):
            continue
        if name == "iterations" and now[name] < recorded[name]:
            continue  # a difference (training_differences), not a continuation
        line = f"--{name}: {_shown(recorded[name])} in the checkpoint, {_shown(now[name])} now"
        if name == "iterations" and config.stage_preset.skip_fractions:
            line += " (the max-skip curriculum, set in fractions of all epochs, is spread over the new total)"
        changes.append(line)
    return changes


def _same(name: str, before: object, value: object) -> bool:
    if name in PATH_SETTINGS or name == "val_videos":
        return before == value or (
            before is not None and value is not None and os.path.normpath(str(before)) == os.path.normpath(str(value))
        )
    return tuple(before) == tuple(value) if isinstance(value, tuple) else before == value


def _shown(value: object) -> str:
    return " ".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)


class TrainingRun:
    """The run folder (new, or the resumed checkpoint's) and the checkpoints written there."""

    def __init__(
        self, config: TrainConfig, main_process: bool, log: Callable[[str], None] = logger.info, world_size: int = 1
    ):
        self.config = config
        self.main_process = main_process
        path = resume_checkpoint_path(config, log)
        self.resume: dict | None = read_checkpoint(path) if path is not None else None
        self.folder: Path | None = None
        if path is not None:
            self._check_network(path)
            self._check_settings(path, world_size, log)
            self._note_continuation(path, log)
            self.folder = path.parent
            missing = [k for k in ("scaler", "rng") if k not in self.resume]
            if missing:  # the reference's own checkpoints hold it, network, optimizer, scheduler
                log(
                    f"note: {path} has no {' or '.join(missing)} state (a reference-format checkpoint): started "
                    f"fresh, so the resume is not bit-exact where they matter (AMP's loss scale)"
                )
            if config.id not in (None, "NULL") and not is_run_folder_of(self.folder, config.id):
                log(f"note: continuing in the resumed run's folder {self.folder}; --id {config.id} is ignored")
        elif config.id != "NULL":
            now = datetime.datetime.now().strftime(RUN_TIME_FORMAT)
            self.folder = Path(config.save_root) / f"{now}_{config.run_id}"
        if self.folder is not None and main_process:  # fail before training, not at the first checkpoint
            # a new run's folder is made by its first file: a run that fails to start leaves none
            check_writable(self.folder if path is not None else self.folder.parent)
        self._written = {"weights": -1, "checkpoint": -1}  # the iteration each was last written at
        # the best validation so far ({"it", "jf"}), kept across resumes of the same validation
        self.best: dict | None = (self.resume or {}).get("best")
        if self.resume is not None and self.best is not None and self._validation_changed():
            self.best = None

    def _validation_changed(self) -> bool:
        recorded = self.resume.get("config")
        now = dataclasses.asdict(self.config)
        return isinstance(recorded, dict) and any(
            not _same(name, recorded.get(name), now[name]) for name in VALIDATION_DATA
        )

    def _note_continuation(self, path: Path, log: Callable[[str], None]) -> None:
        changes = continuation_changes(self.resume, self.config)
        if not changes:
            return
        listed = "\n".join(f"  {line}" for line in changes)
        best = self.resume.get("best")
        dropped = (
            f"\n  the best validation so far (J&F {best['jf']:.4f} at iteration {best['it']}) was measured "
            f"on other videos or sizes: {path.parent.name}_best.pth will be replaced by this validation's best"
            if best is not None and self._validation_changed()
            else ""
        )
        log(f"note: {path} continues with settings that do not change what it trained so far:\n{listed}{dropped}")

    def _check_network(self, path: Path) -> None:
        network = self.resume.get("network")
        if not isinstance(network, dict) or "it" not in self.resume:
            raise CheckpointError(
                f"{path}: not a full training checkpoint (network weights only?); "
                f"use --load_network to start from weights"
            )
        conv = network.get(FIRST_VALUE_CONV, network.get(f"module.{FIRST_VALUE_CONV}"))
        single = conv is not None and conv.shape[1] == 4
        if single != self.config.single_object:
            kind = "single-object (stage 0)" if single else "multi-object"
            raise CheckpointError(
                f"{path}: a {kind} checkpoint cannot resume stage {self.config.stage} "
                f"(single- vs multi-object network); use --load_network"
            )

    def _check_settings(self, path: Path, world_size: int, log: Callable[[str], None]) -> None:
        differences = training_differences(self.resume, self.config, world_size)
        if not differences:
            return
        listed = "\n".join(f"  {line}" for line in differences)
        if not self.config.resume_anyway:
            raise ConfigError(
                f"{path}: this checkpoint was trained with other settings that change training:\n"
                f"{listed}\n  Use the checkpoint's values, or --resume_anyway to continue with "
                f"the new ones."
            )
        log(f"note: --resume_anyway: {path} continues with settings that differ from its own:\n{listed}")

    def describe(self) -> str:
        """The start-up line saying where the run saves (or that it saves nothing)."""
        if self.folder is None:
            return "--id NULL: nothing is saved (no weights, checkpoints or logs)"
        if self.config.id is None and self.resume is None:
            return (
                f"no --id given: run '{self.config.run_id}', saved in {self.folder} "
                f"(continue it with --resume auto --id {self.config.run_id}; --id NULL saves nothing)"
            )
        return f"run folder: {self.folder}"

    @property
    def name(self) -> str | None:
        return self.folder.name if self.folder is not None else None

    @property
    def start_iteration(self) -> int:
        return int(self.resume["it"]) if self.resume is not None else 0

    def rng_state_for(self, rank: int) -> dict | None:
        """The generator states a resumed rank continues with (rank 0's when the run had
        fewer ranks), or None."""
        states = (self.resume or {}).get("rng")
        if not states:
            return None
        return states[rank] if rank < len(states) else states[0]

    def save(
        self, trainer: Trainer, it: int, weights: bool = False, checkpoint: bool = False, gather: bool = True
    ) -> Path | None:
        """Write the network weights and/or the full checkpoint at iteration ``it`` (each at
        most once per iteration); returns the checkpoint's path. Every rank calls this: the
        checkpoint holds every rank's generator states and a checksum of its weights (the
        replicas must agree). ``gather=False``: this process alone (a crash save, when the
        other ranks may be gone), with its own generator states only."""
        own = (rng_state(), trainer.weight_checksum())
        gathered = distributed.all_gather_object(own) if gather else [own]
        if not self.main_process or self.folder is None:
            return None
        current = self.folder / f"{self.name}_checkpoint.pth"
        if weights and self._written["weights"] != it:
            save_file(trainer.network.state_dict(), self.folder / f"{self.name}_{it}.pth")
            self._written["weights"] = it
        if checkpoint and self._written["checkpoint"] != it:
            if current.exists():  # keep one older checkpoint to fall back to
                current.replace(self.folder / f"{self.name}_checkpoint_prev.pth")
            save_file(
                {
                    **trainer.state_dict(),
                    "it": it,
                    "config": dataclasses.asdict(self.config),
                    "rng": [g[0] for g in gathered],
                    "rank_weight_sums": [g[1] for g in gathered],
                    "best": self.best,
                },
                current,
            )
            self._written["checkpoint"] = it
        return current

    def finish(self, log: Callable[[str], None]) -> None:
        """The run is complete: remove its full checkpoints (three times the weights' size,
        and only a resume needs them) unless --keep_checkpoint, and name the weights."""
        if not self.main_process or self.folder is None:
            return
        if not self.config.keep_checkpoint:
            for name in ("checkpoint", "checkpoint_prev"):
                (self.folder / f"{self.name}_{name}.pth").unlink(missing_ok=True)
        log(f"final weights: {self.final_weights}")
        best = self.folder / f"{self.name}_best.pth"
        if best.exists():
            log(f"best weights: {best} (validation J&F {self.best['jf']:.4f} at iteration {self.best['it']})")

    @property
    def final_weights(self) -> Path:
        """The weights the finished run ends with."""
        return self.folder / f"{self.name}_{self.config.iterations}.pth"

    def record_validation(self, trainer: Trainer, it: int, jf: float) -> bool:
        """Keep ``<run>_best.pth`` when ``jf`` beats the best validation so far (every rank
        calls this with the same ``jf``); True when it did."""
        if self.best is not None and jf <= self.best["jf"]:
            return False
        self.best = {"it": it, "jf": jf}
        if self.main_process and self.folder is not None:
            save_file(trainer.network.state_dict(), self.folder / f"{self.name}_best.pth")
        return True
