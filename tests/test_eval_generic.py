"""eval_generic.py on what people bring: several annotations that add and re-label objects,
a clip annotated only in the middle, a video file, annotations a pixel off."""

import warnings

import av
import cv2
import numpy as np
import pytest
from PIL import Image

import eval_generic
from datasets.eval_datasets import generic_video
from datasets.synthetic import make_video
from evaluation.video import segment_video
from inference_core import InferenceCore
from tests.golden import golden_network
from util.cli import run as cli_run
from util.configuration import InferenceConfig
from util.errors import DatasetError
from util.palette import davis_palette, read_mask, write_indexed_png

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clip():
    """7 frames of 64x96; object 2 enters on frame 3."""
    images, labels = make_video(np.random.RandomState(11), 64, 96, 7, 2, late_objects=True, step=3)
    assert not (labels[:3] == 2).any() and (labels[3] == 2).any()
    return images, labels


def write_frames(images, folder):
    """Lossless frames, so that a run from disk and a run from the arrays see the same pixels."""
    folder.mkdir(parents=True)
    for t, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{t:05d}.png")
    return folder


def write_annotations(labels_by_frame: dict, folder):
    for t, labels in labels_by_frame.items():
        write_indexed_png(labels, davis_palette(), folder / f"{t:05d}.png")
    return folder


def generic(golden_weights_file, frames, mask, out, *extra):
    cli_run(
        lambda: eval_generic.main(
            [
                "--model",
                str(golden_weights_file),
                "--frames",
                str(frames),
                "--mask",
                str(mask),
                "--output",
                str(out),
                "--device",
                "cpu",
                *map(str, extra),
            ]
        )
    )
    return out / (frames.stem if frames.is_file() else frames.name)


def agreement(a, b):
    return float((a == b).mean())


def test_annotations_that_add_and_relabel_objects(clip, golden_weights_file, tmp_path):
    images, labels = clip
    relabelled = np.zeros_like(labels[5])
    relabelled[5:25, 60:90] = 1  # object 1 moved somewhere else on frame 5 (and object 2 kept)
    relabelled[labels[5] == 2] = 2
    annotations = write_annotations(
        {0: labels[0], 3: np.where(labels[3] == 2, 2, 0).astype(np.uint8), 5: relabelled}, tmp_path / "ann"
    )
    masks = generic(golden_weights_file, write_frames(images, tmp_path / "clip"), annotations, tmp_path / "out")
    outputs = [read_mask(masks / f"{t:05d}.png") for t in range(7)]
    assert not any((o == 2).any() for o in outputs[:3])  # object 2 does not exist before its annotation
    assert agreement(outputs[0], labels[0]) > 0.99
    assert ((outputs[3] == 2) == (labels[3] == 2)).mean() > 0.99  # the new object as annotated
    # the re-labelled object takes its new mask (not only the region cleared)
    assert agreement(outputs[5], relabelled) > 0.99
    assert ((outputs[5] == 1) & (labels[5] == 1) & (relabelled != 1)).sum() == 0


def test_first_annotation_in_the_middle_is_propagated_both_ways(clip, golden_weights_file, tmp_path):
    images, labels = clip
    frames = write_frames(images, tmp_path / "clip")
    write_annotations({4: labels[4]}, tmp_path / "ann")
    masks = generic(golden_weights_file, frames, tmp_path / "ann", tmp_path / "out")
    assert sorted(p.stem for p in masks.glob("*.png")) == [f"{t:05d}" for t in range(7)]  # every frame
    assert agreement(read_mask(masks / "00004.png"), labels[4]) > 0.99
    # the frames before it equal a plain engine run over the reversed frames 4, 3, ..., 0
    core = InferenceCore(golden_network())
    for t in range(4, -1, -1):
        prob = core.step(images[t], labels[4] if t == 4 else None, end=t == 0)
        if t < 4:
            assert np.array_equal(read_mask(masks / f"{t:05d}.png"), core.prob_to_mask(prob)), t
    # and the frames after it a forward run from frame 4
    core = InferenceCore(golden_network())
    for t in range(4, 7):
        prob = core.step(images[t], labels[4] if t == 4 else None, end=t == 6)
        assert np.array_equal(read_mask(masks / f"{t:05d}.png"), core.prob_to_mask(prob)), t


def test_video_file_is_decoded_once_with_overlays(clip, golden_weights_file, tmp_path, monkeypatch):
    images, labels = clip
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (96, 64))
    for image in images:
        writer.write(image[:, :, ::-1].copy())
    writer.release()
    write_annotations({2: labels[2]}, tmp_path / "ann")  # frame 2 of the video file
    opened = []
    real_capture = cv2.VideoCapture
    monkeypatch.setattr(cv2, "VideoCapture", lambda *a: opened.append(a) or real_capture(*a))
    masks = generic(golden_weights_file, path, tmp_path / "ann", tmp_path / "out", "--overlay")
    assert len(opened) == 2  # once to count the frames, once to decode them; overlays reuse the decoded frames
    assert sorted(p.stem for p in masks.glob("*.png")) == [f"{t:05d}" for t in range(7)]
    assert agreement(read_mask(masks / "00002.png"), labels[2]) > 0.97  # through mp4 compression
    overlays = tmp_path / "out" / "clip_overlay"
    assert len(list(overlays.glob("*.jpg"))) == 7
    with av.open(str(overlays.with_suffix(".mp4"))) as container:  # H.264 at the source's 25 frames/s
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.average_rate == 25
        assert (stream.width, stream.height) == (96, 64) and len(list(container.decode(stream))) == 7


def test_video_file_with_fewer_frames_than_it_says_is_named(tmp_path, monkeypatch):
    from datasets.eval_datasets import FrameSource

    path = tmp_path / "short.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (32, 32))
    for _ in range(3):
        writer.write(np.zeros((32, 32, 3), np.uint8))
    writer.release()
    source = FrameSource(path)
    source.names.append("00003")  # the container claims one frame more than it holds
    with pytest.raises(DatasetError, match="short.mp4: frame 3 could not be decoded"):
        list(source)


def test_annotation_a_pixel_off_is_resized_with_a_warning(clip, tmp_path):
    images, labels = clip
    frames = write_frames(images[:3], tmp_path / "clip")
    off = cv2.resize(labels[0], (97, 63), interpolation=cv2.INTER_NEAREST)
    write_indexed_png(off, davis_palette(), tmp_path / "off.png")
    video, _ = generic_video(frames, tmp_path / "off.png")
    with pytest.warns(UserWarning, match=r"off.png: annotation size 97x63 differs from the frame size 96x64 by 1x1"):
        first = next(video.read())
    assert first.labels.shape == (64, 96) and agreement(first.labels, labels[0]) > 0.97


def test_annotation_far_off_is_an_error_naming_both_sizes(clip, golden_weights_file, tmp_path):
    images, labels = clip
    frames = write_frames(images[:3], tmp_path / "clip")
    write_indexed_png(
        cv2.resize(labels[0], (90, 60), interpolation=cv2.INTER_NEAREST), davis_palette(), tmp_path / "far.png"
    )
    with pytest.raises(SystemExit, match=r"far.png: annotation size 90x60 differs from the frame size 96x64"):
        generic(golden_weights_file, frames, tmp_path / "far.png", tmp_path / "out")
    assert not (tmp_path / "out" / "clip").exists()  # nothing published
    assert not (tmp_path / "out" / "eval_record.json").exists()  # and no record of a run that did nothing


def test_single_mask_file_named_like_a_missing_frame_is_refused(clip, tmp_path, capsys):
    images, labels = clip
    frames = write_frames(images, tmp_path / "clip")
    write_indexed_png(labels[0], davis_palette(), tmp_path / "00099.png")
    with pytest.raises(DatasetError, match=r"00099.png: named like a frame, but .*clip has no such frame \(it has 7: "):
        generic_video(frames, tmp_path / "00099.png")
    write_indexed_png(labels[0], davis_palette(), tmp_path / "first.png")
    video, _ = generic_video(frames, tmp_path / "first.png")
    assert video.annotations == {0: tmp_path / "first.png"}
    said = capsys.readouterr().out
    assert said.count("first.png: not named after a frame, so it annotates the first frame") == 1
    write_indexed_png(labels[4], davis_palette(), tmp_path / "00004.png")
    assert generic_video(frames, tmp_path / "00004.png")[0].annotations == {4: tmp_path / "00004.png"}


def test_segment_video_reports_each_wanted_frame_once(clip, tmp_path):
    images, labels = clip
    frames = write_frames(images, tmp_path / "clip")
    write_annotations({3: labels[3]}, tmp_path / "ann")
    video, _ = generic_video(frames, tmp_path / "ann")
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        processed = segment_video(
            golden_network(), video, InferenceConfig(), lambda f: seen.append(f.index), scratch=tmp_path
        )
    assert seen == [3, 4, 5, 6, 2, 1, 0] and processed == 8  # frame 3 in both passes
    assert not list(tmp_path.glob(".frames_*"))  # the backward pass's frames are gone
