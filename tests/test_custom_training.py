"""Training on your own videos (--videos), validation while training (--val_videos), the
best checkpoint and the crash save."""

import json
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import train
from datasets.synthetic import SHORT_VIDEO, CustomConfig, custom_video_name, generate_custom
from datasets.train_datasets import build_train_set, describe_train_set
from evaluation.validation import Validator, validation_videos
from model.checkpoint import read_checkpoint
from model.network import GSFM
from model.trainer import NonFiniteLossError, Trainer
from tests.helpers import (
    ENV,
    ENV_ONE_THREAD,
    REPO,
    as_args,
    assert_same_weights,
    fault_config,
    final_weights,
    run_ok,
    tiny_run_options,
    wait_for,
)
from util import distributed
from util.configuration import DAVIS_YOUTUBE_DATA, STAGES, InferenceConfig, TrainConfig, parse_videos
from util.errors import ConfigError, DatasetError
from util.palette import davis_palette, write_indexed_png

TRAIN_VIDEOS = [custom_video_name(i, "train") for i in range(3)]


@pytest.fixture(scope="module")
def custom_root(tmp_path_factory):
    """3 training videos of 16 frames annotated every 5th (and one too short), 2 validation
    videos of 6 frames with full ground truth."""
    return generate_custom(CustomConfig(tmp_path_factory.mktemp("custom") / "data", seed=2, val_frames=6))


def custom_config(**overrides) -> TrainConfig:
    return TrainConfig(stage=3, crop_size=48, **overrides)


def test_custom_folder_is_the_training_set(custom_root, capsys):
    config = custom_config(videos=(f"{custom_root / 'train'}:repeat=5",))
    dataset = build_train_set(config, max_skip=10)
    part = dataset.datasets[0]
    assert all(d is part for d in dataset.datasets) and len(dataset.datasets) == 5
    assert part.videos == TRAIN_VIDEOS and len(dataset) == 15  # exactly its videos, 5 times
    assert part.interval == 5  # detected from frame_00000, frame_00005, ...
    assert part.max_jump == 2  # the max skip counts annotated frames
    assert list(part.unusable) == [SHORT_VIDEO]
    lines = describe_train_set(dataset)
    assert lines[0].endswith("3 videos x 5, annotations every 5 frames (detected)") and SHORT_VIDEO in lines[1]
    dataset.set_epoch(seed=1, epoch=0)
    for video in range(3):
        copies = [dataset[video + 3 * copy] for copy in range(5)]
        assert {c["info"]["name"] for c in copies} == {TRAIN_VIDEOS[video]}
        for c in copies:  # only annotated frames, each within max_jump + 1 annotated frames of the last
            numbers = [int(f.rsplit("_", 1)[1]) for f in c["info"]["frames"]]
            assert all(n % 5 == 0 for n in numbers)
            assert all(abs(b - a) <= (2 + 1) * 5 for a, b in zip(numbers, numbers[1:]))
        clips = {(tuple(c["info"]["frames"]), c["rgb"].numpy().tobytes()) for c in copies}
        assert len(clips) == 5, f"{TRAIN_VIDEOS[video]}: {len(clips)} distinct clips among its 5 copies"
    assert build_train_set(config, max_skip=25).datasets[0].max_jump == 5


def test_video_options_subset_and_interval(custom_root, tmp_path):
    (tmp_path / "list.txt").write_text(TRAIN_VIDEOS[1] + "\n")
    group = parse_videos(f"{custom_root / 'train'}:subset={tmp_path / 'list.txt'},interval=1,repeat=2")
    assert group.repeat == 2 and group.sources[0].interval == 1
    config = custom_config(videos=(f"{custom_root / 'train'}:subset={tmp_path / 'list.txt'},interval=1",))
    (part,) = build_train_set(config, max_skip=5).datasets
    assert part.videos == [TRAIN_VIDEOS[1]] and part.max_jump == 5
    # the built-in datasets are the same kind of entry
    assert TrainConfig(stage=3).data == DAVIS_YOUTUBE_DATA == STAGES[3].data
    assert [g.repeat for g in DAVIS_YOUTUBE_DATA] == [5, 1] and DAVIS_YOUTUBE_DATA[1].sources[0].interval == 5
    with pytest.raises(ConfigError, match="unknown option 'repeats'"):
        parse_videos("root:repeats=2")
    with pytest.raises(ConfigError, match="repeat must be >= 1"):
        TrainConfig(stage=3, videos=("root:repeat=0",))
    with pytest.raises(ConfigError, match="stage 0 has none"):
        TrainConfig(stage=0, videos=("root",))
    with pytest.raises(DatasetError, match="nowhere: video folder not found"):
        build_train_set(custom_config(videos=(str(tmp_path / "nowhere"),)), max_skip=5)


def test_validation_folder_needs_full_ground_truth(custom_root, tmp_path):
    videos = validation_videos(custom_root / "val")
    assert [v.name for v in videos] == [custom_video_name(i, "val") for i in range(2)]
    with pytest.raises(DatasetError, match="4 annotations for 16 frames.*every frame's ground truth"):
        validation_videos(custom_root / "train")
    with pytest.raises(DatasetError, match=r"no JPEGImages/ folder here .*\(it holds nothing\)"):
        validation_videos(tmp_path)


def test_validation_gives_the_engine_each_objects_first_appearance_only(tmp_path):
    """Full ground truth on every frame; object 2 enters at frame 2: the inputs are frame 0
    (object 1) and frame 2 restricted to object 2; the rest is ground truth."""
    root = tmp_path / "val"
    labels = np.zeros((4, 32, 48), np.uint8)
    labels[:, 4:12, 4:12] = 1
    labels[2:, 20:28, 30:40] = 2
    (root / "JPEGImages" / "v").mkdir(parents=True)
    for t in range(4):
        Image.fromarray(np.full((32, 48, 3), 60 * t, np.uint8)).save(root / "JPEGImages" / "v" / f"{t:05d}.jpg")
        write_indexed_png(labels[t], davis_palette(), root / "Annotations" / "v" / f"{t:05d}.png")
    (video,) = validation_videos(root)
    assert sorted(video.annotations) == [0, 2] and video.input_objects == {0: [1], 2: [2]}
    assert video.object_ids == [1, 2]
    inputs = {frame.index: frame.labels for frame in video.read() if frame.labels is not None}
    assert set(np.unique(inputs[2]).tolist()) == {0, 2}  # object 1 on frame 2 is ground truth, not an input
    assert video.gt_dir == root / "Annotations" / "v"


@pytest.mark.slow
def test_validation_best_checkpoint_sigkill_resume(synthetic_root, custom_root, uninterrupted, tmp_path):
    """Validation every 2 iterations logs val/J&F at 2 and 4 and keeps <run>_best.pth with
    its iteration in the checkpoint; killed after iteration 2 and resumed with --resume
    auto, the run keeps them, and its final weights equal those of the same run without
    validation, bit for bit."""
    val = {"val_videos": str(custom_root / "val"), "val_interval": 2}
    options = {**tiny_run_options(synthetic_root, tmp_path), **val, "log_image_interval": 100}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.train_for_tests", *as_args(options)],
        env=ENV,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    checkpoint = lambda: list(tmp_path.glob("*/*_checkpoint.pth"))  # noqa: E731
    wait_for(lambda: checkpoint() and read_checkpoint(checkpoint()[0]).get("it") == 2, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    (run,) = list(tmp_path.iterdir())
    at_2 = read_checkpoint(run / f"{run.name}_checkpoint.pth")
    assert at_2["best"] is not None and (run / f"{run.name}_best.pth").exists()

    train.train(fault_config(synthetic_root, tmp_path, resume="auto", **val))
    records = [json.loads(line) for line in (run / "logs" / "metrics.jsonl").read_text().splitlines()]
    validations = {r["it"]: r for r in records if "val/J&F" in r}
    assert sorted(validations) == [2, 4]
    for r in validations.values():
        assert 0 <= r["val/J&F"] <= 1 and r["val/J&F"] == pytest.approx((r["val/J"] + r["val/F"]) / 2)
        assert sorted(r["val/per_video"]) == [custom_video_name(i, "val") for i in range(2)] and r["val/seconds"] > 0
    best_it = max(validations, key=lambda it: (validations[it]["val/J&F"], -it))
    final = read_checkpoint(run / f"{run.name}_checkpoint.pth")
    assert final["best"] == {"it": best_it, "jf": validations[best_it]["val/J&F"]}
    best = read_checkpoint(run / f"{run.name}_best.pth")
    assert_same_weights(best, read_checkpoint(run / f"{run.name}_{best_it}.pth"))
    assert_same_weights(final_weights(tmp_path), final_weights(uninterrupted))  # validation changed nothing


@pytest.mark.slow
def test_two_process_validation_equals_single_process(synthetic_root, custom_root, tmp_path):
    """Under torchrun each rank validates one of the 2 videos; the gathered J&F equals the
    J&F of one process validating both with the same weights."""
    options = {
        **tiny_run_options(synthetic_root, tmp_path, iterations=2),
        "val_videos": str(custom_root / "val"),
        "val_interval": 2,
        "log_image_interval": 100,
    }
    run_ok(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            "--master_port=29541",
            "-m",
            "tests.train_for_tests",
            *as_args(options),
        ],
        ENV_ONE_THREAD,
    )
    (run,) = list(tmp_path.iterdir())
    (logged,) = [
        json.loads(line) for line in (run / "logs" / "metrics.jsonl").read_text().splitlines() if "val/J&F" in line
    ]
    network = GSFM(single_object=False)
    network.load_state_dict(read_checkpoint(run / f"{run.name}_2.pth"))
    one = distributed.Processes(0, 0, 1, 1, torch.device("cpu"), None)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank ran
    try:
        validator = Validator(custom_root / "val", InferenceConfig(), one)
        result = validator(network, 2)
    finally:
        torch.set_num_threads(threads)
    assert len(validator.mine) == 2
    assert logged["val/J&F"] == result.jf and logged["val/per_video"] == result.per_video


@pytest.mark.slow
def test_exception_after_threshold_writes_a_crash_checkpoint(synthetic_root, tmp_path, monkeypatch):
    """An exception at iteration 3 (threshold lowered to 3) leaves a full checkpoint at 3,
    the regular one of iteration 2 kept as the fallback; for a non-finite loss past the
    threshold nothing is written."""
    step = Trainer.step

    def failing(error, at):
        def step_or_fail(self, data, it):
            if it == at:
                raise error
            return step(self, data, it)

        return step_or_fail

    cases = (
        ("crash", RuntimeError("disk controller on fire"), 3, 3, [3, 2]),
        ("nan", NonFiniteLossError("non-finite loss nan at iteration 1"), 1, 1, []),
    )
    for name, error, at, threshold, written in cases:
        monkeypatch.setattr(Trainer, "step", failing(error, at))
        with pytest.raises(type(error), match=str(error)):
            train.train(fault_config(synthetic_root, tmp_path / name, crash_save_after=threshold))
        (run,) = list((tmp_path / name).iterdir())
        checkpoints = [run / f"{run.name}_checkpoint.pth", run / f"{run.name}_checkpoint_prev.pth"]
        assert [read_checkpoint(p)["it"] for p in checkpoints if p.exists()] == written, name
