"""Where an evaluation's masks go, and what is made of them once every video is done.

A sink is the one object ``evaluate`` hands each wanted frame to. It writes the frame into
the video's folder (a temporary folder, published whole when the video is complete) in the
layout its benchmark's evaluator or server reads, and its ``finish`` runs once, on the
process that writes the summary, when every video is published: J&F, a submission zip,
scores. Every benchmark's sink is here (``benchmarks.registry`` names each entry's);
adding an output layout is one small class.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Callable

from PIL import Image

from datasets.eval_datasets import EvalVideo
from evaluation.report import write_scores
from evaluation.scoring import DAVIS, Target, davis_target
from evaluation.video import FrameOutput
from util.atomic import atomic_save
from util.log import get_logger
from util.metrics import format_results, summarise
from util.overlay import DEFAULT_FPS, overlay, write_mp4
from util.palette import read_image, write_binary_png, write_indexed_png

logger = get_logger(__name__)


class OutputSink:
    """The interface: ``write`` each wanted frame, ``finish`` once at the end."""

    masks_subdir = ""  # where the video folders go under the output folder

    def write(self, video: EvalVideo, frame: FrameOutput, folder: Path) -> None:
        """One frame into ``folder``, the video's (temporary) folder."""
        raise NotImplementedError

    def finish(self, videos: list[EvalVideo], out_root: Path) -> None:
        """Once every video is published (on one process)."""


class IndexedPngs(OutputSink):
    """Indexed PNGs with the dataset's palette: ``<video>/<frame>.png``."""

    def __init__(self, palette: list[int], masks_subdir: str = ""):
        self.palette, self.masks_subdir = palette, masks_subdir

    def write(self, video: EvalVideo, frame: FrameOutput, folder: Path) -> None:
        write_indexed_png(frame.labels, self.palette, folder / f"{frame.name}.png")


class IndexedPngsWithOverlays(IndexedPngs):
    """Indexed PNGs, plus every frame with its mask drawn over it: ``<video>_overlay/<frame>.jpg``
    (from the frames as decoded, so a video file is read once) and, at the end,
    ``<video>_overlay.mp4`` in frame order (the backward pass writes its frames last)."""

    def __init__(self, palette: list[int], out_root: Path):
        super().__init__(palette)
        self.out_root = out_root

    def write(self, video: EvalVideo, frame: FrameOutput, folder: Path) -> None:
        super().write(video, frame, folder)
        picture = Image.fromarray(overlay(frame.rgb, frame.labels, self.palette))
        atomic_save(
            lambda tmp: picture.save(tmp, format="JPEG", quality=90),
            self.out_root / f"{video.name}_overlay" / f"{frame.name}.jpg",
        )

    def finish(self, videos: list[EvalVideo], out_root: Path) -> None:
        for video in videos:  # one frame in memory at a time
            folder = self.out_root / f"{video.name}_overlay"
            fps = video.frames.fps or DEFAULT_FPS
            write_mp4((read_image(folder / f"{name}.jpg") for name in video.frames.names), folder, fps)
            rate = f"{fps:g} frames/s" + ("" if video.frames.fps else " (a folder of frames has no rate of its own)")
            logger.info(f"overlays: {folder}/ and {folder.with_suffix('.mp4')} (H.264, {rate})")


class BinaryPngs(OutputSink):
    """0/255 greyscale PNGs of the union of the objects (DAVIS 2016)."""

    def write(self, video: EvalVideo, frame: FrameOutput, folder: Path) -> None:
        write_binary_png(frame.labels > 0, folder / f"{frame.name}.png")


class Submission(IndexedPngs):
    """YouTube-VOS: ``Annotations/<video>/<frame>.png`` and, once every video is done,
    ``submission.zip`` of that folder (the layout the evaluation server reads)."""

    def __init__(self, palette: list[int]):
        super().__init__(palette, masks_subdir="Annotations")

    def finish(self, videos: list[EvalVideo], out_root: Path) -> None:
        write_zip(out_root, self.masks_subdir)


class BenchmarkOutputs(IndexedPngs):
    """MOSE, LVOS, VOST, SA-V: ``<video>/<frame>.png`` label maps (the dataset's palette), or
    with ``per_object_png`` (SA-V) one 0/255 PNG per object folder of the ground truth
    (``<video>/<object>/<frame>.png``); at the end ``submission.zip`` of the video folders
    for a server (``submission_zip``), and ``scores.json`` and ``report.html`` where the ground
    truth is on disk (``evaluation.report.write_scores``, as score.py writes them: the official
    metric names and units; nan as null), else a line saying where
    to ``submit``."""

    def __init__(
        self,
        palette: list[int],
        target: Callable[[], Target] | None,
        submit: str,
        per_object_png: bool = False,
        submission_zip: bool = False,
    ):
        super().__init__(palette)
        self.target, self.submit = target, submit
        self.per_object_png, self.submission_zip = per_object_png, submission_zip

    def write(self, video: EvalVideo, frame: FrameOutput, folder: Path) -> None:
        if not self.per_object_png:
            super().write(video, frame, folder)
            return
        for obj, name in video.object_dirs.items():
            write_binary_png(frame.labels == obj, folder / name / f"{frame.name}.png")

    def finish(self, videos: list[EvalVideo], out_root: Path) -> None:
        if self.submission_zip:
            write_zip(out_root, self.masks_subdir)
        if self.target is None:
            logger.info(f"no ground truth on disk: {self.submit}")
            return
        _, scores = write_scores(self.target(), out_root / self.masks_subdir, out_root, "outputs")
        logger.info("  ".join(f"{k} {_number(v)}" for k, v in scores["overall"].items()))
        logger.info(f"scores ({scores['units']}): {out_root / 'scores.json'}; report: {out_root / 'report.html'}")


def _number(value: float | None) -> str:
    return "null" if value is None else f"{value:.4f}"


class DavisScores(OutputSink):
    """DAVIS layout; J&F printed and written to ``jf_results.json`` when every video has full
    ground truth (val), nothing more otherwise (test-dev: the folder is the submission)."""

    def __init__(self, palette: list[int], binary: bool = False):
        self.binary = binary
        self.pngs = BinaryPngs() if binary else IndexedPngs(palette)

    def write(self, video: EvalVideo, frame: FrameOutput, folder: Path) -> None:
        self.pngs.write(video, frame, folder)

    def finish(self, videos: list[EvalVideo], out_root: Path) -> None:
        write_jf(videos, out_root, self.binary)


def write_jf(videos: list[EvalVideo], out_root: Path, binary: bool = False) -> dict | None:
    """J&F when every video has full ground truth: printed and written to
    ``jf_results.json``, beside scores.json and report.html (scored once, as score.py does)."""
    if not videos or any(v.gt_dir is None for v in videos):
        return None
    run, _ = write_scores(davis_target(videos, binary), out_root, out_root, "outputs")
    results = summarise({r["object"]: {k: r[k] for k in DAVIS[1:]} for r in run.per_object})
    logger.info(format_results(results))
    atomic_save(lambda tmp: tmp.write_text(json.dumps(results, indent=1)), out_root / "jf_results.json")
    return results


def write_zip(out_root: Path, folder: str, name: str = "submission.zip") -> Path:
    """Zip ``out_root/folder/<video>/*.png`` with paths starting at ``folder/`` (the layout
    the YouTube-VOS server reads), atomically."""
    root = out_root / folder

    def write(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for png in sorted(root.glob("*/*.png")):
                if not png.parent.name.startswith("."):
                    zf.write(png, png.relative_to(out_root).as_posix())

    path = out_root / name
    atomic_save(write, path)
    logger.info(f"submission: {path}")
    return path
