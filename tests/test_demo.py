"""The README's first command, in its seconds-long form."""

import json

import pytest
from PIL import Image

import demo

pytestmark = pytest.mark.slow


def test_quick_demo_writes_pictures_and_scores(tmp_path):
    summary = demo.main(["--quick", "--root", str(tmp_path / "data"), "--output", str(tmp_path / "out")])
    out = tmp_path / "out"
    assert 0.0 <= summary["model_jf"] <= 1.0
    assert 0.0 < summary["baseline_jf"] <= 1.0
    assert json.loads((out / "summary.json").read_text())["stamp"]["commit"] == summary["stamp"]["commit"]
    assert json.loads((out / "masks" / "jf_results.json").read_text())["overall"]["J&F-Mean"] == summary["model_jf"]
    gifs = sorted((out / "overlays").glob("*.gif"))
    assert [g.stem for g in gifs] == ["val00", "val01"]
    with Image.open(gifs[0]) as gif:
        assert gif.n_frames == 6
    with Image.open(out / "overlays" / "contact_sheet.png") as sheet:
        assert sheet.size[0] > 96 and sheet.size[1] > 64
