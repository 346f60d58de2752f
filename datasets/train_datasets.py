"""Training data: static images turned into 3-frame pseudo-videos (stage 0) and 3-frame
samples of annotated videos (DAVIS, YouTube-VOS, BL30K; stages 1-3).

Augmentations are the reference's. Randomness: every sample draws from its own seed,
derived from (run seed, epoch, index in the whole concatenated training set), instead of
the process-global generators the reference uses. Each index draws independently, as in the
reference (the 5 copies of a repeated dataset give different clips), and the data is the same
whatever the number of workers and exactly reproducible after a resume.
"""

from __future__ import annotations

import bisect
import math
import random
import re
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms
from torchvision.transforms import InterpolationMode

from datasets.tps import random_tps_warp
from datasets.video_layout import find_video_layout
from util.configuration import CLIP_FRAMES, ImageFolders, TrainConfig, VideoFolders
from util.errors import ConfigError, DatasetError, UnreadableImage
from util.palette import image_files, open_image
from util.rng import seeded
from util.tensor_util import IMAGENET_MEAN, IMAGENET_STD

FILL = (124, 116, 104)  # the ImageNet mean as a colour, for padding
MAX_BAD_FILES = 20  # unreadable training files tolerated (each skipped with a warning)
TPS_PROBABILITY = 0.33  # static images: share of frames given a thin-plate-spline warp
TPS_SCALE = 0.02  # its control points move by N(0, this) of the image size
MAX_FRAME_TRIALS = 5  # video clips: draws of frames until the first frame shows an object
# BL30K objects: large enough in the first frame, or small there and in the other two frames
BL30K_LARGE = 30 * 30
BL30K_SMALL = 10 * 10
BL30K_SMALL_LATER = 20 * 20
FRAME_NUMBER = re.compile(r"(\d+)$")  # the frame number a file name ends with (00005, frame_0005)


def reseed(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


class SeededDataset(Dataset):
    """Per-sample seeds, skipping (with a count) image files that cannot be decoded; any
    other error is a bug or a bad setting and is raised."""

    def __init__(self):
        self.seed, self.epoch = 0, 0
        self.bad_files: set[str] = set()

    def set_epoch(self, seed: int, epoch: int) -> None:
        self.seed, self.epoch = seed, epoch

    def sample_seed(self, seed_index: int, attempt: int = 0) -> int:
        """A 32-bit seed mixed from (run seed, epoch, index, attempt)."""
        return int(np.random.SeedSequence([self.seed, self.epoch, seed_index, attempt]).generate_state(1)[0])

    def __getitem__(self, index: int) -> dict:
        return self.sample(index, seed_index=index)

    def sample(self, index: int, seed_index: int) -> dict:
        """Sample ``index`` of this dataset, drawn from the seed of ``seed_index`` (its index
        in the concatenated training set, so that every copy of a repeated dataset and every
        dataset draws its own)."""
        attempt = 0
        while True:
            try:
                with seeded(self.sample_seed(seed_index, attempt)):
                    return self.load(index)
            except UnreadableImage as e:
                self.bad_files.add(str(e))
                warnings.warn(f"skipping unreadable training sample {index}: {e}")
                if len(self.bad_files) > MAX_BAD_FILES:
                    raise DatasetError(f"more than {MAX_BAD_FILES} unreadable training files, last: {e}") from None
                if attempt + 1 >= len(self):  # every sample tried: none left to stand in
                    raise DatasetError(f"no readable sample in this training set, last: {e}") from None
                index = (index + 1) % len(self)
                attempt += 1

    def load(self, index: int) -> dict:
        raise NotImplementedError


def _final():
    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


class StaticTransformDataset(SeededDataset):
    """Images with a saliency mask -> 3 frames of the same image under different warps.

    ``class_folders``: FSS-1000 (one sub-folder per class); else a flat folder of X.jpg / X.png.
    """

    def __init__(self, root: Path, class_folders: bool = False, crop_size: int = 384):
        super().__init__()
        root = self.root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"{root}: static image folder not found")
        folders = sorted(p for p in root.iterdir() if p.is_dir()) if class_folders else [root]
        self.images = [p for f in folders for p in image_files(f) if p.suffix.lower() == ".jpg"]
        self.crop = crop_size
        c = crop_size
        self.pair_im_lone = transforms.ColorJitter(0.1, 0.05, 0.05, 0)
        self.pair_im_dual = transforms.Compose(
            [
                transforms.RandomAffine(
                    20, scale=(0.9, 1.1), shear=10, interpolation=InterpolationMode.BICUBIC, fill=FILL
                ),
                transforms.Resize(c, InterpolationMode.BICUBIC),
                transforms.RandomCrop((c, c), pad_if_needed=True, fill=FILL),
            ]
        )
        # the mask takes the image's bicubic warp and stays soft, as the reference's (docs/PROTOCOL.md)
        self.pair_gt_dual = transforms.Compose(
            [
                transforms.RandomAffine(
                    20, scale=(0.9, 1.1), shear=10, interpolation=InterpolationMode.BICUBIC, fill=0
                ),
                transforms.Resize(c, InterpolationMode.NEAREST),
                transforms.RandomCrop((c, c), pad_if_needed=True, fill=0),
            ]
        )
        self.all_im_lone = transforms.Compose(
            [transforms.ColorJitter(0.1, 0.05, 0.05, 0.05), transforms.RandomGrayscale(0.05)]
        )
        self.all_im_dual = transforms.Compose(
            [transforms.RandomAffine(0, scale=(0.8, 1.5), fill=FILL), transforms.RandomHorizontalFlip()]
        )
        self.all_gt_dual = transforms.Compose(
            [transforms.RandomAffine(0, scale=(0.8, 1.5), fill=0), transforms.RandomHorizontalFlip()]
        )
        self.final_im = _final()

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int) -> dict:
        path = self.images[index]
        im = open_image(path, "RGB")
        gt = open_image(path.with_suffix(".png"), "L")
        sequence_seed = np.random.randint(2**31 - 1)
        images, masks = [], []
        for _ in range(CLIP_FRAMES):
            reseed(sequence_seed)
            this_im = self.all_im_lone(self.all_im_dual(im))
            reseed(sequence_seed)
            this_gt = self.all_gt_dual(gt)
            pair_seed = np.random.randint(2**31 - 1)
            reseed(pair_seed)
            this_im = self.pair_im_lone(self.pair_im_dual(this_im))
            reseed(pair_seed)
            this_gt = self.pair_gt_dual(this_gt)
            if np.random.rand() < TPS_PROBABILITY:
                im_arr, gt_arr = random_tps_warp(np.asarray(this_im), np.asarray(this_gt), TPS_SCALE, np.random)
                this_im, this_gt = Image.fromarray(im_arr), Image.fromarray(gt_arr)
            images.append(self.final_im(this_im))
            masks.append(transforms.functional.to_tensor(this_gt))  # soft, in [0, 1]: the value encoder's input
        masks = torch.stack(masks)
        return {
            "rgb": torch.stack(images),
            "gt": masks,
            "cls_gt": (masks[:, 0] > 0.5).long(),
            "info": {"name": str(path)},
        }


class VOSDataset(SeededDataset):
    """3 annotated frames of a video within ``max_skip``, one or two target objects.

    Only frames with an annotation are used; with annotations every ``interval`` frames
    (YouTube-VOS: 5) the max skip counts annotated frames (``max_skip // interval`` of
    them), as the reference. ``interval`` None: detected from the annotation file names.
    Videos that cannot give a clip (fewer than 3 annotated frames) are left out and listed
    in ``unusable``."""

    def __init__(
        self,
        im_root: Path,
        gt_root: Path,
        max_skip: int,
        subset: set[str] | None = None,
        crop_size: int = 384,
        crop_scale: tuple[float, float] = (0.36, 1.0),
        small_object_filter: bool = False,
        interval: int | None = None,
        name: str | None = None,
    ):
        super().__init__()
        self.im_root, self.gt_root = Path(im_root), Path(gt_root)
        self.name = name or str(self.im_root.parent)  # what start-up and errors call it
        for folder in (self.im_root, self.gt_root):
            if not folder.is_dir():
                raise DatasetError(f"{folder}: training video folder not found")
        self.small_object_filter = small_object_filter
        self.videos, self.frames, self.unusable = [], {}, {}
        annotated_numbers = []
        folders = sorted(p.name for p in self.im_root.iterdir() if p.is_dir() and not p.name.startswith("."))
        self.outside_subset = 0
        for video in folders:
            if subset is not None and video not in subset:
                self.outside_subset += 1
                continue
            annotated = (
                {p.stem for p in (self.gt_root / video).glob("*.png")} if (self.gt_root / video).is_dir() else set()
            )
            frames = [p.stem for p in image_files(self.im_root / video) if p.stem in annotated]
            if len(frames) < CLIP_FRAMES:
                self.unusable[video] = f"{len(frames)} annotated frames (a clip needs {CLIP_FRAMES})"
                continue
            self.frames[video] = frames
            self.videos.append(video)
            annotated_numbers.append([int(m.group(1)) for m in map(FRAME_NUMBER.search, frames) if m])
        self.folders_found = len(folders)
        self.interval_detected = interval is None
        self.interval = interval or detect_interval(annotated_numbers)
        self.max_jump = max(1, max_skip // self.interval)
        c, scale = crop_size, crop_scale
        self.pair_im_lone = transforms.ColorJitter(0.01, 0.01, 0.01, 0)
        self.pair_im_dual = transforms.RandomAffine(15, shear=10, interpolation=InterpolationMode.BICUBIC, fill=FILL)
        self.pair_gt_dual = transforms.RandomAffine(15, shear=10, interpolation=InterpolationMode.NEAREST, fill=0)
        self.all_im_lone = transforms.Compose(
            [transforms.ColorJitter(0.1, 0.03, 0.03, 0), transforms.RandomGrayscale(0.05)]
        )
        self.all_im_dual = transforms.Compose(
            [
                transforms.RandomHorizontalFlip(),
                transforms.RandomResizedCrop((c, c), scale=scale, interpolation=InterpolationMode.BICUBIC),
            ]
        )
        self.all_gt_dual = transforms.Compose(
            [
                transforms.RandomHorizontalFlip(),
                transforms.RandomResizedCrop((c, c), scale=scale, interpolation=InterpolationMode.NEAREST),
            ]
        )
        self.final_im = _final()

    def __len__(self) -> int:
        return len(self.videos)

    def found(self) -> str:
        """What the folders held: for the error about an empty training set."""
        return (
            f"{self.name}: {self.folders_found} video folders in {self.im_root}"
            + (f", {self.outside_subset} of them outside the subset list" if self.outside_subset else "")
            + (f", {len(self.unusable)} with fewer than {CLIP_FRAMES} annotated frames" if self.unusable else "")
            + f"; {len(self)} usable"
        )

    def _pick_frames(self, n: int) -> list[int]:
        jump = min(n, self.max_jump)
        start = np.random.randint(n - jump + 1)
        f1 = min(start + np.random.randint(jump + 1) + 1, n - jump, n - 1)
        f2 = min(f1 + np.random.randint(jump + 1) + 1, n - jump // 2, n - 1)
        order = [start, f1, f2]
        return order[::-1] if np.random.rand() < 0.5 else order

    def load(self, index: int) -> dict:
        video = self.videos[index]
        frames = self.frames[video]
        for _trial in range(MAX_FRAME_TRIALS):
            picked = self._pick_frames(len(frames))
            sequence_seed = np.random.randint(2**31 - 1)
            images, masks = [], []
            for f in picked:
                reseed(sequence_seed)
                im = open_image(self.im_root / video / f"{frames[f]}.jpg", "RGB")
                im = self.all_im_lone(self.all_im_dual(im))
                reseed(sequence_seed)
                gt = self.all_gt_dual(open_image(self.gt_root / video / f"{frames[f]}.png", "P"))
                pair_seed = np.random.randint(2**31 - 1)
                reseed(pair_seed)
                im = self.pair_im_lone(self.pair_im_dual(im))
                reseed(pair_seed)
                gt = self.pair_gt_dual(gt)
                images.append(self.final_im(im))
                masks.append(np.array(gt))
            labels = [int(v) for v in np.unique(masks[0]) if v != 0]
            if self.small_object_filter:
                labels = [
                    v
                    for v in labels
                    if (masks[0] == v).sum() > BL30K_LARGE
                    or (
                        (masks[0] == v).sum() > BL30K_SMALL
                        and max((masks[1] == v).sum(), (masks[2] == v).sum()) < BL30K_SMALL_LATER
                    )
                ]
            if labels:
                break
        masks = np.stack(masks)
        target = int(np.random.choice(labels)) if labels else -1
        others = [v for v in labels if v != target]
        second = int(np.random.choice(others)) if others else None
        tar = torch.from_numpy((masks == target).astype(np.float32))[:, None]
        sec = (
            torch.from_numpy((masks == second).astype(np.float32))[:, None]
            if second is not None
            else torch.zeros_like(tar)
        )
        cls_gt = torch.zeros(tar.shape[0], *tar.shape[2:], dtype=torch.long)
        cls_gt[tar[:, 0] > 0.5] = 1
        cls_gt[sec[:, 0] > 0.5] = 2
        return {
            "rgb": torch.stack(images),
            "gt": tar,
            "sec_gt": sec,
            "cls_gt": cls_gt,
            "selector": torch.tensor([1.0, 1.0 if second is not None else 0.0]),
            "info": {"name": video, "frames": [frames[f] for f in picked]},
        }


def detect_interval(numbers: list[list[int]]) -> int:
    """Annotations every N frames: the most common step between consecutive annotated frame
    numbers of the videos (1 when the file names end in no frame number)."""
    steps = Counter(b - a for video in numbers for a, b in zip(video, video[1:]) if b > a)
    return steps.most_common(1)[0][0] if steps else 1


def read_subset(path: str | None) -> set[str] | None:
    if path is None or path == "all":
        return None
    file = Path(path)
    if not file.is_file():
        raise DatasetError(f"{file}: video subset list not found (use 'all' for every video)")
    return {line.strip() for line in file.read_text().splitlines() if line.strip()}


class ConcatTrainSet(torch.utils.data.ConcatDataset):
    """ConcatDataset whose samples draw from their index in the whole set (see
    ``SeededDataset.sample``); it forwards the per-epoch seed to its parts."""

    def set_epoch(self, seed: int, epoch: int) -> None:
        for d in self.datasets:
            d.set_epoch(seed, epoch)

    def __getitem__(self, index: int) -> dict:
        part = bisect.bisect_right(self.cumulative_sizes, index)
        local = index - (self.cumulative_sizes[part - 1] if part else 0)
        return self.datasets[part].sample(local, seed_index=index)


def _dataset(source: ImageFolders | VideoFolders, config: TrainConfig, max_skip: int) -> SeededDataset:
    if isinstance(source, ImageFolders):
        return StaticTransformDataset(Path(config.static_root) / source.folder, source.class_folders, config.crop_size)
    folder = source.folder(config)
    images, annotations = folder / source.images, folder / source.annotations
    name = str(folder)
    if source.root_option is None:  # --videos: a folder laid out as DAVIS, YouTube-VOS or ours
        layout = find_video_layout(folder)
        images, annotations, name = layout.images, layout.annotations, layout.describe(folder)
    subset = source.subset_file(config)
    if subset not in (None, "all"):
        name += f" (subset {subset})"
    return VOSDataset(
        images,
        annotations,
        max_skip,
        read_subset(subset),
        config.crop_size,
        source.crop_scale,
        source.small_object_filter,
        source.interval,
        name,
    )


def build_train_set(config: TrainConfig, max_skip: int) -> ConcatTrainSet:
    """The run's data mix (the stage's, ``util.configuration.STAGES``, or --videos) at the
    current max skip; each copy of a repeated group is the same dataset object."""
    parts = []
    for group in config.data:
        parts += [_dataset(source, config, max_skip) for source in group.sources] * group.repeat
    dataset = ConcatTrainSet(parts)
    if len(dataset) == 0:
        found = [f"\n  {p.found()}" for p in _distinct(parts) if isinstance(p, VOSDataset)]
        found += [f"\n  {p.root}: {len(p)} images" for p in _distinct(parts) if isinstance(p, StaticTransformDataset)]
        raise DatasetError(f"stage {config.stage}: the training set is empty;" + "".join(found))
    return dataset


def _distinct(parts: list[SeededDataset]) -> list[SeededDataset]:
    """Each dataset once (a repeated group holds the same object several times)."""
    out = []
    for part in parts:
        if not any(part is seen for seen in out):
            out.append(part)
    return out


def describe_train_set(dataset: ConcatTrainSet) -> list[str]:
    """One line per video dataset (videos, copies, annotation interval) and one per video
    that cannot give a clip: what start-up reports."""
    lines = []
    for part in _distinct(dataset.datasets):
        if not isinstance(part, VOSDataset):
            continue
        copies = sum(p is part for p in dataset.datasets)
        lines.append(
            f"{part.name}: {len(part)} videos x {copies}, annotations every {part.interval} "
            f"frame{'s' if part.interval > 1 else ''}" + (" (detected)" if part.interval_detected else "")
        )
        lines += [f"  left out {video}: {reason}" for video, reason in part.unusable.items()]
    return lines


class ResumableSampler(torch.utils.data.Sampler):
    """DistributedSampler's shuffle and rank split, able to start mid-epoch on resume."""

    def __init__(self, size: int, num_replicas: int, rank: int, seed: int):
        self.size, self.num_replicas, self.rank, self.seed = size, num_replicas, rank, seed
        self.num_samples = -(-size // num_replicas)
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def _indices(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        indices = torch.randperm(self.size, generator=g).tolist()
        indices += indices[: self.num_samples * self.num_replicas - len(indices)]
        return indices[self.rank :: self.num_replicas]

    def __iter__(self):
        return iter(self._indices()[self.start :])

    def __len__(self) -> int:
        return self.num_samples - self.start


class TrainData:
    """A stage's batches, epoch by epoch: the max-skip curriculum, this rank's share of
    each epoch, and the same batches again from any iteration on a resume."""

    def __init__(self, config: TrainConfig, batch_size: int, world_size: int, rank: int, pin_memory: bool = False):
        self.config, self.batch_size, self.pin_memory = config, batch_size, pin_memory
        self.max_skip = config.stage_preset.max_skip(0, 1)
        self.dataset = build_train_set(config, self.max_skip)
        self.sampler = ResumableSampler(len(self.dataset), world_size, rank, config.seed)
        self.batches_per_epoch = len(self.sampler) // batch_size
        if self.batches_per_epoch == 0:
            raise ConfigError(
                f"{len(self.dataset)} training samples over {world_size} processes give no full batch of {batch_size}"
            )
        self.total_epochs = math.ceil(config.iterations / self.batches_per_epoch)

    def set_curriculum(self, epoch: int) -> bool:
        """Rebuild the data if the max skip changes at ``epoch``; True when it did."""
        skip = self.config.stage_preset.max_skip(epoch, self.total_epochs)
        if skip == self.max_skip:
            return False
        self.max_skip = skip
        self.dataset = build_train_set(self.config, skip)
        return True

    def loader(self, epoch: int, start_batch: int = 0, num_workers: int | None = None) -> DataLoader:
        """The batches of ``epoch`` from batch ``start_batch`` on (the same ones on a resume)."""
        self.dataset.set_epoch(self.config.seed, epoch)
        self.sampler.set_epoch(epoch, start=start_batch * self.batch_size)
        workers = self.config.num_workers if num_workers is None else num_workers
        return DataLoader(
            self.dataset,
            self.batch_size,
            sampler=self.sampler,
            num_workers=workers,
            drop_last=True,
            pin_memory=self.pin_memory,
        )
