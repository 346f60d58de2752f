"""The ONNX export cache of the onnxruntime backend (``OnnxRuntimeBackend.cached``): a size is
exported on first use and reused afterwards, two processes that want one size at once export
it once, and graphs of other weights are never used. Frames are 32x48 (the smallest the
network takes) so that an export is its tracing time only."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import model.export
from inference_core import InferenceCore
from model.export import MANIFEST, read_manifest
from model.synthetic_weights import fingerprint
from tests.golden import golden_network
from tests.test_onnx import onnx_packages_or_skip
from util.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent
SIZE = (32, 48)


def first_frame() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = np.zeros(SIZE, np.uint8)
    labels[8:24, 10:30] = 1
    return rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8), labels


class NoExport(Exception):
    pass


def refuse_exports(monkeypatch) -> None:
    def export_size(*args, **kwargs):
        raise NoExport

    monkeypatch.setattr(model.export, "export_size", export_size)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A cache holding the golden weights' graphs of SIZE, made by a first run."""
    onnx_packages_or_skip()
    from inference_backend import OnnxRuntimeBackend

    root = tmp_path_factory.mktemp("onnx_cache")
    backend = OnnxRuntimeBackend.cached(golden_network(), root, threads=1)
    InferenceCore(backend).step(*first_frame())
    return root, backend.folder


@pytest.mark.slow
def test_the_first_run_exports_into_the_weights_folder_and_a_second_exports_nothing(cache, monkeypatch, caplog):
    from inference_backend import OnnxRuntimeBackend

    root, folder = cache
    network = golden_network()
    assert folder == root / fingerprint(network.state_dict())
    assert list(read_manifest(folder)["sizes"]) == ["32x48"]
    refuse_exports(monkeypatch)
    backend = OnnxRuntimeBackend.cached(network, root, threads=1)
    with caplog.at_level("INFO", logger="gsfm"):
        prob = InferenceCore(backend).step(*first_frame())
    assert prob.shape == (2, *SIZE)
    assert "from the export cache" in caplog.text and "exported" not in caplog.text


@pytest.mark.slow
def test_graphs_of_other_weights_are_never_used(cache, monkeypatch):
    from inference_backend import OnnxRuntimeBackend

    root, folder = cache
    other = golden_network()
    other.decoder.pred.bias.data += 1
    refuse_exports(monkeypatch)
    backend = OnnxRuntimeBackend.cached(other, root, threads=1)
    assert backend.folder != folder
    with pytest.raises(NoExport):  # its own export, not the cached graphs of the golden weights
        InferenceCore(backend).step(*first_frame())


def test_a_cache_folder_with_a_manifest_of_other_weights_is_refused(tmp_path, monkeypatch):
    onnx_packages_or_skip()
    from inference_backend import OnnxRuntimeBackend

    network = golden_network()
    folder = tmp_path / fingerprint(network.state_dict())
    folder.mkdir()
    entry = {"height": 32, "width": 48, "graphs": {}, "io": {}}
    manifest = {"format": 1, "opset": 18, "weights_sha256": "0" * 64, "model": "", "sizes": {"32x48": entry}}
    (folder / MANIFEST).write_text(json.dumps(manifest))
    refuse_exports(monkeypatch)
    with pytest.raises(ConfigError, match="holds graphs of other weights.*not used"):
        InferenceCore(OnnxRuntimeBackend.cached(network, tmp_path)).step(*first_frame())


# Each process loads the golden weights and steps one frame through a cached backend.
CHILD = textwrap.dedent(
    """
    import sys, torch
    torch.set_num_threads(1)
    from inference_backend import OnnxRuntimeBackend
    from inference_core import InferenceCore
    from tests.golden import golden_network
    from tests.test_onnx_cache import first_frame
    InferenceCore(OnnxRuntimeBackend.cached(golden_network(), sys.argv[1], threads=1)).step(*first_frame())
    """
)


@pytest.mark.slow
def test_two_processes_wanting_one_size_at_once_export_it_once(tmp_path):
    onnx_packages_or_skip()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp_path)], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [child.communicate(timeout=600)[0] for child in children]
    assert [child.returncode for child in children] == [0, 0]
    assert sum("exported the ONNX graphs" in out for out in outputs) == 1, outputs
    assert sum("from the export cache" in out for out in outputs) == 1, outputs
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert list(read_manifest(folder)["sizes"]) == ["32x48"]
