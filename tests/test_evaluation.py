"""The eval scripts end to end on synthetic data in the real layouts, and their errors."""

import json
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

import eval_davis
import eval_davis_2016
import eval_generic
import eval_youtube
from util.cli import run as cli_run
from util.errors import DatasetError


def run(main, *args):
    main([str(a) for a in args] + ["--device", "cpu"])


@pytest.mark.slow
def test_eval_davis_val_writes_masks_stats_and_jf(synthetic_root, golden_weights_file, tmp_path):
    out = tmp_path / "d17"
    davis = synthetic_root / "DAVIS" / "2017"
    run(eval_davis.main, "--model", golden_weights_file, "--davis_path", davis, "--output", out)
    for video in ("val00", "val01"):
        frames = sorted(p.stem for p in (davis / "trainval" / "JPEGImages" / "480p" / video).iterdir())
        written = sorted(p.stem for p in (out / video).iterdir())
        assert written == frames
        with Image.open(out / video / "00003.png") as img:
            assert img.mode == "P" and img.size == (96, 64)
        # frame 0 reproduces the given mask
        given = np.array(Image.open(davis / "trainval" / "Annotations" / "480p" / video / "00000.png"))
        assert (np.array(Image.open(out / video / "00000.png")) == given).mean() > 0.99
    stats = json.loads((out / "eval_stats.json").read_text())
    assert stats["videos_processed"] == 2 and stats["frames"] == 14 and stats["fps"] > 0
    jf = json.loads((out / "jf_results.json").read_text())
    # the summary scores the masks written, against the ground truth: J recomputed literally
    expected_j = {}
    for video in ("val00", "val01"):
        frames = sorted((out / video).glob("*.png"))[1:-1]  # DAVIS scores neither the first nor the last
        gt_dir = davis / "trainval" / "Annotations" / "480p" / video
        gts = [np.array(Image.open(gt_dir / f.name)) for f in frames]
        preds = [np.array(Image.open(f)) for f in frames]
        for obj in range(1, int(gts[0].max()) + 1):
            ious = [
                ((p == obj) & (g == obj)).sum() / max(((p == obj) | (g == obj)).sum(), 1) for p, g in zip(preds, gts)
            ]
            ious = [iou if ((p == obj) | (g == obj)).any() else 1.0 for iou, p, g in zip(ious, preds, gts)]
            expected_j[f"{video}_{obj}"] = float(np.mean(ious))
    assert {k: v["J-Mean"] for k, v in jf["per_object"].items()} == pytest.approx(expected_j)
    assert jf["overall"]["J-Mean"] == pytest.approx(np.mean(list(expected_j.values())))
    scores = json.loads((out / "scores.json").read_text())  # beside it, as score.py writes them
    assert scores["overall"]["J&F-Mean"] == pytest.approx(jf["overall"]["J&F-Mean"]) and (out / "report.html").is_file()
    assert not list(out.glob(".tmp_*"))
    # a rerun on the same output recomputes nothing
    run(eval_davis.main, "--model", golden_weights_file, "--davis_path", davis, "--output", out)
    stats = json.loads((out / "eval_stats.json").read_text())
    assert stats["videos_processed"] == 0 and stats["videos_skipped"] == 2


@pytest.mark.slow
def test_eval_davis_testdev(synthetic_root, golden_weights_file, tmp_path):
    out = tmp_path / "td"
    run(
        eval_davis.main,
        "--model",
        golden_weights_file,
        "--davis_path",
        synthetic_root / "DAVIS" / "2017",
        "--split",
        "testdev",
        "--output",
        out,
    )
    assert len(list((out / "test00").glob("*.png"))) == 7
    assert not (out / "jf_results.json").exists()  # no ground truth for test-dev


@pytest.mark.slow
def test_eval_davis_2016_binary_masks(synthetic_root, golden_weights_file, tmp_path):
    out = tmp_path / "d16"
    run(
        eval_davis_2016.main,
        "--model",
        golden_weights_file,
        "--davis_path",
        synthetic_root / "DAVIS" / "2016",
        "--output",
        out,
    )
    img = Image.open(out / "val00" / "00002.png")
    assert img.mode == "L" and set(np.unique(np.array(img)).tolist()) <= {0, 255}
    assert (out / "jf_results.json").exists()


@pytest.mark.slow
def test_eval_youtube_requested_frames_and_zip(synthetic_root, golden_weights_file, tmp_path):
    out = tmp_path / "yv"
    yv = synthetic_root / "YouTube"
    run(eval_youtube.main, "--model", golden_weights_file, "--yv_path", yv, "--output", out, "--size", "-1")
    meta = json.loads((yv / "valid" / "meta.json").read_text())["videos"]
    with zipfile.ZipFile(out / "submission.zip") as zf:
        names = set(zf.namelist())
    for video, info in meta.items():
        requested = sorted({f for o in info["objects"].values() for f in o["frames"]})
        written = sorted(p.stem for p in (out / "Annotations" / video).iterdir())
        assert written == requested
        assert {f"Annotations/{video}/{f}.png" for f in requested} <= names
        labels = {int(k) for k in info["objects"]}
        for f in written:
            written_ids = set(np.unique(np.array(Image.open(out / "Annotations" / video / f"{f}.png"))).tolist())
            assert written_ids <= labels | {0}


@pytest.mark.slow
def test_eval_youtube_output_all_and_resize(synthetic_root, golden_weights_file, tmp_path):
    out = tmp_path / "yv_all"
    run(
        eval_youtube.main,
        "--model",
        golden_weights_file,
        "--yv_path",
        synthetic_root / "YouTube",
        "--output",
        out,
        "--output_all",
        "--size",
        "80",
    )
    frames = list((out / "Annotations" / "yvval00").glob("*.png"))
    assert len(frames) == 7  # every frame from the first annotated one on
    assert Image.open(frames[0]).size == (96, 64)  # written back at the annotation size


@pytest.mark.slow
def test_eval_generic_with_overlay(synthetic_root, golden_weights_file, tmp_path):
    video = synthetic_root / "DAVIS" / "2017" / "trainval"
    out = tmp_path / "gen"
    run(
        eval_generic.main,
        "--model",
        golden_weights_file,
        "--frames",
        video / "JPEGImages" / "480p" / "val01",
        "--mask",
        video / "Annotations" / "480p" / "val01" / "00000.png",
        "--output",
        out,
        "--overlay",
    )
    assert len(list((out / "val01").glob("*.png"))) == 7
    assert len(list((out / "val01_overlay").glob("*.jpg"))) == 7
    assert (out / "val01_overlay.mp4").stat().st_size > 0


# ---- bad input: one clear error naming the file -------------------------------------


def copy_davis(synthetic_root, tmp_path):
    dst = tmp_path / "DAVIS"
    shutil.copytree(synthetic_root / "DAVIS", dst)
    return dst / "2017"


def expect_error(main, *args, match):
    with pytest.raises(SystemExit) as e:
        cli_run(lambda: main([str(a) for a in args] + ["--device", "cpu"]))
    assert match in str(e.value), str(e.value)
    return str(e.value)


def test_missing_dataset_folder(golden_weights_file, tmp_path):
    expect_error(
        eval_davis.main,
        "--model",
        golden_weights_file,
        "--davis_path",
        tmp_path / "nowhere",
        "--output",
        tmp_path / "o",
        match="nowhere/trainval/JPEGImages/480p: DAVIS JPEGImages folder not found",
    )


def test_missing_image_set(synthetic_root, golden_weights_file, tmp_path):
    davis = copy_davis(synthetic_root, tmp_path)
    (davis / "trainval" / "ImageSets" / "2017" / "val.txt").unlink()
    expect_error(
        eval_davis.main,
        "--model",
        golden_weights_file,
        "--davis_path",
        davis,
        "--output",
        tmp_path / "o",
        match="val.txt: image set file not found",
    )


def test_missing_davis_2016_image_set_names_paths(synthetic_root, golden_weights_file, tmp_path):
    davis = copy_davis(synthetic_root, tmp_path)
    (davis / "trainval" / "ImageSets" / "2016" / "val.txt").unlink()
    msg = expect_error(
        eval_davis_2016.main,
        "--model",
        golden_weights_file,
        "--davis_path",
        davis.parent / "2016",
        "--output",
        tmp_path / "o",
        match="DAVIS 2016 image set not found",
    )
    assert "2017/trainval/ImageSets/2016/val.txt" in msg


def test_frame_and_annotation_counts_disagree(synthetic_root, golden_weights_file, tmp_path):
    davis = copy_davis(synthetic_root, tmp_path)
    (davis / "trainval" / "Annotations" / "480p" / "val00" / "00004.png").unlink()
    expect_error(
        eval_davis.main,
        "--model",
        golden_weights_file,
        "--davis_path",
        davis,
        "--output",
        tmp_path / "o",
        match="val00: 6 annotations for 7 frames",
    )


@pytest.mark.slow
def test_corrupt_jpeg_is_named(synthetic_root, golden_weights_file, tmp_path):
    davis = copy_davis(synthetic_root, tmp_path)
    bad = davis / "trainval" / "JPEGImages" / "480p" / "val00" / "00002.jpg"
    bad.write_bytes(bad.read_bytes()[:100])
    out = tmp_path / "o"
    expect_error(
        eval_davis.main,
        "--model",
        golden_weights_file,
        "--davis_path",
        davis,
        "--output",
        out,
        match="00002.jpg: unreadable image",
    )
    assert not (out / "val00").exists()  # nothing half-written passed off as complete


def test_first_mask_without_object(synthetic_root, golden_weights_file, tmp_path):
    davis = copy_davis(synthetic_root, tmp_path)
    path = davis / "trainval" / "Annotations" / "480p" / "val01" / "00000.png"
    img = Image.open(path)
    empty = Image.fromarray(np.zeros_like(np.array(img)), mode="P")
    empty.putpalette(img.getpalette())
    empty.save(path)
    expect_error(
        eval_davis.main,
        "--model",
        golden_weights_file,
        "--davis_path",
        davis,
        "--output",
        tmp_path / "o",
        match="val01/00000.png: the first annotated mask contains no object",
    )


def test_anti_aliased_binary_mask_warns(synthetic_root, tmp_path):
    from datasets.eval_datasets import load_annotation

    mask = np.zeros((20, 20), np.uint8)
    mask[5:15, 5:15] = 255
    mask[5, 5:15] = 128
    mask[4, 5:15] = 60
    path = tmp_path / "aa.png"
    Image.fromarray(mask, mode="L").save(path)
    with pytest.warns(UserWarning, match="20 pixels with values between 0 and 255"):
        labels = load_annotation(path)
    assert labels.max() == 1 and labels.sum() == 100


def test_checkpoint_that_does_not_fit(synthetic_root, tmp_path):
    import torch

    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    expect_error(
        eval_davis.main,
        "--model",
        path,
        "--davis_path",
        synthetic_root / "DAVIS" / "2017",
        "--output",
        tmp_path / "o",
        match="other.pth: neither a GSFM nor an STCN checkpoint",
    )


def test_unwritable_output(synthetic_root, golden_weights_file, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    expect_error(
        eval_davis.main,
        "--model",
        golden_weights_file,
        "--davis_path",
        synthetic_root / "DAVIS" / "2017",
        "--output",
        blocker / "out",
        match="is not writable",
    )


def test_bad_arguments(synthetic_root, golden_weights_file, tmp_path):
    for flag, value in (("--mem_every", "0"), ("--top", "0")):
        expect_error(
            eval_davis.main,
            "--model",
            golden_weights_file,
            "--davis_path",
            synthetic_root / "DAVIS" / "2017",
            "--output",
            tmp_path / "o",
            flag,
            value,
            match=flag,
        )


def test_dataset_error_type():
    assert issubclass(DatasetError, ValueError)
