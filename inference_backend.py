"""What runs the per-frame networks for the engine: PyTorch or ONNX Runtime.

``InferenceCore`` makes three network calls per frame, ``encode_key``,
``encode_value_objects`` and ``decode_objects`` (the verbs of ``GSFM``); a backend answers
them with torch tensors on its ``device``. Everything between the calls (memory bank, top-k
read, soft aggregation, resizing and padding) is the engine's own code, the same for both.

- ``PyTorchBackend``: the ``GSFM`` network itself.
- ``OnnxRuntimeBackend``: the graphs of an export folder (``python -m scripts.export_onnx``,
  ``model.export``), one set per padded frame size, loaded when a frame of that size first
  comes. A frame of a size the folder does not hold is an error naming both sizes and the
  command that exports it: resizing or padding it further would change the masks.
  ``OnnxRuntimeBackend.cached`` instead exports each size on first use into a cache folder
  named by the weights' fingerprint (``default_onnx_cache``), so graphs of other weights
  are never used and no manual export is needed.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from model.export import GRAPHS, ensure_size, read_manifest, size_key
from model.network import GSFM, KeyFeatures, other_objects
from model.synthetic_weights import fingerprint
from model.winograd import use_winograd
from util.errors import ConfigError
from util.log import get_logger

logger = get_logger(__name__)

BACKENDS = ("pytorch", "onnxruntime")


class Backend(Protocol):
    name: str
    device: torch.device

    @property
    def weights_sha256(self) -> str:
        """The fingerprint of the weights it runs (``model.synthetic_weights.fingerprint``)."""

    def encode_key(self, frame: torch.Tensor) -> KeyFeatures: ...

    def encode_value_objects(self, frame: torch.Tensor, key_f16: torch.Tensor, masks: torch.Tensor) -> torch.Tensor: ...

    def decode_objects(
        self, readout: torch.Tensor, f16_thin: torch.Tensor, f8: torch.Tensor, f4: torch.Tensor
    ) -> torch.Tensor: ...

    def use_channels_last(self, enabled: bool) -> None:
        """The convolutions' layout (``GSFM.use_channels_last``)."""

    def use_winograd(self, enabled: bool) -> None:
        """Winograd 3x3 convolutions on the CPU (``model.winograd``), or the direct ones."""


class PyTorchBackend:
    name = "pytorch"

    def __init__(self, network: GSFM):
        self.network = network
        self.device = next(network.parameters()).device

    @property
    def weights_sha256(self) -> str:
        return fingerprint(self.network.state_dict())

    def use_channels_last(self, enabled: bool) -> None:
        self.network.use_channels_last(enabled)

    def use_winograd(self, enabled: bool) -> None:
        if enabled and self.device.type != "cpu":
            raise ConfigError(
                f"--winograd runs on the CPU (NNPACK); on {self.device.type} the library picks its own kernels"
            )
        use_winograd(self.network, enabled)

    def encode_key(self, frame: torch.Tensor) -> KeyFeatures:
        return self.network.encode_key(frame)

    def encode_value_objects(self, frame: torch.Tensor, key_f16: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return self.network.encode_value_objects(frame, key_f16, masks)

    def decode_objects(
        self, readout: torch.Tensor, f16_thin: torch.Tensor, f8: torch.Tensor, f4: torch.Tensor
    ) -> torch.Tensor:
        return self.network.decode_objects(readout, f16_thin, f8, f4)


def as_backend(network: GSFM | Backend) -> Backend:
    """A backend as is; a ``GSFM`` network wrapped in ``PyTorchBackend``."""
    return PyTorchBackend(network) if isinstance(network, GSFM) else network


def default_onnx_cache() -> Path:
    """Where exports are cached: ``$XDG_CACHE_HOME/gsfm/onnx`` (``~/.cache/gsfm/onnx``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gsfm" / "onnx"


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(
            "the onnxruntime backend needs the onnxruntime package: pip install -r requirements-export.txt"
        ) from None
    return onnxruntime


class OnnxRuntimeBackend:
    """The graphs of export ``folder`` in ONNX Runtime sessions. ``device``: where the engine's
    tensors live (inputs and outputs cross to and from numpy on the host); the CUDA provider
    is used for a CUDA device when this onnxruntime build has it, the CPU provider
    otherwise. ``threads``: ONNX Runtime's intra-op threads (default: torch's count).
    ``exporter``: the network the folder's graphs come from, when sizes it lacks are to be
    exported on first use (``cached``; ``weights``: its fingerprint, if known); without it,
    a missing size is an error."""

    name = "onnxruntime"

    def __init__(
        self,
        folder: str | os.PathLike,
        device: torch.device | str = "cpu",
        threads: int | None = None,
        exporter: GSFM | None = None,
        model_name: str = "",
        weights: str | None = None,
    ):
        self.ort = import_onnxruntime()
        self.folder = Path(folder)
        self.exporter, self.model_name = exporter, model_name
        if exporter is None:
            self.manifest = read_manifest(self.folder)
        else:  # the manifest is made by the first export
            self._weights = weights or fingerprint(exporter.state_dict())
            self.manifest = {"weights_sha256": self._weights, "sizes": {}}
        self.device = torch.device(device)
        available = self.ort.get_available_providers()
        self.providers = (
            ["CUDAExecutionProvider"] if self.device.type == "cuda" and "CUDAExecutionProvider" in available else []
        ) + ["CPUExecutionProvider"]
        self.threads = threads or torch.get_num_threads()
        self._sessions: dict[tuple[int, int], dict] = {}
        self._loading = threading.Lock()  # worker threads (--videos_per_device) share the sessions

    @classmethod
    def cached(
        cls,
        network: GSFM,
        cache: str | os.PathLike | None = None,
        device: torch.device | str = "cpu",
        threads: int | None = None,
        model_name: str = "",
    ) -> OnnxRuntimeBackend:
        """The graphs of ``network`` from the export cache ``cache`` (default:
        ``default_onnx_cache()``), each padded size exported there on first use, into the
        subfolder named by the weights' fingerprint."""
        weights = fingerprint(network.state_dict())
        folder = Path(cache or default_onnx_cache()) / weights
        return cls(folder, device, threads, exporter=network, model_name=model_name, weights=weights)

    @property
    def weights_sha256(self) -> str:
        return self.manifest["weights_sha256"]  # the weights the graphs were exported from

    def use_channels_last(self, enabled: bool) -> None:
        if enabled:  # the graphs' layout is fixed at export
            raise ConfigError("the channels-last layout (--amp) applies to the pytorch backend, not to onnxruntime")

    def use_winograd(self, enabled: bool) -> None:
        if enabled:  # the graphs' convolutions are ONNX Runtime's own
            raise ConfigError("--winograd applies to the pytorch backend, not to onnxruntime")

    def encode_key(self, frame: torch.Tensor) -> KeyFeatures:
        outputs = self._run("key_encoder", tuple(frame.shape[-2:]), frame=frame)
        return KeyFeatures(*outputs)

    def encode_value_objects(self, frame: torch.Tensor, key_f16: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return self._run(
            "value_encoder", tuple(frame.shape[-2:]), frame=frame, f16=key_f16, masks=masks, others=other_objects(masks)
        )[0]

    def decode_objects(
        self, readout: torch.Tensor, f16_thin: torch.Tensor, f8: torch.Tensor, f4: torch.Tensor
    ) -> torch.Tensor:
        size = (f4.shape[-2] * 4, f4.shape[-1] * 4)
        return self._run("decoder", size, readout=readout, f16_thin=f16_thin, f8=f8, f4=f4)[0]

    def _run(self, graph: str, size: tuple[int, int], **inputs: torch.Tensor) -> list[torch.Tensor]:
        feed = {name: np.ascontiguousarray(x.detach().float().cpu().numpy()) for name, x in inputs.items()}
        outputs = self._session(int(size[0]), int(size[1]))[graph].run(None, feed)
        return [torch.from_numpy(x).to(self.device) for x in outputs]

    def _session(self, height: int, width: int) -> dict:
        if (height, width) in self._sessions:
            return self._sessions[(height, width)]
        with self._loading:
            return self._load(height, width)

    def _load(self, height: int, width: int) -> dict:
        if (height, width) not in self._sessions:
            entry = self.manifest["sizes"].get(size_key(height, width))
            if entry is None and self.exporter is not None:
                entry = self._export(height, width)
            if entry is None:
                held = ", ".join(self.manifest["sizes"]) or "no size"
                raise ConfigError(
                    f"{self.folder}: a frame padded to {size_key(height, width)} (height x width), but this ONNX "
                    f"export holds {held}; add the size with: python -m scripts.export_onnx --model "
                    f"{self.manifest['model'] or 'M.pth'} --output {self.folder} --height {height} --width {width}"
                )
            options = self.ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            sessions = {}
            for graph in GRAPHS:
                path = self.folder / entry["graphs"][graph]
                if not path.is_file():
                    raise ConfigError(f"{path}: missing (listed in {self.folder / 'manifest.json'})")
                sessions[graph] = self.ort.InferenceSession(str(path), options, providers=self.providers)
            self._sessions[(height, width)] = sessions
        return self._sessions[(height, width)]

    def _export(self, height: int, width: int) -> dict:
        """The size's entry from the cache folder, exported first if no process has yet."""
        entry, seconds = ensure_size(self.exporter, self.folder, height, width, self.model_name, self._weights)
        size = size_key(height, width)
        if seconds is None:
            logger.info(f"ONNX graphs of {size} frames from the export cache {self.folder}")
        else:
            logger.info(f"exported the ONNX graphs of {size} frames into {self.folder} in {seconds:.0f} s (cached)")
        self.manifest = read_manifest(self.folder)
        return entry
