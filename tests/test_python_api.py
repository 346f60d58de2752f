"""The Python API example of docs/API.md, run as written."""

import re
import shutil

import numpy as np
import torch
from PIL import Image

from tests.helpers import REPO, user_video
from util.palette import read_mask

API_DOC = REPO / "docs" / "API.md"


def api_doc_example() -> str:
    section = API_DOC.read_text().split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_api_doc_example_runs(synthetic_root, golden_weights_file, tmp_path, monkeypatch):
    code = api_doc_example()
    assert len(code.strip().splitlines()) <= 20  # Cutie's scripting demo is about 20 lines; ours is no longer
    (tmp_path / "my_video").mkdir()
    _, first_mask = user_video(synthetic_root, tmp_path / "my_video", frames=5)  # my_video/frames/
    (tmp_path / "my_video" / "masks").mkdir()
    shutil.copy(first_mask, tmp_path / "my_video" / "masks" / "00000.png")
    (tmp_path / "saves").mkdir()
    shutil.copy(golden_weights_file, tmp_path / "saves" / "gsfm.pth")
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    exec(compile(code, "docs/API.md", "exec"), {})
    written = sorted((tmp_path / "output" / "my_video").glob("*.png"))
    assert [p.stem for p in written] == [f"{t:05d}" for t in range(5)]
    given = read_mask(first_mask)
    assert (np.array(Image.open(written[0])) == given).mean() > 0.99  # the annotated frame as given
    assert set(np.unique(np.array(Image.open(written[3])))) <= set(np.unique(given))
