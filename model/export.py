"""The per-frame networks as ONNX graphs, and the manifest that describes an export folder.

Three graphs per frame size, the inference verbs of ``GSFM`` with plain tensor inputs and
outputs (the memory, top-k read and aggregation are not in them; the engine keeps those):
- ``key_encoder``: frame (1, 3, H, W) -> k16, f16_thin, f16, f8, f4 (``KeyFeatures``);
- ``value_encoder``: frame, f16, masks (K, 1, H, W), others (K, 1, H, W) -> values
  (K, 512, H/16, W/16), the object count K a dynamic axis;
- ``decoder``: readout (K, 512, H/16, W/16), f16_thin, f8, f4 -> object probabilities
  (K, 1, H, W), K dynamic, all objects in one call.
H and W are the padded processing size, fixed per graph: the spectral filters become fixed
cos/sin matrices of that size (``model.spectral``, real form), so no graph holds a complex
tensor or a DFT operator. ``manifest.json`` beside the graphs records, per size, the graph
files and every input's and output's shape; a folder may hold several sizes of one
checkpoint.

``ensure_size`` is the export cache's entry point: it exports a size a folder lacks, one
process at a time (an exclusive lock on the folder), so processes that want the same size
at once (torchrun ranks, independent runs) export it once and the others wait and reuse it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import warnings
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from model.network import GSFM, STRIDE
from model.spectral import real_dft_form
from model.synthetic_weights import fingerprint
from util.atomic import atomic_save
from util.errors import ConfigError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
OPSET = 18
GRAPHS = ("key_encoder", "value_encoder", "decoder")
OBJECTS = "objects"  # the name of the dynamic axis
MAX_OBJECTS = 255  # masks are uint8 index maps
LOCK = ".export.lock"


class KeyEncoderGraph(nn.Module):
    def __init__(self, network: GSFM):
        super().__init__()
        self.network = network

    def forward(self, frame: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.network.encode_key(frame))


class ValueEncoderGraph(nn.Module):
    """``GSFM.encode_value_objects`` with the others' masks as an input: they are summed
    outside (``other_objects``), which keeps the graph free of a loop over the objects."""

    def __init__(self, network: GSFM):
        super().__init__()
        self.network = network

    def forward(
        self, frame: torch.Tensor, f16: torch.Tensor, masks: torch.Tensor, others: torch.Tensor
    ) -> torch.Tensor:
        k = masks.shape[0]
        return self.network.encode_value(frame.expand(k, -1, -1, -1), f16.expand(k, -1, -1, -1), masks, others)


class DecoderGraph(nn.Module):
    """``GSFM.decode_objects`` for all K objects in one call. The frame's skip convolutions
    run once and are broadcast to the objects before the decoder adds them (the same sums
    as the PyTorch path's), so the graph has no branch on K."""

    def __init__(self, network: GSFM):
        super().__init__()
        self.decoder = network.decoder

    def forward(
        self, readout: torch.Tensor, f16_thin: torch.Tensor, f8: torch.Tensor, f4: torch.Tensor
    ) -> torch.Tensor:
        k = readout.shape[0]
        skip8 = self.decoder.up_16_8.skip_conv(f8).expand(k, -1, -1, -1)
        skip4 = self.decoder.up_8_4.skip_conv(f4).expand(k, -1, -1, -1)
        features = torch.cat([readout, f16_thin.expand(k, -1, -1, -1)], 1)
        mask_logit, _ = self.decoder._decode(features, skip8, skip4, with_boundary=False)
        return torch.sigmoid(mask_logit)


def padded_size(height: int, width: int) -> tuple[int, int]:
    """The processing size of a frame: each side rounded up to a multiple of the stride."""
    if height < 1 or width < 1:
        raise ConfigError(f"frame size must be positive, got {height}x{width}")
    return -(-height // STRIDE) * STRIDE, -(-width // STRIDE) * STRIDE


def size_key(height: int, width: int) -> str:
    return f"{height}x{width}"


def graph_io(height: int, width: int) -> dict[str, dict[str, dict[str, list]]]:
    """Each graph's input and output names with their shapes (``OBJECTS`` for the dynamic axis)."""
    h, w = height // STRIDE, width // STRIDE
    features = {
        "k16": [1, 64, h, w],
        "f16_thin": [1, 512, h, w],
        "f16": [1, 1024, h, w],
        "f8": [1, 512, 2 * h, 2 * w],
        "f4": [1, 256, 4 * h, 4 * w],
    }
    frame = [1, 3, height, width]
    masks = [OBJECTS, 1, height, width]
    return {
        "key_encoder": {"inputs": {"frame": frame}, "outputs": features},
        "value_encoder": {
            "inputs": {"frame": frame, "f16": features["f16"], "masks": masks, "others": masks},
            "outputs": {"values": [OBJECTS, 512, h, w]},
        },
        "decoder": {
            "inputs": {
                "readout": [OBJECTS, 512, h, w],
                "f16_thin": features["f16_thin"],
                "f8": features["f8"],
                "f4": features["f4"],
            },
            "outputs": {"prob": masks},
        },
    }


def read_manifest(folder: str | os.PathLike) -> dict:
    """The manifest of an export folder, with a clear error when it is missing or broken."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ConfigError(
            f"{path}: no ONNX export here (make one with: python -m scripts.export_onnx "
            f"--model M.pth --output {folder})"
        )
    try:
        manifest = json.loads(path.read_text())
        if manifest["format"] != FORMAT_VERSION or not isinstance(manifest["sizes"], dict):
            raise ValueError(f"format {manifest['format']}, expected {FORMAT_VERSION}")
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{path}: not a readable export manifest ({type(e).__name__}: {e})") from None
    return manifest


def import_export_packages():
    """onnx (returned) and onnxscript, the optional export dependencies, or a clear error."""
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch.onnx's dynamo exporter needs it)
    except ImportError as e:
        raise ConfigError(f"the ONNX export needs {e.name}: pip install -r requirements-export.txt") from None
    return onnx


@contextlib.contextmanager
def _exclusive(folder: Path) -> Iterator[None]:
    """Hold the folder's export lock (waiting for it). A POSIX lock: the kernel drops it
    when its process dies, so a crashed export never blocks the next one."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # drops the lock


def ensure_size(
    network: GSFM, folder: str | os.PathLike, height: int, width: int, model_name: str = "", weights: str | None = None
) -> tuple[dict, float | None]:
    """The manifest entry of ``height`` x ``width`` (padded) in ``folder``, exported first if
    the folder lacks it; with the seconds the export took (None when it was there). The
    folder must hold ``network``'s weights (``weights``: their fingerprint, if known)."""
    folder = Path(folder)
    key = size_key(*padded_size(height, width))
    with _exclusive(folder):  # the manifest is read under the lock: another process may just have added the size
        manifest = read_manifest(folder) if (folder / MANIFEST).is_file() else None
        weights = weights or fingerprint(network.state_dict())
        if manifest is not None and manifest["weights_sha256"] != weights:
            raise ConfigError(
                f"{folder / MANIFEST}: holds graphs of other weights (sha256 {manifest['weights_sha256'][:12]}, "
                f"not {weights[:12]}); it is not used"
            )
        if manifest is not None and key in manifest["sizes"]:
            return manifest["sizes"][key], None
        started = time.perf_counter()
        entry = export_size(network, folder, height, width, model_name, weights)
        return entry, time.perf_counter() - started


def export_size(
    network: GSFM,
    folder: str | os.PathLike,
    height: int,
    width: int,
    model_name: str = "",
    weights: str | None = None,
) -> dict:
    """Export the three graphs of ``network`` for frames of ``height`` x ``width`` (padded to
    the stride) into ``folder`` and add the size to its manifest (made if absent). A size
    already there is replaced. ``weights``: the network's fingerprint, if known. Returns the
    size's manifest entry."""
    if network.single_object:
        raise ConfigError("the ONNX export takes the multi-object network (scripts load it with load_network)")
    folder = Path(folder)
    height, width = padded_size(height, width)
    weights = weights or fingerprint(network.state_dict())
    manifest_path = folder / MANIFEST
    manifest = (
        read_manifest(folder)
        if manifest_path.is_file()
        else {"format": FORMAT_VERSION, "opset": OPSET, "weights_sha256": weights, "model": model_name, "sizes": {}}
    )
    if manifest["weights_sha256"] != weights:
        raise ConfigError(
            f"{manifest_path}: holds graphs of other weights ({manifest['model'] or 'unnamed'}, "
            f"sha256 {manifest['weights_sha256'][:12]}); export {model_name or 'these weights'} "
            f"into another folder"
        )
    onnx = import_export_packages()
    device = next(network.parameters()).device
    io = graph_io(height, width)
    example = {
        name: torch.rand([2 if d == OBJECTS else d for d in shape], device=device)
        for graph in io.values()
        for name, shape in graph["inputs"].items()
    }
    modules = {
        "key_encoder": KeyEncoderGraph(network).eval(),
        "value_encoder": ValueEncoderGraph(network).eval(),
        "decoder": DecoderGraph(network).eval(),
    }
    entry = {"height": height, "width": width, "graphs": {}, "io": io}
    objects = torch.export.Dim(OBJECTS, min=1, max=MAX_OBJECTS)
    with real_dft_form(network), torch.no_grad(), warnings.catch_warnings():
        # masks and others share the objects axis, which the exporter reports as a warning
        warnings.filterwarnings("ignore", message=".*axis name.*shares the same shape constraints")
        # the filters' caches are filled outside the trace (LFM on the 1/16 features, HFM on the 1/4)
        network.lfm.prepare(height // STRIDE, width // STRIDE, device)
        network.decoder.hfm.prepare(height // 4, width // 4, device)
        cached = [m.cached_sizes() for m in (network.lfm, network.decoder.hfm)]
        for name in GRAPHS:
            inputs = list(io[name]["inputs"])
            dynamic = {i: ({0: objects} if io[name]["inputs"][i][0] == OBJECTS else None) for i in inputs}
            program = torch.onnx.export(
                modules[name],
                tuple(example[i] for i in inputs),
                dynamo=True,
                opset_version=OPSET,
                input_names=inputs,
                output_names=list(io[name]["outputs"]),
                dynamic_shapes=dynamic if any(dynamic.values()) else None,
            )

            def write(tmp: Path) -> None:  # checked before it takes the graph's name
                program.save(tmp, external_data=False)
                onnx.checker.check_model(str(tmp), full_check=True)

            if [m.cached_sizes() for m in (network.lfm, network.decoder.hfm)] != cached:
                raise RuntimeError(f"{name}: a spectral filter saw a size not prepared before the trace")
            file = f"{name}_{size_key(height, width)}.onnx"
            atomic_save(write, folder / file)
            entry["graphs"][name] = file
    manifest["sizes"][size_key(height, width)] = entry
    atomic_save(lambda tmp: tmp.write_text(json.dumps(manifest, indent=1)), manifest_path)
    return entry
