"""Dataset preparation scripts: sizes, palettes kept, resumable, clear errors."""

import numpy as np
import pytest
from PIL import Image

from scripts import resize_length, resize_youtube


def test_resize_youtube_short_side_keeps_palette_and_resumes(synthetic_root, tmp_path):
    src, dst = synthetic_root / "YouTube" / "train_480p", tmp_path / "train_small"
    counts = resize_youtube.main([str(src), str(dst), "--size", "32"])
    frames = sorted(src.glob("JPEGImages/*/*.jpg"))
    masks = sorted(src.glob("Annotations/*/*.png"))
    assert counts == {"files": len(frames) + len(masks), "resized": len(frames) + len(masks), "skipped": 0}
    with Image.open(frames[0]) as a, Image.open(dst / frames[0].relative_to(src)) as b:
        assert a.size == (96, 64) and b.size == (48, 32)  # short side 32, aspect kept
    with Image.open(masks[0]) as a, Image.open(dst / masks[0].relative_to(src)) as b:
        assert b.mode == "P" and b.getpalette() == a.getpalette()
        assert set(np.unique(np.array(b))) <= set(np.unique(np.array(a)))  # nearest: no new ids
    # interrupted run: a missing file is redone, everything else skipped
    (dst / masks[1].relative_to(src)).unlink()
    assert resize_youtube.main([str(src), str(dst), "--size", "32"])["resized"] == 1


def test_preparation_errors_name_the_file(synthetic_root, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere/JPEGImages: YouTube-VOS JPEGImages folder not found"):
        resize_youtube.main([str(tmp_path / "nowhere"), str(tmp_path / "out")])
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="broken.jpg: unreadable image"):
        resize_length.main([str(tmp_path / "imgs"), str(tmp_path / "out")])
    assert not (tmp_path / "out" / "broken.jpg").exists()
