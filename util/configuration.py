"""Every setting and its default, defined once: the training stages (hyper-parameters and
data side by side), a training run's configuration, and the inference settings.

The command-line parsers are built from these dataclasses (``add_arguments``), so a
default changed here is the default everywhere.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from util.cli import argument_parser
from util.errors import ConfigError


def option(default: Any, help: str, *flags: str, **argparse_kwargs: Any) -> Any:
    """A dataclass field that is also a command-line option (``--<name>`` unless ``flags``)."""
    return field(default=default, metadata={"help": help, "flags": flags, "argparse": argparse_kwargs})


def add_arguments(parser: argparse.ArgumentParser, cls: type, **defaults: Any) -> None:
    """One option per field of ``cls`` that has help text; ``defaults`` override the
    dataclass defaults (e.g. top_k 20 for DAVIS 2016). A bool field that defaults to True
    becomes a ``--no_<name>`` flag."""
    for f in dataclasses.fields(cls):
        if "help" not in f.metadata:
            continue
        default = defaults.get(f.name, f.default)
        kwargs = dict(f.metadata["argparse"])
        if isinstance(f.default, bool):
            flags = f.metadata["flags"] or ((f"--no_{f.name}",) if f.default else (f"--{f.name}",))
            kwargs["action"] = "store_false" if f.default else "store_true"
        else:
            flags = f.metadata["flags"] or (f"--{f.name}",)
            kwargs.setdefault("type", type(default) if default is not None else str)
            kwargs["default"] = default
        parser.add_argument(*flags, dest=f.name, help=f.metadata["help"], **kwargs)


def from_arguments(cls: type, args: argparse.Namespace, **extra: Any) -> Any:
    """An instance of ``cls`` from the parsed options of ``add_arguments``."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in vars(args).items() if k in names}
    values.update(extra)
    for key in ("steps", "videos"):  # argparse gives lists; the configuration keeps tuples
        if isinstance(values.get(key), list):
            values[key] = tuple(values[key])
    return cls(**values)


# ---- training data ----------------------------------------------------------------


@dataclass(frozen=True)
class ImageFolders:
    """Static images with saliency masks (X.jpg + X.png) under the static root."""

    folder: str
    class_folders: bool = False  # FSS-1000: one sub-folder per class


@dataclass(frozen=True)
class VideoFolders:
    """Annotated videos: ``<folder>/<images>/<video>/*.jpg`` and ``<folder>/<annotations>/<video>/*.png``.
    Only frames with an annotation are used. ``root`` is the folder itself, or with
    ``root_option`` a path inside the folder that TrainConfig option names (the built-in
    datasets follow --davis_root, --yv_root, --bl_root); ``subset`` likewise a video list file
    or, with ``subset_option``, the option that names it."""

    root: str
    images: str = "JPEGImages"
    annotations: str = "Annotations"
    subset: str | None = None
    root_option: str | None = None
    subset_option: str | None = None
    # annotations every N frames (YouTube-VOS: 5): the max skip counts annotated frames;
    # None: detected from the annotation file names
    interval: int | None = None
    crop_scale: tuple[float, float] = (0.36, 1.0)  # random resized crop
    small_object_filter: bool = False  # BL30K: keep objects large enough, or small in all 3 frames

    def folder(self, config: TrainConfig) -> Path:
        return Path(getattr(config, self.root_option)) / self.root if self.root_option else Path(self.root)

    def subset_file(self, config: TrainConfig) -> str | None:
        """The video list (a file, 'all' or None for every video)."""
        return getattr(config, self.subset_option) if self.subset_option else self.subset


@dataclass(frozen=True)
class DataGroup:
    """Datasets concatenated ``repeat`` times (the reference repeats the higher-quality
    sets; each copy draws its own samples)."""

    sources: tuple[ImageFolders | VideoFolders, ...]
    repeat: int = 1


VIDEO_OPTIONS = {"repeat": int, "interval": int, "subset": str}


def parse_videos(text: str) -> DataGroup:
    """``ROOT`` or ``ROOT:repeat=5,interval=5,subset=list.txt`` (--videos) as a data group
    of ``ROOT/JPEGImages`` and ``ROOT/Annotations``."""
    root, options = text, {}
    head, sep, tail = text.rpartition(":")
    if sep and head and tail and all("=" in item for item in tail.split(",")):
        root = head
        for item in tail.split(","):
            key, value = (part.strip() for part in item.split("=", 1))
            if key not in VIDEO_OPTIONS:
                raise ConfigError(f"--videos {text}: unknown option '{key}' (options: {', '.join(VIDEO_OPTIONS)})")
            try:
                options[key] = VIDEO_OPTIONS[key](value)
            except ValueError:
                raise ConfigError(f"--videos {text}: {key} must be an integer, got '{value}'") from None
            if key != "subset" and options[key] < 1:
                raise ConfigError(f"--videos {text}: {key} must be >= 1, got {options[key]}")
    repeat = options.pop("repeat", 1)
    return DataGroup((VideoFolders(root, **options),), repeat)


STATIC_DATA = (
    DataGroup(
        (
            ImageFolders("fss", class_folders=True),
            ImageFolders("DUTS-TR"),
            ImageFolders("DUTS-TE"),
            ImageFolders("ecssd"),
        )
    ),
    DataGroup((ImageFolders("BIG_small"), ImageFolders("HRSOD_small")), repeat=5),
)
DAVIS_TRAIN = VideoFolders(
    "2017/trainval",
    "JPEGImages/480p",
    "Annotations/480p",
    root_option="davis_root",
    subset_option="davis_subset",
    interval=1,
)
YOUTUBE_TRAIN = VideoFolders("train_480p", root_option="yv_root", subset_option="yv_subset", interval=5)
DAVIS_YOUTUBE_DATA = (DataGroup((DAVIS_TRAIN,), repeat=5), DataGroup((YOUTUBE_TRAIN,)))
BL30K_DATA = (
    DataGroup(
        (VideoFolders(".", root_option="bl_root", interval=1, crop_scale=(0.25, 1.0), small_object_filter=True),)
    ),
)

# A training clip: the annotated frame 0, then the frames segmented from it (the reference's 3).
CLIP_FRAMES = 3

# The max-skip curriculum of the video stages: the first value, then the next one from each
# fraction of the total epochs on (the last returns to 5).
MAX_SKIPS = (5, 10, 15, 20, 25, 5)


@dataclass(frozen=True)
class Stage:
    """A training stage as the reference runs it (docs/PROTOCOL.md)."""

    lr: float
    batch_size: int  # per process
    iterations: int
    steps: tuple[int, ...]  # MultiStepLR milestones
    start_warm: int  # bootstrapped CE warm-up
    end_warm: int
    single_object: bool
    data: tuple[DataGroup, ...]
    skip_fractions: tuple[float, ...] = ()  # where MAX_SKIPS[1:] start; empty for static images

    def max_skip(self, epoch: int, total_epochs: int) -> int:
        skip = MAX_SKIPS[0]
        for value, fraction in zip(MAX_SKIPS[1:], self.skip_fractions):
            if epoch >= round(total_epochs * fraction):
                skip = value
        return skip


STAGES = {
    0: Stage(4e-5, 16, 40000, (20000,), 3000, 10000, True, STATIC_DATA),
    1: Stage(6e-5, 8, 65000, (50000,), 5000, 20000, False, BL30K_DATA, (0.1, 0.2, 0.3, 0.4, 0.8)),
    2: Stage(6e-5, 8, 40000, (30000,), 3000, 10000, False, DAVIS_YOUTUBE_DATA, (0.1, 0.2, 0.3, 0.4, 0.9)),
    3: Stage(4e-5, 8, 30000, (25000,), 3000, 15000, False, DAVIS_YOUTUBE_DATA, (0.1, 0.2, 0.3, 0.4, 0.9)),
}
SEED = 14159265


def stage_presets_text() -> str:
    """The presets of STAGES as a table, for train.py --help."""
    rows = [("stage", "lr", "batch/process", "iterations", "steps", "start_warm", "end_warm", "network")]
    rows += [
        (
            str(n),
            f"{s.lr:g}",
            str(s.batch_size),
            str(s.iterations),
            " ".join(map(str, s.steps)),
            str(s.start_warm),
            str(s.end_warm),
            "single-object" if s.single_object else "multi-object",
        )
        for n, s in sorted(STAGES.items())
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "stage presets (options left unset take these):\n" + "\n".join(
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows
    )


PRESET = " (default: the --stage preset, listed below)"  # help of the options a stage presets


@dataclass(frozen=True)
class TrainConfig:
    """A training run. Fields left None take the stage's preset."""

    stage: int = option(
        0, "training stage (0 static images, 1 BL30K, 2 and 3 DAVIS + YouTube-VOS)", choices=sorted(STAGES)
    )
    id: str | None = option(
        None,
        "experiment name (default: stage<N>, printed at start-up); NULL saves nothing "
        "(no weights, checkpoints or logs)",
    )
    benchmark: bool = option(False, "cudnn.benchmark")
    amp: bool = option(True, "train in float32 (AMP is on by default on CUDA)")
    static_root: str = option("data/static", "static image datasets (stage 0)")
    bl_root: str = option("data/BL30K", "BL30K (stage 1)")
    yv_root: str = option("data/YouTube", "YouTube-VOS, with train_480p/ (stages 2, 3)")
    davis_root: str = option("data/DAVIS", "DAVIS, with 2017/trainval/ (stages 2, 3)")
    davis_subset: str = option("util/davis_subset.txt", "DAVIS training video list, or 'all'")
    yv_subset: str = option("util/yv_subset.txt", "YouTube-VOS training video list, or 'all'")
    load_network: str | None = option(
        None, "network weights to start from, or a published name (stcn-s0, ...; 4->5 channel extension done)"
    )
    stcn_init: str = option(
        "identity",
        "how --load_network sets the tensors an STCN checkpoint lacks: identity (the network "
        "starts as STCN) or random (fresh initialisation)",
        choices=["identity", "random"],
    )
    load_model: str | None = option(None, "full training checkpoint (or a run folder) to resume")
    resume: str | None = option(
        None,
        "auto: resume from the newest readable full checkpoint of the runs with "
        "this --id under --save_root (start fresh when there is none)",
        choices=["auto"],
    )
    resume_anyway: bool = option(
        False,
        "resume even though the checkpoint's recorded settings that change "
        "training differ from this command line (they are listed)",
    )
    no_imagenet: bool = option(False, "fresh backbones instead of ImageNet weights")
    batch_size: int | None = option(
        None, "batch per process (the reference's meaning)" + PRESET, "-b", "--batch_size", type=int
    )
    global_batch_size: int | None = option(None, "total batch over all processes (divided among them)", type=int)
    iterations: int | None = option(None, "training iterations" + PRESET, "-i", "--iterations", type=int)
    lr: float | None = option(None, "learning rate" + PRESET, type=float)
    steps: tuple[int, ...] | None = option(
        None, "iterations where the learning rate is multiplied by gamma" + PRESET, type=int, nargs="*"
    )
    gamma: float = option(0.1, "learning-rate decay at each step")
    weight_decay: float = option(1e-7, "Adam weight decay")
    start_warm: int | None = option(None, "iteration where bootstrapped CE starts shrinking p" + PRESET, type=int)
    end_warm: int | None = option(None, "iteration where p reaches its final 0.15" + PRESET, type=int)
    crop_size: int = option(384, "training crop (square)")
    num_workers: int = option(8, "data loader workers per process")
    seed: int = option(SEED, "random seed (data order and augmentation derive from it)")
    save_network_interval: int = option(10000, "write network weights every N iterations")
    save_checkpoint_interval: int = option(10000, "write a full (resumable) checkpoint every N iterations")
    keep_checkpoint: bool = option(
        False,
        "keep the full training checkpoint once the run has finished (by default it is "
        "removed then, leaving the weights: only a resume or a longer continuation needs it)",
    )
    log_text_interval: int = option(100, "log interval means of the losses every N iterations")
    log_image_interval: int = option(800, "log image grids every N iterations")
    save_root: str = option("saves", "folder of the run folders")
    device: str | None = option(None, "cuda or cpu (default: cuda when available)")
    max_amp_skips: int = option(
        20,
        "with AMP: stop after this many consecutive steps skipped for non-finite "
        "gradients (GradScaler skips them, as the reference lets it)",
    )
    videos: tuple[str, ...] | None = option(
        None,
        "your own training videos instead of the stage's video datasets: "
        "ROOT with ROOT/JPEGImages/<video>/ and ROOT/Annotations/<video>/, "
        "optionally ROOT:repeat=5,interval=5,subset=list.txt (repeatable)",
        action="append",
    )
    val_videos: str | None = option(
        None,
        "validate on these videos while training (ROOT/JPEGImages/<video>/, "
        "ROOT/Annotations/<video>/ with every frame's ground truth)",
    )
    val_interval: int = option(2500, "with --val_videos: validate every N iterations (and at the end)")
    val_max_size: int | None = option(
        None, "with --val_videos: the inference's internal size cap (--max_size)", type=int
    )
    crash_save_after: int = option(
        5000,
        "an exception that ends training after this many iterations writes a "
        "full checkpoint at the last finished one first (a non-finite loss does not)",
    )

    def __post_init__(self) -> None:
        preset = STAGES[self.stage]
        for name in ("batch_size", "iterations", "lr", "steps", "start_warm", "end_warm"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, getattr(preset, name))
        object.__setattr__(self, "steps", tuple(self.steps))
        for name in (
            "batch_size",
            "iterations",
            "crop_size",
            "save_network_interval",
            "save_checkpoint_interval",
            "log_text_interval",
            "log_image_interval",
            "max_amp_skips",
            "val_interval",
            "crash_save_after",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.videos is not None:
            object.__setattr__(self, "videos", tuple(self.videos))
            if not any(isinstance(s, VideoFolders) for g in self.stage_preset.data for s in g.sources):
                raise ConfigError(f"--videos replaces the video datasets of stages 1-3; stage {self.stage} has none")
            for text in self.videos:
                parse_videos(text)  # errors now, not when the data is built
        if self.val_videos is not None and self.single_object:
            raise ConfigError(f"--val_videos needs a multi-object stage (1-3), not stage {self.stage}")
        if self.val_max_size is not None and self.val_max_size < 16:
            raise ConfigError(f"--val_max_size must be >= 16, got {self.val_max_size}")
        if self.resume == "auto" and self.id in (None, "NULL"):
            raise ConfigError("--resume auto needs the --id of the run to continue")

    @property
    def run_id(self) -> str:
        """The run's name: --id, or stage<N> when none was given (a run without --id still
        saves; only an explicit NULL saves nothing)."""
        return self.id if self.id is not None else f"stage{self.stage}"

    @property
    def stage_preset(self) -> Stage:
        return STAGES[self.stage]

    @property
    def single_object(self) -> bool:
        return self.stage_preset.single_object

    @property
    def data(self) -> tuple[DataGroup, ...]:
        """The training data: the stage's, its video datasets replaced by --videos when given."""
        if self.videos is None:
            return self.stage_preset.data
        static = tuple(g for g in self.stage_preset.data if all(isinstance(s, ImageFolders) for s in g.sources))
        return static + tuple(parse_videos(text) for text in self.videos)

    def batch_per_process(self, world_size: int) -> int:
        if self.global_batch_size is None:
            return self.batch_size
        if self.global_batch_size % world_size:
            raise ConfigError(
                f"--global_batch_size {self.global_batch_size} does not divide over {world_size} processes"
            )
        return self.global_batch_size // world_size

    @classmethod
    def parse(cls, argv: list[str] | None = None) -> tuple[TrainConfig, argparse.Namespace]:
        """The configuration, and the launcher options that are not part of it (--local_rank)."""
        parser = argument_parser(
            "Train GSFM (stage presets as the reference; every value overridable)", epilog=stage_presets_text()
        )
        add_arguments(parser, cls)
        parser.add_argument(
            "--local_rank", "--local-rank", type=int, default=None, help="set by the legacy torch.distributed.launch"
        )
        args = parser.parse_args(argv)
        return from_arguments(cls, args), args


# ---- inference ----------------------------------------------------------------------


@dataclass(frozen=True)
class InferenceConfig:
    """How the engine segments a video. The defaults are the reference's; the options after
    ``include_last`` change outputs and are off by default."""

    top_k: int = option(50, "top-k memory entries per query pixel", "--top")
    mem_every: int = option(3, "a permanent memory frame every N frames")
    include_last: bool = option(False, "also keep the last frame as temporary memory")
    amp: bool = option(
        False,
        "autocast: float16 on CUDA as the reference; bfloat16 on CPU (changes numerics); "
        "channels-last convolutions. On a CPU without bfloat16 instructions: a warning and float32",
    )
    amp_anyway: bool = option(
        False,
        "with --amp on a CPU without bfloat16 instructions: bfloat16 anyway (many times "
        "slower than float32 there) instead of falling back to float32",
    )
    winograd: bool = option(
        False,
        "3x3 convolutions as Winograd F(6x6, 3x3) through NNPACK (CPU, float32): 2-4x faster "
        "convolutions, outputs within about 1e-4 of the direct convolution's (changes numerics)",
    )
    max_memory_frames: int | None = option(
        None,
        "bounded memory: keep the first frame and the most recent N-1 "
        "memory frames (changes outputs; memory stays flat on long videos)",
        type=int,
    )
    max_size: int | None = option(
        None,
        "internal resolution cap: downscale frames whose short side exceeds this "
        "before the network, upscale the masks back (changes outputs; faster)",
        type=int,
    )
    # The benchmark's own resizing (YouTube-VOS: short side 480, bicubic); set by eval_youtube.py.
    short_side: int | None = None
    antialias: bool = True  # of that resize: the reference on torchvision >= 0.17; False as the authors ran it
    # Convolutions in channels-last (NHWC): None follows autocast (on with --amp, where the fast
    # kernels want it; float32 keeps NCHW, whose outputs are exact); the benchmark sets it to compare.
    channels_last: bool | None = None

    def __post_init__(self) -> None:
        checks = (
            ("top_k", "--top", 1),
            ("mem_every", "--mem_every", 1),
            ("max_memory_frames", "--max_memory_frames", 2),
            ("max_size", "--max_size", 16),
            ("short_side", "--size", 16),
        )
        for name, flag, least in checks:
            value = getattr(self, name)
            if value is not None and value < least:
                what = flag if flag == f"--{name}" else f"{flag} ({name})"
                raise ConfigError(f"{what} must be >= {least}, got {value}")
        if self.amp_anyway and not self.amp:
            raise ConfigError("--amp_anyway insists on --amp's bfloat16: it needs --amp")
        if self.winograd and self.amp:
            raise ConfigError("--winograd computes float32 convolutions; it does not combine with --amp")
