"""--videos and --val_videos read DAVIS's and YouTube-VOS's download layouts as they are,
an empty training set names each root and what was under it, and --custom writes the
example videos the fine-tuning docs use."""

import shutil

import pytest

import train
from datasets import synthetic
from datasets.train_datasets import build_train_set, describe_train_set
from datasets.video_layout import find_video_layout
from evaluation.validation import validation_videos
from tests.helpers import train_config
from util.configuration import TrainConfig
from util.errors import DatasetError


def test_layouts_are_detected(synthetic_root):
    davis = synthetic_root / "DAVIS" / "2017"
    for root in (davis / "trainval", davis):  # the split, or the dataset's root above it
        layout = find_video_layout(root)
        assert layout.images == davis / "trainval" / "JPEGImages" / "480p" and layout.name == "DAVIS"
        assert layout.annotations == davis / "trainval" / "Annotations" / "480p"
    youtube = find_video_layout(synthetic_root / "YouTube")
    assert youtube.images == synthetic_root / "YouTube" / "train_480p" / "JPEGImages"
    assert youtube.name == "YouTube-VOS"
    plain = find_video_layout(synthetic_root / "YouTube" / "train_480p")
    assert plain.images == synthetic_root / "YouTube" / "train_480p" / "JPEGImages" and plain.name == "plain"
    with pytest.raises(DatasetError, match=r"static: no JPEGImages/ folder .*it holds BIG_small/, DUTS-TE/, DUTS-TR/"):
        find_video_layout(synthetic_root / "static")


@pytest.mark.slow
def test_davis_root_trains_and_validates(synthetic_root, tmp_path, capsys):
    """DAVIS 2017 trainval as downloaded: --videos trains on it (one iteration), --val_videos
    reads its videos."""
    davis = synthetic_root / "DAVIS" / "2017" / "trainval"
    config = train_config(synthetic_root, tmp_path, iterations=1, videos=(str(davis),))
    (part,) = build_train_set(config, max_skip=5).datasets
    assert len(part) == 5  # the 3 train and 2 val videos of the synthetic DAVIS
    assert describe_train_set(build_train_set(config, 5))[0].startswith(f"{davis}: DAVIS layout (JPEGImages/480p")
    assert [v.name for v in validation_videos(davis)] == ["train00", "train01", "train02", "val00", "val01"]
    run = train.train(config)
    assert (run / f"{run.name}_1.pth").exists()


def test_empty_training_set_names_each_root(synthetic_root, tmp_path):
    empty = tmp_path / "empty"
    (empty / "JPEGImages" / "480p").mkdir(parents=True)
    (empty / "Annotations" / "480p").mkdir(parents=True)
    short = tmp_path / "short"
    shutil.copytree(synthetic_root / "DAVIS" / "2017" / "trainval", short)
    for video in (short / "Annotations" / "480p").iterdir():
        for mask in sorted(video.glob("*.png"))[2:]:
            mask.unlink()
    config = TrainConfig(stage=3, crop_size=48, videos=(str(empty), str(short)))
    with pytest.raises(DatasetError) as error:
        build_train_set(config, max_skip=5)
    lines = str(error.value).splitlines()
    assert lines[0] == "stage 3: the training set is empty;"
    assert lines[1].startswith(f"  {empty}: DAVIS layout") and lines[1].endswith(
        "0 video folders in " + str(empty / "JPEGImages" / "480p") + "; 0 usable"
    )
    assert lines[2].endswith(
        "5 video folders in " + str(short / "JPEGImages" / "480p") + ", 5 with fewer than 3 annotated frames; 0 usable"
    )


def test_custom_example_data_is_what_fine_tuning_documents(tmp_path):
    """python -m datasets.synthetic --custom OUT: docs/FINE_TUNING.md's example videos."""
    synthetic.main([str(tmp_path / "custom"), "--custom"])
    train_videos = find_video_layout(tmp_path / "custom" / "train")
    assert len(list(train_videos.images.iterdir())) == 12 + 1  # and one too short to give a clip
    assert [len(v.frames) for v in validation_videos(tmp_path / "custom" / "val")] == [8, 8]
