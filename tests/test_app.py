"""The web app's parts without a server (webapp/): uploads stay in the session folder, caps
and bad files get a message, the tools paint from the shown mask, the weights it picks, and
app.py without Gradio. The served app: test_app_client.py and test_app_browser.py."""

import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datasets.synthetic import make_video
from model import zoo
from model.checkpoint import load_network
from model.network import GSFM
from tests.test_download_weights import tiny_stcn_checkpoint
from util.cli import run as cli_run
from util.errors import CheckpointError, ConfigError, DatasetError
from util.overlay import write_mp4
from util.palette import davis_palette, write_indexed_png
from webapp.session import Caps, Session, Sessions
from webapp.weights import resolve_model


def make_clip(folder: Path, frames: int = 12, seed: int = 11) -> tuple[Path, np.ndarray]:
    """An mp4 of 64x96 frames where object 2 enters late, and its true labels."""
    images, labels = make_video(np.random.RandomState(seed), 64, 96, frames, 2, late_objects=True, step=3)
    path = folder / f"clip{seed}_{frames}.mp4"
    folder.mkdir(parents=True, exist_ok=True)
    write_mp4(iter(images), path)
    return path, labels


def png(labels: np.ndarray, path: Path) -> Path:
    write_indexed_png(labels, davis_palette(), path)
    return path


def test_zip_member_names_stay_in_the_session_folder(tmp_path):
    frame = np.zeros((16, 24, 3), np.uint8)
    archive = tmp_path / "frames.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for i, name in enumerate(["../../escape.png", "/abs/00001.png", "sub/00002.png", ".hidden.png", "a.txt"]):
            data = Image.fromarray(frame + i)
            buffer = tmp_path / f"b{i}.png"
            data.save(buffer)
            z.write(buffer, name)
            buffer.unlink()
    session = Session(tmp_path / "session")
    assert "3 frames" in session.load(archive, "../frames.zip", Caps())
    assert session.frames.names == ["00001", "00002", "escape"]
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and p != archive and "session" not in p.parts]
    assert outside == []
    assert session.name == "frames"


def test_uploads_past_the_caps_and_not_videos_are_refused(tmp_path):
    video, _ = make_clip(tmp_path, frames=6)
    session = Session(tmp_path / "session")
    with pytest.raises(DatasetError, match="clip.mp4: 6 frames; this app takes at most 5"):
        session.load(video, "clip.mp4", Caps(max_frames=5))
    with pytest.raises(DatasetError, match="frames of 96x64; this app takes at most 32 pixels"):
        session.load(video, "clip.mp4", Caps(max_side=32))
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(DatasetError, match="^notes.mp4: not a readable video"):
        session.load(text, "notes.mp4", Caps())
    with pytest.raises(DatasetError, match="^notes.txt: not a video"):
        session.load(text, "notes.txt", Caps())


def test_tools_paint_from_the_shown_mask(tmp_path):
    video, _ = make_clip(tmp_path, frames=4)
    session = Session(tmp_path / "session")
    session.load(video, "clip.mp4", Caps())
    assert session.paint(0, [(10, 5)], 1, "rectangle", 8).sum() == 0  # first corner only
    labels = session.paint(0, [(20, 12)], 1, "rectangle", 8)
    assert (labels == 1).sum() == 11 * 8 and labels[5:13, 10:21].all()
    labels = session.paint(0, [(60, 30)], 2, "brush", 3)  # a click: a disc
    assert labels[30, 60] == 2 and labels[30, 64] == 0 and set(np.unique(labels)) == {0, 1, 2}
    labels = session.paint(0, [(60, 30)], 2, "eraser", 5)
    assert set(np.unique(labels)) == {0, 1}
    # a drag: every pixel within the radius of the path, and none further
    labels = session.paint(0, [(40, 50), (55, 50), (70, 44)], 2, "brush", 2)
    assert labels[48:53, 40:56].all() and labels[50, 38] == 2 and labels[47, 62] == 2 and labels[44, 70] == 2
    assert labels[50, 73] == 0 and labels[53, 45] == 0 and labels[46, 45] == 0
    labels = session.paint(0, [(40, 50), (47, 50)], 2, "eraser", 2)  # erases along its path only
    assert not (labels[48:53, 40:48] == 2).any() and labels[50, 38] == 0 and labels[50, 52] == 2 and labels[10, 12] == 1
    labels = session.paint(0, [(-5, 60), (200, 99)], 3, "rectangle", 0)  # a drag past the edges
    assert (labels[60:, :] == 3).all() and (labels[:60] != 3).all()
    with pytest.raises(ValueError, match="a stroke has 1 to"):
        session.paint(0, [], 1, "brush", 3)
    # a frame with a propagated mask and no annotation: the correction starts from that mask
    propagated = np.zeros((64, 96), np.uint8)
    propagated[40:50, 40:50] = 2
    png(propagated, session.result_path(2))
    labels = session.paint(2, [(5, 5)], 1, "brush", 2)
    assert (labels == 2).sum() == 100 and labels[5, 5] == 1
    assert sorted(session.annotations()) == [0, 2]
    session.set_annotation(2, np.zeros_like(labels))  # erased to nothing: no annotation
    assert sorted(session.annotations()) == [0]


def test_strokes_from_the_page_are_checked():
    pytest.importorskip("gradio", reason="the app's extra: pip install -r requirements-app.txt")
    from webapp.ui import _stroke_points

    assert _stroke_points('{"stroke": 3, "points": [[1, 2], [3, 4]]}') == [(1, 2), (3, 4)]
    for text in ("[1, 2]", '{"points": [[1, 2, 3]]}', '{"points": [["a", 2]]}', "{"):
        with pytest.raises(ValueError, match="not a stroke"):
            _stroke_points(text)


def test_weights_without_model(tmp_path, caplog):
    with pytest.raises(ConfigError, match="python demo.py"):
        resolve_model(None, tmp_path / "saves")
    run = tmp_path / "saves" / "Dec07_demo_s03"
    run.mkdir(parents=True)
    for i, name in enumerate(["run_2.pth", "run_4.pth", "run_checkpoint.pth", "run_checkpoint_prev.pth"]):
        (run / name).write_bytes(b"")
        time.sleep(0.01)
        Path(run / name).touch()
    assert resolve_model(None, tmp_path / "saves") == run / "run_4.pth"
    assert resolve_model(str(run / "run_2.pth")) == run / "run_2.pth"
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        resolve_model(str(tmp_path / "missing.pth"))


def test_weights_by_published_name(tmp_path, monkeypatch):
    """A published name is the zoo's cached file, its recorded sha256 checked (no download:
    the file is already in the cache)."""
    monkeypatch.setattr(zoo, "MODELS", {"stcn-test": zoo.PublishedModel("http://127.0.0.1:9/x", "stcn_test.pth", "")})
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = zoo.default_cache_dir() / "stcn_test.pth"
    cached.parent.mkdir(parents=True)
    tiny_stcn_checkpoint(cached)
    (cached.parent / "stcn_test.pth.sha256").write_text(zoo.sha256_of(cached) + "\n")
    assert resolve_model("stcn-test") == cached
    assert isinstance(load_network(resolve_model("stcn-test"), torch.device("cpu")), GSFM)  # loadable
    with open(cached, "ab") as f:
        f.write(b"\0")
    with pytest.raises(CheckpointError, match="differs from the .* recorded at download"):
        resolve_model("stcn-test")
    with pytest.raises(
        CheckpointError, match="^stcn-s9: no such checkpoint file, nor a published name \\(stcn-test\\)"
    ):
        resolve_model("stcn-s9")


def test_without_gradio_the_app_says_how_to_install_it(monkeypatch, capsys):
    import app

    monkeypatch.setitem(sys.modules, "gradio", None)
    with pytest.raises(SystemExit) as exit_:
        cli_run(lambda: app.main([]))
    assert exit_.value.code == 2
    assert "pip install -r requirements-app.txt" in capsys.readouterr().err


def test_sessions_have_their_own_folders_and_are_deleted(tmp_path):
    sessions = Sessions(tmp_path / "sessions", ttl=3600)
    a, b = sessions.get("tab-a"), sessions.get("tab-b")
    assert a is sessions.get("tab-a") and a.folder != b.folder and "tab" not in a.folder.name
    sessions.end("tab-a")
    assert not a.folder.exists() and b.folder.exists() and len(sessions) == 1
    assert sessions.expire() == []  # b is not idle for an hour yet
    sessions.ttl = 0
    with b.propagating:  # never while its propagation runs
        assert sessions.expire() == []
    assert sessions.expire() == ["tab-b"] and not b.folder.exists()
    c = sessions.get("tab-c")
    sessions.close()
    assert not c.folder.exists() and len(sessions) == 0


def test_constraints_pin_versions_gradio_accepts():
    """`make venv` installs Gradio under constraints.txt: every pin of a package Gradio
    needs (pillow, for one) must be inside Gradio's range."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    from tests.test_run_safety import requirement_lines

    try:
        needs = [Requirement(r) for r in requires("gradio") or []]
    except PackageNotFoundError:
        pytest.skip("gradio is not installed (pip install -r requirements-app.txt)")
    pins = dict(line.split("==") for line in requirement_lines("constraints.txt"))
    pins = {canonicalize_name(name): version for name, version in pins.items()}
    checked = [r for r in needs if (r.marker is None or r.marker.evaluate()) and canonicalize_name(r.name) in pins]
    assert "pillow" in {canonicalize_name(r.name) for r in checked}
    for requirement in checked:
        assert requirement.specifier.contains(pins[canonicalize_name(requirement.name)]), requirement


def test_app_options_are_checked_before_serving(tmp_path):
    import app

    pytest.importorskip("gradio", reason="the app's extra: pip install -r requirements-app.txt")
    with pytest.raises(ConfigError, match="--amp does not apply to --backend onnxruntime"):
        app.main(["--backend", "onnxruntime", "--onnx", str(tmp_path / "graphs"), "--amp"])
    with pytest.raises(CheckpointError, match="missing.pth: no such checkpoint file"):
        app.main(["--model", str(tmp_path / "missing.pth")])
    assert not list(tmp_path.iterdir())  # nothing made, nothing served
