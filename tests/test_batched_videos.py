"""The batched way of several videos at once (``scripts.videos_per_device``): videos that
advance together through one network call per frame give the masks and probabilities of
one video at a time, and videos that cannot advance together fail instead of waiting."""

import threading

import pytest
import torch

from datasets.eval_datasets import davis_videos
from evaluation.sinks import OutputSink
from evaluation.video import segment_video
from scripts import videos_per_device
from scripts.benchmarking import benchmark_network, first_frames
from util.configuration import InferenceConfig


class Probabilities(OutputSink):
    """Every frame's probabilities, by video and frame."""

    def __init__(self):
        self.prob = {}

    def write(self, video, frame, folder):
        self.prob[video.name, frame.index] = frame.prob.clone()


@pytest.fixture(scope="module")
def network():
    return benchmark_network(torch.device("cpu"))


def val_videos(synthetic_root, frames=4):
    root = synthetic_root / "DAVIS" / "2017" / "trainval"
    return [first_frames(v, frames) for v in davis_videos(root, root / "ImageSets" / "2017" / "val.txt")[0]]


def test_batched_masks_equal_those_of_the_workers(tmp_path):
    report = videos_per_device.main(
        [
            *("--device", "cpu", "--modes", "workers", "batched", "--counts", "2", "--videos", "2"),
            *("--frames", "4", "--height", "64", "--width", "96", "--output", str(tmp_path)),
        ]
    )
    workers, batched = report["rows"]
    assert (workers["mode"], batched["mode"]) == ("workers", "batched")
    assert workers["frames"] == batched["frames"] == 2 * 4
    # the batch's convolutions may round differently from one frame's: a near-tie may flip
    assert batched["pixels_equal_to_first"] >= 0.9999, batched
    assert batched["peak_memory_mb"] > 0 and batched["throughput_fps"] > 0


def test_batched_probabilities_equal_one_video_at_a_time(synthetic_root, network, tmp_path):
    """Four frames, a memory frame every second: the batch encodes values for the first
    frame's annotation and for a prediction (frame 2), and decodes from a memory of two."""
    config = InferenceConfig(mem_every=2)
    alone, together = Probabilities(), Probabilities()
    for video in val_videos(synthetic_root):
        segment_video(network, video, config, lambda frame, video=video: alone.write(video, frame, None))
    videos = val_videos(synthetic_root)
    assert len(videos) == 2 and len({len(v.object_ids) for v in videos}) == 1
    frames = videos_per_device.segment_batched(network, videos, 2, tmp_path, config, together)
    assert frames == sum(v.num_frames for v in videos) and together.prob.keys() == alone.prob.keys()
    for key, prob in alone.prob.items():
        assert prob.shape == together.prob[key].shape
        assert (prob - together.prob[key]).abs().max() < 1e-5, key


def test_videos_that_cannot_advance_together_fail_instead_of_waiting(synthetic_root, network, tmp_path):
    videos = val_videos(synthetic_root)
    videos[1] = first_frames(videos[1], 3)  # ends while the other still asks for its next frame's key
    failure = []

    def run():
        try:
            videos_per_device.segment_batched(network, videos, 2, tmp_path, InferenceConfig(), Probabilities())
        except RuntimeError as e:
            failure.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "a video still waits for one that ended"
    assert failure and "must make the same network calls" in str(failure[0])
