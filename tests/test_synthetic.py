"""The synthetic data generator: deterministic, reused when complete, difficulty knobs."""

import hashlib
from pathlib import Path

import numpy as np

from datasets.synthetic import SyntheticConfig, generate, make_video


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file() and p.name != ".complete"):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _small(root: Path, **kw) -> SyntheticConfig:
    return SyntheticConfig(
        root, seed=1, height=32, width=48, frames=4, train_videos=2, val_videos=2, max_objects=2, static_images=5, **kw
    )


def test_same_seed_same_bytes_and_complete_data_is_reused(tmp_path):
    a = generate(_small(tmp_path / "a", object_size=(0.2, 0.3)))
    b = generate(_small(tmp_path / "b", object_size=(0.2, 0.3)))
    assert _digest(a) == _digest(b)
    marker = a / "DAVIS" / "2017" / "trainval" / "ImageSets" / "2017" / "val.txt"
    before = marker.stat().st_mtime_ns
    generate(_small(tmp_path / "a", object_size=(0.2, 0.3)))  # same config (with a tuple field): not rewritten
    assert marker.stat().st_mtime_ns == before
    generate(_small(tmp_path / "a", object_size=(0.2, 0.35)))  # another config: regenerated
    assert marker.stat().st_mtime_ns != before


def test_difficulty_knobs():
    def video(**kw):
        return make_video(np.random.RandomState(7), 96, 160, 3, 2, late_objects=False, **kw)

    images, labels = video()
    big_images, big_labels = video(object_size=(0.3, 0.4))
    assert (big_labels > 0).mean() > 2 * (labels > 0).mean()
    flat_images, flat_labels = video(background_contrast=0.3)
    background = labels == 0
    assert np.array_equal(flat_labels, labels)  # the knob changes the pixels, not the geometry
    spread = images[background].astype(float).std(0).mean()
    flat_spread = flat_images[background].astype(float).std(0).mean()
    assert flat_spread < 0.5 * spread
