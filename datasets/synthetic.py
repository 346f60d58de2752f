"""Deterministic synthetic benchmark data in the real on-disk layouts.

Small videos of textured objects that move, scale, rotate and occlude each other over a
textured background, with palette annotations, written as
- DAVIS 2017 (``DAVIS/2017/trainval`` with ``ImageSets/2017/{train,val}.txt`` and
  ``ImageSets/2016/val.txt``, ``DAVIS/2017/test-dev``) and DAVIS 2016 (``DAVIS/2016``),
- YouTube-VOS (``YouTube/train_480p``, ``YouTube/valid`` with ``meta.json``, objects that
  enter later, annotations every 5th frame, and ``all_frames/valid_all_frames``),
- static-image folders (``static/DUTS-TR``, ... and FSS-style class folders),
- and apart: ``generate_custom``, a user's own videos for ``train.py --videos`` and
  ``--val_videos``; ``generate_benchmarks``, MOSE, LVOS, VOST and SA-V in their download layouts.
Used by the demo and by every test that needs data on disk.

    python -m datasets.synthetic data/synthetic --videos 6 --frames 12 --size 96 160
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from util import cli
from util.log import get_logger
from util.palette import davis_palette

logger = get_logger(__name__)

PALETTE = davis_palette()


# Object radius range, as a fraction of the frame's short side (the generator's default).
OBJECT_SIZE = (0.12, 0.22)


@dataclass
class SyntheticConfig:
    root: Path
    seed: int = 0
    height: int = 96
    width: int = 160
    frames: int = 12
    train_videos: int = 6
    val_videos: int = 3
    max_objects: int = 3
    static_images: int = 12
    # Difficulty: object radius as a fraction of the short side, and how strongly the
    # background's texture varies around its mean colour (1: as strong as the objects').
    object_size: tuple[float, float] = OBJECT_SIZE
    background_contrast: float = 1.0


def _texture(
    rng: np.random.RandomState, h: int, w: int, base: np.ndarray, scale: int, contrast: float = 1.0
) -> np.ndarray:
    """Smooth random colour texture around a base colour, with stripes; ``contrast``
    scales its variation around the mean."""
    noise = rng.rand(max(2, h // scale), max(2, w // scale), 3)
    noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    freq = rng.uniform(0.1, 0.5)
    angle = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:h, 0:w]
    stripes = 0.5 + 0.5 * np.sin(freq * (xx * np.cos(angle) + yy * np.sin(angle)))
    tex = base[None, None] * (0.6 + 0.4 * stripes[..., None]) + 80 * (noise - 0.5)
    if contrast != 1.0:
        tex = tex.mean((0, 1)) + contrast * (tex - tex.mean((0, 1)))
    return np.clip(tex, 0, 255)


class _Object:
    def __init__(self, rng: np.random.RandomState, h: int, w: int, start: int, size: tuple[float, float] = OBJECT_SIZE):
        self.start = start
        self.base = rng.uniform(30, 255, 3)
        self.tex = _texture(rng, h, w, self.base, 6)
        self.size0 = rng.uniform(*size) * min(h, w)
        self.scale_rate = rng.uniform(-0.02, 0.03)
        self.pos0 = np.array([rng.uniform(0.25, 0.75) * w, rng.uniform(0.25, 0.75) * h])
        self.vel = rng.uniform(-1, 1, 2) * min(h, w) * 0.025
        self.angle0, self.spin = rng.uniform(0, 180), rng.uniform(-8, 8)
        self.aspect = rng.uniform(0.5, 1.0)
        self.kind = rng.randint(3)  # ellipse, rectangle, triangle
        self.gap: tuple[int, int] | None = None  # frames [a, b) where the object is absent

    def mask(self, t: int, h: int, w: int) -> np.ndarray:
        canvas = np.zeros((h, w), np.uint8)
        if t < self.start or (self.gap is not None and self.gap[0] <= t < self.gap[1]):
            return canvas.astype(bool)
        dt = t - self.start
        pos = self.pos0 + self.vel * dt
        # bounce inside the frame so objects stay visible
        for i, lim in enumerate((w, h)):
            period = 2 * lim
            p = pos[i] % period
            pos[i] = p if p < lim else period - p
        size = self.size0 * (1 + self.scale_rate * dt)
        angle = self.angle0 + self.spin * dt
        centre = (int(pos[0]), int(pos[1]))
        axes = (max(3, int(size)), max(3, int(size * self.aspect)))
        if self.kind == 0:
            cv2.ellipse(canvas, centre, axes, angle, 0, 360, 1, -1)
        else:
            n = 4 if self.kind == 1 else 3
            pts = [
                (
                    centre[0] + axes[0] * np.cos(np.radians(angle + k * 360 / n)),
                    centre[1] + axes[1] * np.sin(np.radians(angle + k * 360 / n)),
                )
                for k in range(n)
            ]
            cv2.fillPoly(canvas, [np.array(pts, np.int32)], 1)
        return canvas.astype(bool)


def make_video(
    rng: np.random.RandomState,
    h: int,
    w: int,
    frames: int,
    num_objects: int,
    late_objects: bool,
    step: int = 1,
    object_size: tuple[float, float] = OBJECT_SIZE,
    background_contrast: float = 1.0,
    gaps: dict[int, tuple[int, int]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(T, H, W, 3) uint8 frames and (T, H, W) uint8 labels 0..num_objects.

    With ``late_objects`` every object but the first enters on a later frame, a multiple
    of ``step`` (YouTube-VOS annotates every 5th frame). ``gaps``: label -> frames [a, b)
    where that object is absent (it leaves and returns, as in MOSE).
    """
    background = _texture(rng, h, w, rng.uniform(60, 200, 3), 12, background_contrast)
    drift = rng.uniform(-1, 1, 2)
    late_starts = list(range(step, max(step + 1, frames // 2 + 1), step))
    starts = [0] + [int(rng.choice(late_starts)) if late_objects else 0 for _ in range(num_objects - 1)]
    objects = [_Object(rng, h, w, s, object_size) for s in starts]
    for label, gap in (gaps or {}).items():
        objects[label - 1].gap = gap
    images, labels = [], []
    for t in range(frames):
        shift = np.float32([[1, 0, drift[0] * t], [0, 1, drift[1] * t]])
        img = cv2.warpAffine(background, shift, (w, h), borderMode=cv2.BORDER_REFLECT)
        lab = np.zeros((h, w), np.uint8)
        for label, obj in enumerate(objects, start=1):  # later objects occlude earlier ones
            m = obj.mask(t, h, w)
            img[m] = obj.tex[m]
            lab[m] = label
        images.append(np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8))
        labels.append(lab)
    return np.stack(images), np.stack(labels)


def _save_png(labels: np.ndarray, path: Path, binary: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if binary:
        Image.fromarray(((labels > 0) * 255).astype(np.uint8), mode="L").save(path)
    else:
        img = Image.fromarray(labels, mode="P")
        img.putpalette(PALETTE)
        img.save(path)


def _save_jpg(image: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, quality=95)


def _write_list(path: Path, names: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(n + "\n" for n in names))


def generate(cfg: SyntheticConfig) -> Path:
    """Write every layout under ``cfg.root``; returns the root. Skips when already complete."""
    root = Path(cfg.root)
    done = root / ".complete"
    if done.exists() and json.loads(done.read_text()) == _describe(cfg):
        return root
    if root.exists():
        shutil.rmtree(root)
    rng = np.random.RandomState(cfg.seed)
    h, w, n = cfg.height, cfg.width, cfg.frames
    style = dict(object_size=cfg.object_size, background_contrast=cfg.background_contrast)

    # DAVIS 2017 trainval + DAVIS 2016
    trainval = root / "DAVIS" / "2017" / "trainval"
    davis16 = root / "DAVIS" / "2016"
    train_names = [f"train{i:02d}" for i in range(cfg.train_videos)]
    val_names = [f"val{i:02d}" for i in range(cfg.val_videos)]
    for name in train_names + val_names:
        k = rng.randint(1, cfg.max_objects + 1) if name.startswith("train") else cfg.max_objects
        images, labels = make_video(rng, h, w, n, k, late_objects=False, **style)
        for t in range(n):
            _save_jpg(images[t], trainval / "JPEGImages" / "480p" / name / f"{t:05d}.jpg")
            _save_png(labels[t], trainval / "Annotations" / "480p" / name / f"{t:05d}.png")
            if name in val_names:  # DAVIS 2016: the union of the objects, 0/255
                _save_jpg(images[t], davis16 / "JPEGImages" / "480p" / name / f"{t:05d}.jpg")
                _save_png(labels[t], davis16 / "Annotations" / "480p" / name / f"{t:05d}.png", binary=True)
    _write_list(trainval / "ImageSets" / "2017" / "train.txt", train_names)
    _write_list(trainval / "ImageSets" / "2017" / "val.txt", val_names)
    _write_list(trainval / "ImageSets" / "2016" / "val.txt", val_names)
    _write_list(root / "davis_subset.txt", train_names)

    # DAVIS 2017 test-dev: first-frame annotations only
    testdev = root / "DAVIS" / "2017" / "test-dev"
    test_names = [f"test{i:02d}" for i in range(max(1, cfg.val_videos // 2))]
    for name in test_names:
        images, labels = make_video(rng, h, w, n, 2, late_objects=False, **style)
        for t in range(n):
            _save_jpg(images[t], testdev / "JPEGImages" / "480p" / name / f"{t:05d}.jpg")
        _save_png(labels[0], testdev / "Annotations" / "480p" / name / "00000.png")
    _write_list(testdev / "ImageSets" / "2017" / "test-dev.txt", test_names)

    # YouTube-VOS: train (annotations every 5th frame, "480p" already) and valid
    yv = root / "YouTube"
    yv_train_names = [f"yvtrain{i:02d}" for i in range(cfg.train_videos)]
    for name in yv_train_names:
        images, labels = make_video(
            rng, h, w, n * 5 // 2, rng.randint(1, cfg.max_objects + 1), late_objects=True, **style
        )
        for t in range(0, len(images), 5):
            _save_jpg(images[t], yv / "train_480p" / "JPEGImages" / name / f"{t:05d}.jpg")
            _save_png(labels[t], yv / "train_480p" / "Annotations" / name / f"{t:05d}.png")
    _write_list(root / "yv_subset.txt", yv_train_names)
    meta = {"videos": {}}
    for i in range(cfg.val_videos):
        name = f"yvval{i:02d}"
        # label ids need not be consecutive on YouTube-VOS
        images, labels = make_video(rng, h, w, n, max(2, cfg.max_objects), late_objects=True, step=5, **style)
        ids = sorted(rng.choice(np.arange(1, 8), size=labels.max(), replace=False))
        labels = np.array([0] + list(ids), np.uint8)[labels]
        objects = {}
        for label in ids:
            present = [t for t in range(n) if (labels[t] == label).any()]
            first = present[0]
            objects[str(label)] = {"category": "thing", "frames": [f"{t:05d}" for t in range(first, n, 5)]}
        # annotations: on each object's first frame, only the objects that appear there
        first_frames = {}
        for label in ids:
            first_frames.setdefault(min(t for t in range(n) if (labels[t] == label).any()), []).append(label)
        for t in range(n):
            _save_jpg(images[t], yv / "all_frames" / "valid_all_frames" / "JPEGImages" / name / f"{t:05d}.jpg")
            if t % 5 == 0:
                _save_jpg(images[t], yv / "valid" / "JPEGImages" / name / f"{t:05d}.jpg")
        for t, labs in first_frames.items():
            ann = np.where(np.isin(labels[t], labs), labels[t], 0).astype(np.uint8)
            _save_png(ann, yv / "valid" / "Annotations" / name / f"{t:05d}.png")
        meta["videos"][name] = {"objects": objects}
        np.save(root / f"{name}_labels.npy", labels)  # full ground truth, for tests
    (yv / "valid").mkdir(parents=True, exist_ok=True)
    (yv / "valid" / "meta.json").write_text(json.dumps(meta, indent=1))

    # Static images (stage 0): flat X.jpg/X.png folders and FSS-style class folders
    static = root / "static"
    for folder in ("DUTS-TR", "DUTS-TE", "ecssd", "BIG_small", "HRSOD_small"):
        for i in range(max(1, cfg.static_images // 5)):
            images, labels = make_video(rng, h, w, 1, 1, late_objects=False, **style)
            _save_jpg(images[0], static / folder / f"im{i:03d}.jpg")
            _save_png(labels[0], static / folder / f"im{i:03d}.png", binary=True)
    for c in range(2):
        for i in range(max(1, cfg.static_images // 5)):
            images, labels = make_video(rng, h, w, 1, 1, late_objects=False, **style)
            _save_jpg(images[0], static / "fss" / f"class{c}" / f"{i + 1}.jpg")
            _save_png(labels[0], static / "fss" / f"class{c}" / f"{i + 1}.png", binary=True)

    done.write_text(json.dumps(_describe(cfg)))
    return root


@dataclass
class CustomConfig:
    """A user's own videos, as ``train.py --videos`` and ``--val_videos`` take them: names
    that follow no benchmark, every frame in ``JPEGImages`` but training annotations only
    every ``interval``-th frame (as YouTube-VOS and MOSE), full ground truth for validation,
    and one training video too short to give a clip."""

    root: Path
    seed: int = 0
    height: int = 64
    width: int = 96
    frames: int = 16
    train_videos: int = 3
    val_videos: int = 2
    val_frames: int = 8
    interval: int = 5
    max_objects: int = 2
    object_size: tuple[float, float] = OBJECT_SIZE
    background_contrast: float = 1.0


# docs/FINE_TUNING.md's example videos (python -m datasets.synthetic --custom OUT): 12
# training videos of 16 frames at 96x160 annotated every 5th, 2 validation videos of 8, in
# the demo's style (one larger object per video on a low-contrast background)
FINE_TUNING_EXAMPLE = dict(
    seed=5,
    height=96,
    width=160,
    frames=16,
    train_videos=12,
    val_videos=2,
    val_frames=8,
    interval=5,
    max_objects=1,
    object_size=(0.2, 0.32),
    background_contrast=0.4,
)
SHORT_VIDEO = "site-Z_case999"  # 2 annotated frames: reported at start-up, left out


def custom_video_name(index: int, split: str) -> str:
    return f"site-{'ABC'[index % 3]}_{split}-case{index:03d}"


def generate_custom(cfg: CustomConfig) -> Path:
    """Write ``<root>/train`` and ``<root>/val`` (``JPEGImages/<video>/frame_NNNNN.jpg``,
    ``Annotations/<video>/frame_NNNNN.png``); returns the root. Skips when already complete."""
    root = Path(cfg.root)
    done = root / ".complete"
    if done.exists() and json.loads(done.read_text()) == _describe(cfg):
        return root
    if root.exists():
        shutil.rmtree(root)
    rng = np.random.RandomState(cfg.seed)
    style = dict(object_size=cfg.object_size, background_contrast=cfg.background_contrast)
    train = [(custom_video_name(i, "train"), cfg.frames) for i in range(cfg.train_videos)]
    train.append((SHORT_VIDEO, cfg.interval + 1))  # annotations at 0 and interval only
    val = [(custom_video_name(i, "val"), cfg.val_frames) for i in range(cfg.val_videos)]
    for split, videos, every in (("train", train, cfg.interval), ("val", val, 1)):
        for name, length in videos:
            objects = rng.randint(1, cfg.max_objects + 1) if split == "train" else cfg.max_objects
            images, labels = make_video(rng, cfg.height, cfg.width, length, objects, late_objects=False, **style)
            for t in range(length):
                _save_jpg(images[t], root / split / "JPEGImages" / name / f"frame_{t:05d}.jpg")
                if t % every == 0:
                    _save_png(labels[t], root / split / "Annotations" / name / f"frame_{t:05d}.png")
    done.write_text(json.dumps(_describe(cfg)))
    return root


def generate_benchmarks(root: Path, seed: int = 0, height: int = 64, width: int = 96) -> Path:
    """Small MOSE, LVOS, VOST and SA-V datasets in their download layouts under ``root``
    (``MOSE``, ``LVOS``, ``VOST``, ``SAV``), each with what makes its protocol differ:
    MOSE objects that leave and return (train: every frame annotated, with meta.json;
    valid: the first frame only), LVOS objects that enter later (every object annotated on
    every 5th frame, 1-based names, ``valid_meta.json``, one unseen video), VOST with void
    (255) regions and 10 fps frames beside the 5 fps ones, SA-V with one binary PNG per
    object, where one object's mask lies inside another's. Returns ``root``."""
    root = Path(root)
    rng = np.random.RandomState(seed)
    h, w = height, width

    # MOSE v1/v2: %05d names; an object leaves for frames [3, 6) and returns
    mose = root / "MOSE"
    for split, count in (("train", 2), ("valid", 1)):
        meta = {"videos": {}}
        for i in range(count):
            name = f"mose{split}{i}"
            frames = 9
            images, labels = make_video(rng, h, w, frames, 2, late_objects=False, gaps={2: (3, 6)} if i == 0 else None)
            for t in range(frames):
                _save_jpg(images[t], mose / split / "JPEGImages" / name / f"{t:05d}.jpg")
                if split == "train" or t == 0:
                    _save_png(labels[t], mose / split / "Annotations" / name / f"{t:05d}.png")
            meta["videos"][name] = {
                "length": frames,
                "height": h,
                "width": w,
                "objects": [str(o) for o in sorted(set(np.unique(labels[0]).tolist()) - {0})],
            }
        (mose / split / "meta.json").write_text(json.dumps(meta, indent=1))

    # LVOS: %08d names from 1; objects enter on later 5th frames; all objects annotated every 5th frame
    lvos = root / "LVOS" / "valid"
    meta = {"videos": {}}
    names = ["lvos0", "lvos1"]
    for name in names:
        frames = 16
        images, labels = make_video(rng, h, w, frames, 3, late_objects=True, step=5)
        objects = {}
        for label in sorted(set(np.unique(labels).tolist()) - {0}):
            first = min(t for t in range(0, frames, 5) if (labels[t] == label).any())
            count = len(range(first, frames, 5))
            objects[str(label)] = {
                "frame_range": {"start": first + 1, "end": first + 1 + 5 * count, "frame_nums": count}
            }
        for t in range(frames):
            _save_jpg(images[t], lvos / "JPEGImages" / name / f"{t + 1:08d}.jpg")
            if t % 5 == 0:
                _save_png(labels[t], lvos / "Annotations" / name / f"{t + 1:08d}.png")
        meta["videos"][name] = {"objects": objects}
    (lvos / "valid_meta.json").write_text(json.dumps(meta, indent=1))
    _write_list(lvos / "unseen_videos.txt", names[1:])

    # VOST: 10 fps frames, every other one at 5 fps and annotated; a void (255) band
    vost = root / "VOST"
    names = ["vost0", "vost1"]
    for name in names:
        frames = 12
        images, labels = make_video(rng, h, w, frames, 2, late_objects=False)
        for t in range(frames):
            _save_jpg(images[t], vost / "JPEGImages_10fps" / name / f"{t:05d}.jpg")
            if t % 2 == 0:
                _save_jpg(images[t], vost / "JPEGImages" / name / f"{t:05d}.jpg")
                ann = labels[t].copy()
                ann[h // 3 : h // 2, :] = 255  # void: never an object; background to the scorer
                _save_png(ann, vost / "Annotations" / name / f"{t:05d}.png")
    _write_list(vost / "ImageSets" / "val.txt", names)

    # SA-V: 24 fps frames, every 4th annotated; object 000 is the union, 001 a part of it
    sav = root / "SAV"
    names = ["sav_000001", "sav_000002"]
    for name in names:
        frames = 13
        images, labels = make_video(rng, h, w, frames, 2, late_objects=False)
        for t in range(frames):
            _save_jpg(images[t], sav / "JPEGImages_24fps" / name / f"{t:05d}.jpg")
            if t % 4 == 0:
                for obj, mask in enumerate((labels[t] > 0, labels[t] == 2)):
                    _save_png(mask.astype(np.uint8), sav / "Annotations_6fps" / name / f"{obj:03d}" / f"{t:05d}.png")
    _write_list(sav / "sav_val.txt", names)
    return root


def _describe(cfg: SyntheticConfig | CustomConfig) -> dict:
    d = dict(cfg.__dict__)
    d["root"] = str(d["root"])
    return json.loads(json.dumps(d))  # tuples as lists, as read back from the file


def main(argv: list[str] | None = None) -> None:
    p = cli.argument_parser(__doc__)
    p.add_argument("root", type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, nargs=2, default=(96, 160), metavar=("H", "W"))
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--videos", type=int, default=6, help="training videos per dataset")
    p.add_argument("--val_videos", type=int, default=3)
    p.add_argument("--max_objects", type=int, default=3)
    p.add_argument(
        "--custom",
        action="store_true",
        help="write docs/FINE_TUNING.md's example of your own videos instead (ROOT/train, ROOT/val: "
        "for train.py --videos and --val_videos); the other options do not apply",
    )
    args = p.parse_args(argv)
    if args.custom:
        generate_custom(CustomConfig(args.root, **FINE_TUNING_EXAMPLE))
        logger.info(f"example custom videos written to {args.root}/train and {args.root}/val")
        return
    generate(
        SyntheticConfig(
            args.root,
            args.seed,
            args.size[0],
            args.size[1],
            args.frames,
            args.videos,
            args.val_videos,
            args.max_objects,
        )
    )
    logger.info(f"synthetic datasets written to {args.root}")


if __name__ == "__main__":
    cli.run(main)
