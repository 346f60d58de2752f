"""Validation while training: J&F on held-out videos at the evaluation settings.

A validation folder is laid out as the training folders (``ROOT/JPEGImages/<video>/`` and
``ROOT/Annotations/<video>/``, or DAVIS's and YouTube-VOS's layouts: datasets/video_layout.py)
with every frame's ground truth; each object's first
appearance is the input (objects may enter later), every frame is scored.
Every process of a training job validates its share of the videos (the evaluation's
shards) and the per-object scores are gathered, so the J&F is the single-process one.
Validation leaves the training untouched: the network returns to training mode and every
random generator to its state before, so a run's weights do not depend on it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from datasets.eval_datasets import (
    EvalVideo,
    FrameSource,
    first_appearances,
    load_annotation,
    matched_annotations,
    require_dir,
)
from datasets.video_layout import find_video_layout
from evaluation.run import shard
from evaluation.video import FrameOutput, segment_video
from model.network import GSFM
from util import distributed
from util.configuration import InferenceConfig
from util.errors import DatasetError
from util.log import get_logger
from util.metrics import object_scores, summarise
from util.rng import rng_state, set_rng_state

logger = get_logger(__name__)


def validation_videos(root: str | Path) -> list[EvalVideo]:
    """The videos of a validation folder; each needs an annotation for every frame. The
    engine is given each object's first appearance (objects may enter later), the rest is
    ground truth."""
    layout = find_video_layout(root)
    logger.info(f"validation videos: {layout.describe(Path(root))}")
    image_root = require_dir(layout.images, "validation JPEGImages")
    mask_root = require_dir(layout.annotations, "validation Annotations")
    videos = []
    for folder in sorted(p for p in image_root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        masks = sorted((mask_root / folder.name).glob("*.png")) if (mask_root / folder.name).is_dir() else []
        if not masks:
            raise DatasetError(f"{mask_root / folder.name}: no annotation for this validation video")
        source = FrameSource(folder)
        if len(masks) != len(source):
            raise DatasetError(
                f"{mask_root / folder.name}: {len(masks)} annotations for {len(source)} frames in "
                f"{folder} (validation needs every frame's ground truth)"
            )
        firsts = first_appearances(masks)
        if not firsts:
            raise DatasetError(f"{mask_root / folder.name}: no object in any annotation of this validation video")
        annotations = matched_annotations(sorted(firsts), source, mask_root / folder.name)
        videos.append(
            EvalVideo(
                folder.name,
                source,
                annotations,
                gt_dir=mask_root / folder.name,
                input_objects={index: firsts[path] for index, path in annotations.items()},
            )
        )
    if not videos:
        raise DatasetError(f"{image_root}: no validation video in this folder")
    return videos


@dataclass
class ValidationResult:
    it: int
    jf: float  # J&F-Mean over every object
    j: float
    f: float
    per_video: dict[str, dict[str, float]] = field(default_factory=dict)  # video -> J&F, J, F
    seconds: float = 0.0


class Validator:
    """Validates a training network on ``root``'s videos; every rank calls it together."""

    def __init__(self, root: str | Path, config: InferenceConfig, processes: distributed.Processes):
        self.videos = validation_videos(root)
        self.config = config
        self.mine = shard(self.videos, processes.world_size)[processes.rank]

    def __call__(self, network: GSFM, it: int) -> ValidationResult:
        started = time.perf_counter()
        was_training = network.training
        generators = rng_state()
        network.eval()
        try:
            scores = {}
            for video in self.mine:
                scores.update(_video_scores(network, video, self.config))
        finally:
            network.train(was_training)
            set_rng_state(generators)
        gathered = {k: v for part in distributed.all_gather_object(scores) for k, v in part.items()}
        per_object = {name: gathered[name] for name in sorted(gathered)}  # the same order in every job
        overall = summarise(per_object)["overall"]
        per_video = {}
        for video in sorted(v.name for v in self.videos):
            objects = [s for name, s in per_object.items() if name.rpartition("_")[0] == video]
            j = float(np.mean([s["J-Mean"] for s in objects]))
            f = float(np.mean([s["F-Mean"] for s in objects]))
            per_video[video] = {"J&F": (j + f) / 2, "J": j, "F": f}
        return ValidationResult(
            it, overall["J&F-Mean"], overall["J-Mean"], overall["F-Mean"], per_video, time.perf_counter() - started
        )


def _video_scores(network: GSFM, video: EvalVideo, config: InferenceConfig) -> dict[str, dict[str, float]]:
    """Segment one video in memory and score it against its ground truth."""
    labels: dict[int, np.ndarray] = {}

    def keep(frame: FrameOutput) -> None:
        labels[frame.index] = frame.labels

    with torch.inference_mode():
        segment_video(network, video, config, keep)
    masks = sorted(video.gt_dir.glob("*.png"))
    gt = np.stack([load_annotation(path) for path in masks])
    pred = np.stack([labels[i] for i in range(video.num_frames)])
    return object_scores(video.name, pred, gt)
