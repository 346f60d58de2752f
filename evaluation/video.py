"""One video through the engine: frames stream from the reader into ``InferenceCore.step``
and every wanted frame's mask goes to a callback.

When frames before the first annotation are wanted (a user's clip annotated in the middle),
they are segmented by a second pass that starts at the first annotated frame and runs
backwards; the frames it needs are kept on disk (raw arrays in a scratch folder) during the
single decode, never in memory.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from datasets.eval_datasets import EvalVideo, FrameInput
from inference_backend import Backend
from inference_core import InferenceCore
from model.network import GSFM
from util.configuration import InferenceConfig


@dataclass
class FrameOutput:
    index: int
    name: str
    rgb: np.ndarray  # (H, W, 3) uint8, the frame as read
    labels: np.ndarray  # (H, W) uint8 object ids
    prob: torch.Tensor  # (K+1, H, W) probabilities, background first, on the network's device


def segment_video(
    network: GSFM | Backend,
    video: EvalVideo,
    config: InferenceConfig,
    on_output: Callable[[FrameOutput], None],
    scratch: Path | None = None,
    on_frame: Callable[[], None] | None = None,
) -> int:
    """Segment ``video``, calling ``on_output`` for every frame it wants (in processing order:
    forward from the first annotation, then backward before it) and ``on_frame`` after each
    frame read. ``scratch``: where the backward pass keeps its frames (default: the
    system's temporary folder). Returns the number of frames the network processed."""
    first = video.first_annotated
    backward = first > 0 and any(video.wants(i) for i in range(first))
    last = video.num_frames - 1
    processed = 0
    with tempfile.TemporaryDirectory(prefix=".frames_", dir=scratch) if backward else contextlib.nullcontext() as spill:
        core = InferenceCore(network, config, video.object_ids, num_frames=video.num_frames - first)
        for frame in video.read():
            if backward and frame.index <= first:
                np.save(Path(spill) / f"{frame.index}.npy", frame.rgb)
                if frame.labels is not None:
                    np.save(Path(spill) / f"{frame.index}_labels.npy", frame.labels)
            if frame.index >= first:
                processed += _step(core, frame, video, frame.index == last, on_output)
            if on_frame is not None:
                on_frame()
        if backward:
            core = InferenceCore(network, config, video.object_ids, num_frames=first + 1)
            for frame in _spilled_backwards(Path(spill), video, first):
                processed += _step(core, frame, video, frame.index == 0, on_output, skip_output=frame.index == first)
    return processed


def _step(
    core: InferenceCore,
    frame: FrameInput,
    video: EvalVideo,
    end: bool,
    on_output: Callable[[FrameOutput], None],
    skip_output: bool = False,
) -> bool:
    """One frame through the engine; True when the network processed it."""
    wanted = video.wants(frame.index) and not skip_output
    prob = core.step(frame.rgb, frame.labels, end=end, need_output=wanted)
    if wanted:
        on_output(FrameOutput(frame.index, frame.name, frame.rgb, core.prob_to_mask(prob), prob))
    return prob is not None


def _spilled_backwards(spill: Path, video: EvalVideo, first: int) -> Iterator[FrameInput]:
    """The first annotated frame (with its annotation), then the frames before it, backwards."""
    for index in range(first, -1, -1):
        labels = spill / f"{index}_labels.npy"
        yield FrameInput(
            index,
            video.frames.names[index],
            np.load(spill / f"{index}.npy"),
            np.load(labels) if labels.exists() else None,
        )
