"""--videos_per_device: several videos of one process at once, by worker threads sharing the
network, the claims and the output folder. The masks are those of one video at a time, and
the record and per-video resume hold."""

import json

import numpy as np
import pytest
from PIL import Image

import eval_davis
from datasets.synthetic import SyntheticConfig, generate
from evaluation.claims import Claims
from util.cli import run as cli_run


@pytest.fixture(scope="module")
def davis(tmp_path_factory):
    """A generated DAVIS 2017 with 4 small validation videos."""
    root = generate(
        SyntheticConfig(
            tmp_path_factory.mktemp("synthetic") / "data",
            seed=11,
            height=48,
            width=64,
            frames=5,
            train_videos=1,
            val_videos=4,
            max_objects=2,
            static_images=1,
        )
    )
    return root / "DAVIS" / "2017"


def evaluate(davis, weights, out, *extra):
    eval_davis.main(
        [str(a) for a in ("--model", weights, "--davis_path", davis, "--output", out, "--device", "cpu", *extra)]
    )
    return json.loads((out / "eval_stats.json").read_text())


def masks(out):
    return {
        f"{video.name}/{png.name}": np.array(Image.open(png))
        for video in sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith("."))
        for png in sorted(video.glob("*.png"))
    }


@pytest.mark.slow
def test_three_videos_at_once_give_the_masks_of_one_at_a_time(davis, golden_weights_file, tmp_path):
    one = evaluate(davis, golden_weights_file, tmp_path / "one")
    three = evaluate(davis, golden_weights_file, tmp_path / "three", "--videos_per_device", "3")
    assert three["videos_processed"] == 4 and three["ranks"][0]["videos_per_device"] == 3
    assert three["peak_memory_mb"] > 0
    expected, actual = masks(tmp_path / "one"), masks(tmp_path / "three")
    assert len(expected) == 4 * 5 and list(actual) == list(expected)
    for name, mask in expected.items():
        assert (actual[name] == mask).all(), name
    assert one["frames"] == three["frames"]
    assert not list((tmp_path / "three").glob(".tmp_*"))
    # per-video resume: a lost video is computed again, the others are kept
    lost = sorted(p.name for p in (tmp_path / "three").iterdir() if p.is_dir() and not p.name.startswith("."))[0]
    for png in (tmp_path / "three" / lost).glob("*.png"):
        png.unlink()
    (tmp_path / "three" / lost).rmdir()
    again = evaluate(davis, golden_weights_file, tmp_path / "three", "--videos_per_device", "3")
    assert again["videos_processed"] == 1 and again["videos_skipped"] == 3
    assert (masks(tmp_path / "three")[f"{lost}/00004.png"] == expected[f"{lost}/00004.png"]).all()


def test_threads_of_one_process_never_share_a_claim(tmp_path):
    claims = Claims(tmp_path)
    assert claims.try_claim("a") is not None
    assert claims.try_claim("a") is None  # another thread of this process holds it
    claims.release("a")
    assert claims.try_claim("a") is not None


def test_videos_per_device_must_be_positive(davis, golden_weights_file, tmp_path):
    args = ["--model", golden_weights_file, "--davis_path", davis, "--output", tmp_path, "--videos_per_device", "0"]
    with pytest.raises(SystemExit, match="--videos_per_device must be at least 1, got 0"):
        cli_run(lambda: eval_davis.main([str(a) for a in args]))
