"""Training samples as the reference draws them: every copy of a repeated dataset its own
clip, static masks warped bicubically and kept soft."""

import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms
from torchvision.transforms import InterpolationMode

from datasets.train_datasets import ConcatTrainSet, StaticTransformDataset, build_train_set
from model.losses import boundary_target
from util.configuration import TrainConfig
from util.errors import DatasetError


def stage_config(root, stage, **overrides):
    return TrainConfig(
        stage=stage,
        static_root=str(root / "static"),
        davis_root=str(root / "DAVIS"),
        yv_root=str(root / "YouTube"),
        davis_subset=str(root / "davis_subset.txt"),
        yv_subset=str(root / "yv_subset.txt"),
        crop_size=48,
        **overrides,
    )


def test_every_copy_of_a_repeated_dataset_draws_its_own_clip(synthetic_root):
    dataset = build_train_set(stage_config(synthetic_root, 3), max_skip=5)
    davis_videos = len(dataset.datasets[0])
    assert all(d is dataset.datasets[0] for d in dataset.datasets[:5])  # DAVIS repeated 5 times
    dataset.set_epoch(seed=1, epoch=0)
    for video in range(davis_videos):
        copies = [dataset[video + copy * davis_videos] for copy in range(5)]
        assert {c["info"]["name"] for c in copies} == {copies[0]["info"]["name"]}
        clips = {(tuple(c["info"]["frames"]), c["rgb"].numpy().tobytes()) for c in copies}
        assert len(clips) == 5, f"video {video}: only {len(clips)} distinct clips among its 5 copies"
    # the same index again gives the same sample (exact resume); another epoch another one
    first = dataset[0]["rgb"]
    assert torch.equal(dataset[0]["rgb"], first)
    dataset.set_epoch(seed=1, epoch=1)
    assert not torch.equal(dataset[0]["rgb"], first)


def test_the_same_local_index_in_two_datasets_draws_different_augmentations(synthetic_root):
    """Two datasets over one folder: their index 0 is the same image, augmented differently."""
    folder = synthetic_root / "static" / "DUTS-TR"
    dataset = ConcatTrainSet([StaticTransformDataset(folder, crop_size=48) for _ in range(2)])
    dataset.set_epoch(seed=1, epoch=0)
    first, second = dataset[0], dataset[len(dataset.datasets[0])]
    assert first["info"]["name"] == second["info"]["name"]
    assert not torch.equal(first["rgb"], second["rgb"])


def ellipse(size=96) -> Image.Image:
    yy, xx = np.mgrid[0:size, 0:size]
    mask = ((yy - size / 2) ** 2 / 30**2 + (xx - size / 2) ** 2 / 20**2) <= 1
    return Image.fromarray((mask * 255).astype(np.uint8), mode="L")


def test_static_masks_follow_the_reference_transform(synthetic_root):
    """The mask's per-frame warp is the reference's (bicubic affine, nearest resize, crop),
    checked against torchvision's transforms written out here, under the same seed."""
    dataset = StaticTransformDataset(synthetic_root / "static" / "DUTS-TR", crop_size=48)
    reference = transforms.Compose(
        [
            transforms.RandomAffine(20, scale=(0.9, 1.1), shear=10, interpolation=InterpolationMode.BICUBIC, fill=0),
            transforms.Resize(48, InterpolationMode.NEAREST),
            transforms.RandomCrop((48, 48), pad_if_needed=True, fill=0),
        ]
    )
    for seed in range(5):
        torch.manual_seed(seed)
        ours = np.asarray(dataset.pair_gt_dual(ellipse()))
        torch.manual_seed(seed)
        theirs = np.asarray(reference(ellipse()))
        assert np.array_equal(ours, theirs)
    soft = torch.from_numpy(theirs / 255.0).float()[None, None]
    # the soft mask's boundary target has more pixels than the binarised one's
    soft_edges = int(boundary_target(soft).sum())
    hard_edges = int(boundary_target((soft > 0.5).float()).sum())
    assert soft_edges > hard_edges


def test_static_samples_keep_soft_masks_and_hard_class_targets(synthetic_root):
    dataset = StaticTransformDataset(synthetic_root / "static" / "DUTS-TR", crop_size=48)
    dataset.set_epoch(1, 0)
    soft_seen = False
    for index in range(len(dataset)):
        sample = dataset[index]
        gt = sample["gt"]
        assert gt.shape == (3, 1, 48, 48) and gt.min() >= 0 and gt.max() <= 1
        assert torch.equal(sample["cls_gt"], (gt[:, 0] > 0.5).long())
        soft_seen |= bool(((gt > 0) & (gt < 1)).any())
    assert soft_seen  # bicubic warps leave in-between values at the edges


@pytest.mark.parametrize("size", [(64, 96)])
def test_boundary_targets_of_soft_masks_match_an_independent_laplacian(size):
    """The reference's boundary target on a soft mask: Laplacian, clamp at 0, > 0.1,
    computed here with scipy."""
    from scipy import ndimage

    rng = np.random.RandomState(0)
    mask = np.clip(ndimage.gaussian_filter((rng.rand(*size) > 0.7).astype(float), 1.5) * 2, 0, 1)
    kernel = -np.ones((3, 3))
    kernel[1, 1] = 8
    expected = np.clip(ndimage.convolve(mask, kernel, mode="constant"), 0, None) > 0.1
    ours = boundary_target(torch.from_numpy(mask).float()[None, None])[0, 0].numpy() > 0.5
    assert np.array_equal(ours, expected)


def test_only_undecodable_files_are_skipped(synthetic_root, tmp_path, monkeypatch):
    folder = tmp_path / "static"
    folder.mkdir()
    source = sorted((synthetic_root / "static" / "DUTS-TR").glob("*.jpg"))[0]
    for name in ("a", "b", "c"):  # three readable samples, the first of which is then truncated
        shutil.copy(source, folder / f"{name}.jpg")
        shutil.copy(source.with_suffix(".png"), folder / f"{name}.png")
    dataset = StaticTransformDataset(folder, crop_size=48)
    broken = dataset.images[0]
    broken.write_bytes(broken.read_bytes()[:40])  # a truncated JPEG
    with pytest.warns(UserWarning, match=f"skipping unreadable training sample 0: {broken}: unreadable image"):
        sample = dataset[0]
    assert sample["info"]["name"] == str(dataset.images[1])  # the next sample stands in
    assert len(dataset.bad_files) == 1 and next(iter(dataset.bad_files)).startswith(f"{broken}: unreadable image")

    # a bug (here: a transform that raises ValueError) is not an unreadable file
    def bug(*_):
        raise ValueError("a bug in an augmentation")

    monkeypatch.setattr(dataset, "pair_im_lone", bug)
    with pytest.raises(ValueError, match="a bug in an augmentation"):
        dataset[1]


def test_a_training_set_of_unreadable_files_stops(tmp_path):
    folder = tmp_path / "static"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.jpg").write_bytes(b"\xff\xd8 not a JPEG")
        (folder / f"{name}.png").write_bytes(b"not a PNG")
    dataset = StaticTransformDataset(folder, crop_size=48)
    with pytest.warns(UserWarning), pytest.raises(DatasetError, match="no readable sample in this training set"):
        dataset[0]
