"""Published checkpoints by name (model/zoo.py, scripts/download_weights.py), against a local
HTTP server: resume, the checkpoint check, the sha256 record, the --model resolver."""

import argparse
import http.server
import threading

import pytest
import torch

from evaluation.run import start
from model import zoo
from model.network import GSFM
from scripts import download_weights
from tests.golden import key_list
from util.errors import CheckpointError


def tiny_stcn_checkpoint(path):
    """STCN's key set and shapes, every tensor a broadcast scalar: a small file."""
    state = {
        e["key"]: torch.zeros((), dtype=torch.long if e["kind"] == "bn_count" else torch.float32).expand(e["shape"])
        for e in key_list("stcn_eval")
    }
    torch.save(state, path)
    return path.read_bytes()


@pytest.fixture
def server(tmp_path):
    data = tiny_stcn_checkpoint(tmp_path / "source.pth")
    files = {
        "/good.pth": data,
        "/flaky.pth": data,  # the first answer stops half way
        "/truncated.pth": data[: len(data) // 2],
        "/page.pth": b"<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head></html>",
    }
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            seen.append((self.path, self.headers.get("Range")))
            start = 0
            if self.headers.get("Range"):
                start = int(self.headers["Range"].split("=")[1].rstrip("-"))
                self.send_response(206)
            else:
                self.send_response(200)
            self.send_header("Content-Type", "text/html" if self.path == "/page.pth" else "application/octet-stream")
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            if self.path == "/flaky.pth" and len(seen) == 1:
                self.wfile.write(body[: len(body) // 2])
                self.close_connection = True
                return
            self.wfile.write(body[start:])

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield base, data, seen
    httpd.shutdown()
    httpd.server_close()


def publish(monkeypatch, base, path):
    monkeypatch.setattr(zoo, "MODELS", {"stcn-test": zoo.PublishedModel(base + path, "stcn_test.pth", "test")})


def test_interrupted_download_resumes_and_the_sha256_is_checked_later(server, tmp_path, monkeypatch):
    base, data, seen = server
    publish(monkeypatch, base, "/flaky.pth")
    cache = tmp_path / "cache"
    with pytest.raises(CheckpointError, match="interrupted at"):
        download_weights.main(["stcn-test", "--cache_dir", str(cache)])
    assert (cache / "stcn_test.pth.part").stat().st_size == len(data) // 2
    path = download_weights.main(["stcn-test", "--cache_dir", str(cache)])
    assert seen[-1] == ("/flaky.pth", f"bytes={len(data) // 2}-")  # resumed, not restarted
    assert path.read_bytes() == data and not (cache / "stcn_test.pth.part").exists()
    assert (cache / "stcn_test.pth.sha256").read_text().strip() == zoo.sha256_of(path)
    requests = len(seen)
    assert zoo.download("stcn-test", cache) == path and len(seen) == requests  # cached: no request
    with open(path, "ab") as f:
        f.write(b"\0")
    with pytest.raises(CheckpointError, match="differs from the .* recorded at download"):
        zoo.download("stcn-test", cache)


@pytest.mark.parametrize(
    "path,message",
    [
        ("/page.pth", "an HTML page .* arrived instead of a checkpoint"),
        ("/truncated.pth", r"not a readable checkpoint \(truncated\?\): \d+ bytes arrived"),
    ],
)
def test_what_is_not_a_checkpoint_is_refused(server, tmp_path, monkeypatch, path, message):
    base, _, _ = server
    publish(monkeypatch, base, path)
    with pytest.raises(CheckpointError, match=message):
        zoo.download("stcn-test", tmp_path)
    assert not any(p.name.startswith("stcn_test.pth") and not p.name.endswith(".lock") for p in tmp_path.iterdir())


def test_unknown_host_file_and_name(server, tmp_path, monkeypatch):
    base, _, _ = server
    publish(monkeypatch, base, "/missing.pth")
    with pytest.raises(CheckpointError, match="HTTP 404"):
        zoo.download("stcn-test", tmp_path)
    with pytest.raises(CheckpointError, match="unknown model 'stcn-s9'; published: stcn-test"):
        zoo.download("stcn-s9", tmp_path)


def test_model_names_resolve_where_paths_are_taken(server, tmp_path, monkeypatch):
    base, data, _ = server
    publish(monkeypatch, base, "/good.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert zoo.resolve_model("saves/mine.pth") == "saves/mine.pth"
    resolved = zoo.resolve_model("stcn-test")
    assert resolved == str(tmp_path / "torch" / "hub" / "checkpoints" / "stcn_test.pth")
    args = argparse.Namespace(model="stcn-test", backend="pytorch", onnx=None, amp=False, device="cpu", threads=None)
    _, network = start(args)  # what every eval script and eval_generic.py call
    assert isinstance(network, GSFM)
