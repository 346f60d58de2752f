"""The served app through gradio_client: the API names give eval_generic.py's masks, two
sessions stay apart, bad uploads get a message, a propagation can be cancelled mid-way,
SIGTERM stops the app and deletes the session folders."""

import json
import signal
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import app_export_and_engine, start_app
from tests.test_app import make_clip, png
from util.palette import read_mask

pytest.importorskip("gradio_client", reason="the app's extra: pip install -r requirements-app.txt")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(golden_weights_file, tmp_path_factory):
    process, url = start_app(golden_weights_file, tmp_path_factory.mktemp("app"))
    yield url
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)


def connect(url: str, tmp_path: Path) -> Client:
    return Client(url, verbose=False, download_files=str(tmp_path / "downloads"))


def test_api_names_give_the_engines_masks(served, golden_weights_file, tmp_path):
    """Annotated on frame 2 (object 1) and frame 6 (object 2 appears): frames 0-1 come from
    the backward pass, 7-11 from both annotations; the export equals eval_generic.py's."""
    video, labels = make_clip(tmp_path)
    client = connect(served, tmp_path)
    assert "12 frames of 96x64" in client.predict(handle_file(str(video)), api_name="/load_video")[0]
    first = png(np.where(labels[2] == 1, 1, 0).astype(np.uint8), tmp_path / "first.png")
    client.predict(2, handle_file(str(first)), api_name="/add_mask")
    client.predict(6, handle_file(str(png(labels[6], tmp_path / "later.png"))), api_name="/add_mask")
    job = client.submit(api_name="/propagate")
    assert job.result()[0] == "finished: 12/12 frames"
    masks, overlay_video, areas = client.predict(api_name="/export")

    app, engine = app_export_and_engine(golden_weights_file, video, Path(masks), tmp_path)
    assert sorted(app) == [f"{i:05d}" for i in range(12)] and app.keys() == engine.keys()
    for name in app:
        np.testing.assert_array_equal(app[name], engine[name], err_msg=name)
    assert {1, 2} <= set(np.unique(app["00000"]).tolist()) | set(np.unique(app["00011"]).tolist())
    np.testing.assert_array_equal(read_mask(tmp_path / "export" / "annotations" / "00002.png"), labels[2] == 1)

    table = json.loads(Path(areas).read_text())
    assert table["frames"] == sorted(app) and table["frame_size"] == [64, 96]
    for object_id, per_frame in table["areas"].items():
        assert per_frame == [int((app[name] == int(object_id)).sum()) for name in table["frames"]]
    capture = cv2.VideoCapture(overlay_video)
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    capture.release()


def test_two_concurrent_sessions_stay_apart(served, golden_weights_file, tmp_path):
    clients, videos = [], []
    for seed in (5, 6):
        video, labels = make_clip(tmp_path / str(seed), frames=5, seed=seed)
        client = connect(served, tmp_path / str(seed))
        client.predict(handle_file(str(video)), api_name="/load_video")
        client.predict(0, handle_file(str(png(labels[0], tmp_path / f"{seed}.png"))), api_name="/add_mask")
        clients.append(client)
        videos.append(video)
    jobs = [client.submit(api_name="/propagate") for client in clients]  # at the same time
    assert [job.result()[0] for job in jobs] == ["finished: 5/5 frames"] * 2
    for client, video in zip(clients, videos):
        masks = client.predict(api_name="/export")[0]
        app, engine = app_export_and_engine(golden_weights_file, video, Path(masks), Path(masks).parent)
        assert len(app) == 5 and all(np.array_equal(app[n], engine[n]) for n in app)
    stranger = connect(served, tmp_path / "stranger")  # a third session sees neither
    with pytest.raises(AppError, match="no video loaded in this session"):
        stranger.predict(api_name="/propagate")
    with pytest.raises(AppError, match="no video loaded in this session"):
        stranger.predict(api_name="/export")


def test_bad_uploads_get_a_message(served, tmp_path):
    client = connect(served, tmp_path)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    with pytest.raises(AppError, match="notes.mp4: not a readable video file"):
        client.predict(handle_file(str(text)), api_name="/load_video")
    video, _ = make_clip(tmp_path, frames=4)
    client.predict(handle_file(str(video)), api_name="/load_video")
    empty = png(np.zeros((64, 96), np.uint8), tmp_path / "empty.png")
    with pytest.raises(AppError, match="empty.png: the mask contains no object"):
        client.predict(0, handle_file(str(empty)), api_name="/add_mask")
    with pytest.raises(AppError, match="no annotation yet"):
        client.predict(api_name="/propagate")


def test_cancel_in_the_middle_of_propagation(served, tmp_path):
    video, labels = make_clip(tmp_path, frames=24)
    client = connect(served, tmp_path)
    client.predict(handle_file(str(video)), api_name="/load_video")
    client.predict(0, handle_file(str(png(labels[0], tmp_path / "m.png"))), api_name="/add_mask")
    job = client.submit(api_name="/propagate")
    deadline = time.time() + 120
    while not job.outputs() and time.time() < deadline:
        time.sleep(0.05)
    assert client.predict(api_name="/cancel") == "cancelling"
    status = job.result()[0]
    assert status.startswith("cancelled: ") and int(status.split()[1].split("/")[0]) < 24
    with pytest.raises(AppError, match="nothing to export yet"):
        client.predict(api_name="/export")
    assert client.submit(api_name="/propagate").result()[0] == "finished: 24/24 frames"  # usable again


def test_sigterm_stops_the_app_and_deletes_the_sessions(golden_weights_file, tmp_path):
    workdir = tmp_path / "work"
    process, url = start_app(golden_weights_file, workdir)
    try:
        video, _ = make_clip(tmp_path, frames=3)
        connect(url, tmp_path).predict(handle_file(str(video)), api_name="/load_video")
        sessions = list(workdir.glob("gsfm_app_*/sessions/*"))
        assert len(sessions) == 1 and (sessions[0] / "input" / "video.mp4").is_file()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    assert not list(workdir.glob("gsfm_app_*"))
    assert "stopped; session folders deleted" in (workdir / "app.log").read_text()
