"""Runs that must not quietly do something other than what was asked: resuming another
run or with other settings, saving nothing, ImageNet weights nobody needs, preparation
rules other than the reference's, version floors and pins."""

import dataclasses
import os

import cv2
import numpy as np
import pytest
import torch
import torchvision
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from PIL import Image

import train
from model.checkpoint import read_checkpoint
from model.training_run import TrainingRun, find_resume_checkpoint, training_differences
from scripts import resize_length, resize_youtube
from tests.helpers import REPO, args_for, offline_download
from util.configuration import TrainConfig
from util.errors import CheckpointError, ConfigError


def train_args(root, save_root, run_id="t", iterations=2, extra=()):
    """args_for with another --id (None: no --id at all) and ImageNet left to the run."""
    args = [a for a in args_for(root, save_root, iterations=iterations) if a != "--no_imagenet"]
    position = args.index("--id")
    del args[position : position + 2]
    return args + (["--id", run_id] if run_id is not None else []) + list(extra)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty torch cache and no network: any download fails (and is counted)."""
    cache, attempts = tmp_path / "torch_home", []
    cache.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(cache))

    def download(url, *args, **kwargs):
        attempts.append(url)
        offline_download(url)

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    return cache, attempts


def test_resume_auto_matches_the_id_exactly_and_refuses_other_settings(tmp_path):
    """Runs s0 and ablation_s0 side by side (the latter newer), and the reference's
    saves/<id>/ layout; then a resume with another --lr."""

    def parse(*extra):
        return TrainConfig.parse(["--stage", "3", "--save_root", str(tmp_path), "--resume", "auto", *extra])[0]

    def checkpoint(folder, it, config):
        folder.mkdir()
        path = folder / f"{folder.name}_checkpoint.pth"
        torch.save({"it": it, "network": {}, "config": dataclasses.asdict(config)}, path)
        return path

    s0 = checkpoint(tmp_path / "Nov29_10.00.00_s0", 2, parse("--id", "s0"))
    ablation = checkpoint(tmp_path / "Nov29_11.00.00_ablation_s0", 1, parse("--id", "ablation_s0"))
    reference = checkpoint(tmp_path / "ref", 3, parse("--id", "ref"))
    newer = s0.stat().st_mtime + 60
    os.utime(ablation, (newer, newer))  # what a glob of *_s0 would pick
    assert find_resume_checkpoint(tmp_path, "s0") == s0
    assert find_resume_checkpoint(tmp_path, "ablation_s0") == ablation
    assert find_resume_checkpoint(tmp_path, "ref") == reference
    assert find_resume_checkpoint(tmp_path, "0") is None
    run = TrainingRun(parse("--id", "s0"), main_process=True)
    assert run.folder == s0.parent and run.start_iteration == 2

    with pytest.raises(
        ConfigError,
        match=r"(?s)trained with other settings.*--lr: 4e-05 in the checkpoint, "
        r"0\.001 now.*--resume_anyway",
    ) as refused:
        TrainingRun(parse("--id", "s0", "--lr", "1e-3"), main_process=True)
    assert str(s0) in str(refused.value) and "--iterations" not in str(refused.value)
    notes = []
    run = TrainingRun(parse("--id", "s0", "--lr", "1e-3", "--resume_anyway"), main_process=True, log=notes.append)
    assert run.folder == s0.parent and "--lr: 4e-05 in the checkpoint" in notes[0]


def test_resume_accepts_a_longer_run_and_new_validation_saying_so_once(tmp_path):
    def parse(*extra):
        return TrainConfig.parse(
            ["--stage", "3", "--save_root", str(tmp_path), "--id", "s", "--resume", "auto", *extra]
        )[0]

    folder = tmp_path / "Nov29_10.00.00_s"
    folder.mkdir()
    recorded = parse("-i", "40", "--val_videos", "data/val", "--val_interval", "10")
    best = {"it": 20, "jf": 0.5}
    torch.save(
        {"it": 20, "network": {}, "config": dataclasses.asdict(recorded), "best": best, "scaler": {}, "rng": [{}]},
        folder / "s_checkpoint.pth",
    )

    notes = []
    same_validation = parse("-i", "60", "--val_videos", "data/val/", "--val_interval", "5")
    run = TrainingRun(same_validation, main_process=True, log=notes.append)
    assert run.start_iteration == 20 and run.best == best  # the same videos: the best so far stands
    assert len(notes) == 1 and "continues with settings that do not change" in notes[0]
    assert "--iterations: 40 in the checkpoint, 60 now (the max-skip curriculum" in notes[0]
    assert "--val_interval: 10 in the checkpoint, 5 now" in notes[0] and "--val_videos" not in notes[0]

    notes = []
    run = TrainingRun(parse("-i", "40", "--val_videos", "other", "--val_max_size", "64"), True, log=notes.append)
    assert run.best is None  # measured on other videos: not comparable
    assert len(notes) == 1 and "--val_videos: data/val in the checkpoint, other now" in notes[0]
    assert "--val_max_size: None in the checkpoint, 64 now" in notes[0] and "J&F 0.5000 at iteration 20" in notes[0]
    assert "--iterations" not in notes[0]

    notes = []
    TrainingRun(parse("-i", "40"), True, log=notes.append)  # validation dropped: said, accepted
    assert len(notes) == 1 and "--val_videos: data/val in the checkpoint, None now" in notes[0]

    # what changes training is still refused, a longer run or not
    for extra, difference in (
        (("-i", "30"), "--iterations: 40 in the checkpoint, 30 now"),
        (("-i", "80", "--lr", "1e-3"), "--lr: 4e-05 in the checkpoint, 0.001 now"),
        (("-i", "80", "--steps", "50"), "--steps: 25000 in the checkpoint, 50 now"),
        (("-i", "80", "--crop_size", "192"), "--crop_size: 384 in the checkpoint, 192 now"),
    ):
        with pytest.raises(ConfigError, match="other settings that change training") as refused:
            TrainingRun(parse(*extra, "--val_videos", "data/val"), True, log=notes.append)
        assert difference in str(refused.value) and "--iterations: 40 in the checkpoint, 80" not in str(refused.value)


def test_training_differences_name_each_setting_and_the_global_batch():
    recorded = {
        "config": dataclasses.asdict(TrainConfig(stage=3, id="a", davis_root="data/DAVIS")),
        "rng": [{}, {}],
    }  # two processes
    same = TrainConfig(stage=3, id="b", davis_root="data/DAVIS/", num_workers=0, device="cpu", amp=False)
    assert training_differences(recorded, same, world_size=2) == []
    other = TrainConfig(stage=3, id="a", davis_root="/elsewhere", steps=(10, 20), iterations=100)
    assert training_differences(recorded, other, world_size=1) == [
        "--davis_root: data/DAVIS in the checkpoint, /elsewhere now",
        "--iterations: 30000 in the checkpoint, 100 now",
        "--steps: 25000 in the checkpoint, 10 20 now",
        "batch: 8 per process x 2 processes in the checkpoint, 8 x 1 now",
    ]
    assert training_differences(recorded, TrainConfig(stage=3, global_batch_size=16), world_size=2) == []
    assert training_differences({"it": 5}, other, world_size=1) == []  # the reference's: nothing recorded


@pytest.mark.slow
def test_a_run_without_id_from_load_network_offline(synthetic_root, golden_weights_file, offline, tmp_path, capsys):
    """No --id: the run saves as stage<N> and says so. --load_network with an empty torch
    cache and no network: the ImageNet weights it replaces are not asked for; without it
    they are downloaded, and offline one error says what to do."""
    cache, attempts = offline
    run = train.main(
        train_args(synthetic_root, tmp_path, None, iterations=1, extra=["--load_network", str(golden_weights_file)])
    )
    assert run.parent == tmp_path and run.name.endswith("_stage3")
    assert read_checkpoint(run / f"{run.name}_checkpoint.pth")["it"] == 1
    assert f"no --id given: run 'stage3', saved in {run}" in capsys.readouterr().out
    assert not attempts and not os.listdir(cache)

    with pytest.raises(CheckpointError) as offline_error:
        train.main(train_args(synthetic_root, tmp_path / "fresh", iterations=1))
    message = str(offline_error.value)
    assert len(attempts) == 1 and "the download failed" in message and "--no_imagenet" in message
    for name in ("resnet50-0676ba61.pth", "resnet18-f37072fd.pth"):
        assert str(cache / "hub" / "checkpoints" / name) in message
    assert not (tmp_path / "fresh").exists() or not os.listdir(tmp_path / "fresh")  # no empty run folder


def test_id_null_saves_nothing_and_says_so(tmp_path):
    config = TrainConfig.parse(["--id", "NULL", "--save_root", str(tmp_path)])[0]
    run = TrainingRun(config, main_process=True)
    assert run.folder is None and "--id NULL: nothing is saved" in run.describe()
    with pytest.raises(ConfigError, match="needs the --id"):
        TrainConfig.parse(["--resume", "auto"])


def generated_image(w: int, h: int, seed: int) -> np.ndarray:
    """A smooth gradient with noise (RGB uint8): resampling shows in every pixel."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)], -1)
    return np.clip(base + rng.randint(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)


def test_static_images_follow_the_reference_resize_length(tmp_path):
    """Short side to --min_length with cv2.INTER_AREA, images and masks alike, smaller
    images enlarged, with the reference's rounding (35x28 to short side 48: 59x48)."""
    src, out, expected = tmp_path / "BIG", tmp_path / "BIG_small", tmp_path / "expected"
    src.mkdir(), expected.mkdir()
    for name, (w, h) in (("large", (96, 64)), ("small", (35, 28))):
        Image.fromarray(generated_image(w, h, 0)).save(src / f"{name}.jpg", quality=90)
        Image.fromarray(np.where(generated_image(w, h, 1)[..., 0] > 128, 255, 0).astype(np.uint8)).save(
            src / f"{name}.png"
        )
    assert resize_length.main([str(src), str(out), "--min_length", "48"])["resized"] == 4
    for f in sorted(os.listdir(src)):  # the reference's resize_length.py, step by step
        img = cv2.imread(os.path.join(src, f))
        h, w, _ = img.shape
        scale = min(h, w) / 48
        img = cv2.resize(img, (int(w / scale), int(h / scale)), interpolation=cv2.INTER_AREA)
        cv2.imwrite(os.path.join(expected, f), img)
        assert (out / f).read_bytes() == (expected / f).read_bytes(), f
    assert cv2.imread(str(out / "small.jpg")).shape == (48, 59, 3)
    assert cv2.imread(str(out / "large.png")).shape == (48, 72, 3)


def test_youtube_frames_follow_the_reference_resize_youtube(tmp_path):
    """Short side to --size with PIL: frames bicubic, saved at PIL's default JPEG quality,
    masks nearest (palette kept), with the reference's rounding (35x28 to 48: 60x48)."""
    src, out = tmp_path / "train", tmp_path / "train_480p"
    (src / "JPEGImages" / "v").mkdir(parents=True), (src / "Annotations" / "v").mkdir(parents=True)
    Image.fromarray(generated_image(35, 28, 2)).save(src / "JPEGImages" / "v" / "00000.jpg", quality=90)
    mask = Image.fromarray((generated_image(35, 28, 3)[..., 0] // 100).astype(np.uint8), mode="P")
    mask.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0])
    mask.save(src / "Annotations" / "v" / "00000.png")
    resize_youtube.main([str(src), str(out), "--size", "48"])
    for sub, name, resample in (
        ("JPEGImages", "00000.jpg", Image.Resampling.BICUBIC),
        ("Annotations", "00000.png", Image.Resampling.NEAREST),
    ):
        hr_im = Image.open(src / sub / "v" / name)  # the reference's resize_youtube.py, step by step
        w, h = hr_im.size
        ratio = 48 / min(w, h)
        lr_im = hr_im.resize((int(w * ratio), int(h * ratio)), resample)
        lr_im.save(tmp_path / name)
        assert (out / sub / "v" / name).read_bytes() == (tmp_path / name).read_bytes(), name
    assert Image.open(out / "JPEGImages" / "v" / "00000.jpg").size == (60, 48)
    assert Image.open(out / "Annotations" / "v" / "00000.png").getpalette()[:9] == [0, 0, 0, 128, 0, 0, 0, 128, 0]


def requirement_lines(name: str) -> list[str]:
    lines = [line.split("#")[0].strip() for line in (REPO / name).read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("-")]


def test_constraints_pin_every_requirement_within_its_floor():
    """constraints.txt (what `make venv` installs with) pins an exact version of every
    package the requirement files name, inside their ranges; the running torch and
    torchvision are inside them too."""
    pins = {}
    for line in requirement_lines("constraints.txt"):
        name, version = line.split("==")
        pins[canonicalize_name(name)] = Version(version)
    named = [
        line
        for name in ("requirements.txt", "requirements-dev.txt", "requirements-app.txt")
        for line in requirement_lines(name)
    ]
    ranges = {canonicalize_name(r.name): r.specifier for r in map(Requirement, named)}
    assert {"torch", "torchvision", "numpy", "pytest"} <= ranges.keys()
    for name, specifier in ranges.items():
        assert name in pins, f"constraints.txt does not pin {name}"
        assert specifier.contains(pins[name]), f"{name}=={pins[name]} is outside {specifier}"
    for module in (torch, torchvision):
        assert ranges[module.__name__].contains(Version(module.__version__).base_version), module.__version__
    install = next(line for line in (REPO / "Makefile").read_text().splitlines() if "pip install -q -r" in line)
    assert "-r requirements-dev.txt" in install and install.endswith("-c constraints.txt")
