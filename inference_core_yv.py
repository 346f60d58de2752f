"""YouTube-VOS inference: what the benchmark changes around the shared engine.

The engine (``inference_core.InferenceCore``) is the same for every benchmark; YouTube-VOS
differs from DAVIS in its protocol, and this module is that protocol:
- frames are processed with their short side resized to 480 (bicubic; masks nearest) and
  the probabilities resized back to the original size (``settings``): the reference's
  YouTube-VOS evaluation, where DAVIS runs at the native 480p;
- objects join at later frames: each annotation PNG of a video is the first appearance of
  the objects in it, given to the engine at that frame (``InferenceCore.step`` adds the
  new ids as output channels, and they read only the memory written since they joined);
- only the frames meta.json lists for an object are written, from the video's first
  annotated frame on (``select_outputs``); the other frames are computed only when they
  are due as memory;
- frames come from the all-frames archive (every frame at 30 fps), annotations and
  meta.json from the split's folder;
- the server reads a zip of ``Annotations/<video>/<frame>.png`` (``evaluation.sinks.Submission``).

``benchmarks.registry``'s ``youtube-vos`` entry is this module's reader and settings.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.readers import BenchmarkSet
from datasets.eval_datasets import EvalVideo, youtube_videos

SHORT_SIDE = 480  # the reference resizes YouTube-VOS frames to this short side


def settings(size: int = SHORT_SIDE, antialias: bool = True) -> dict:
    """The inference settings YouTube-VOS adds: the resize (``size`` <= 0 keeps the
    original size) and its antialiasing (False as torchvision < 0.17 did, which is how the
    published numbers were made)."""
    return {"short_side": size if size > 0 else None, "antialias": antialias}


def select_outputs(videos: list[EvalVideo], meta: dict[str, dict], output_all: bool = False) -> None:
    """Each video writes the frames meta.json asks for (every frame with ``output_all``),
    from its first annotated frame on."""
    for video in videos:
        requested = {frame for obj in meta[video.name]["objects"].values() for frame in obj["frames"]}
        video.outputs = {
            index
            for index, name in enumerate(video.frames.names)
            if index >= video.first_annotated and (output_all or name in requested)
        }


def read_youtube(yv_path: Path, split: str, output_all: bool = False, sparse_frames: bool = False) -> BenchmarkSet:
    """The videos of a split with their wanted frames and the palette (the registry's reader;
    the server scores the outputs)."""
    videos, palette, meta = youtube_videos(yv_path, split, sparse_frames)
    select_outputs(videos, meta, output_all)
    return BenchmarkSet(videos, palette, None)
