"""Reading and loading network weights: GSFM, STCN and single-object checkpoints.

What loads, and how:
- a GSFM checkpoint of the same network: strict;
- a single-object (4-channel value encoder) checkpoint into the multi-object network: one
  input channel is appended to ``value_encoder.conv1.weight`` (orthogonal init when
  training, zeros at inference, as the reference);
- an STCN checkpoint (no ``lfm``/``hfm``/boundary-branch tensors): loaded, the GSFM-only
  tensors keep their fresh initialisation, and the report lists them;
- anything else: one ``CheckpointError`` listing missing, unexpected and mis-shaped keys.
"""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from model.network import GSFM
from util.atomic import atomic_save
from util.errors import CheckpointError
from util.log import get_logger

# Tensors GSFM adds to STCN: the spectral modules and the decoder's boundary branch.
logger = get_logger(__name__)
GSFM_ONLY_PREFIXES = (
    "lfm.",
    "decoder.hfm.",
    "decoder.boundary_",
    "decoder.mask_1.",
    "decoder.fusion_",
    "decoder.predict_",
)
FIRST_VALUE_CONV = "value_encoder.conv1.weight"


@dataclass
class LoadReport:
    kind: str  # "gsfm", "gsfm-single-object", "stcn" (possibly "+single-object")
    fresh: list[str] = field(default_factory=list)  # tensors left at their initialisation
    extended: list[str] = field(default_factory=list)  # tensors given extra input channels

    def describe(self) -> str:
        text = f"loaded a {self.kind} checkpoint"
        if self.extended:
            text += f"; appended a mask channel to {', '.join(self.extended)}"
        if self.fresh:
            text += f"; {len(self.fresh)} GSFM-only tensors keep their fresh initialisation: " + ", ".join(
                sorted({k.rsplit(".", 1)[0] for k in self.fresh})
            )
        return text


def read_checkpoint(path: str | os.PathLike) -> dict:
    """torch.load onto the CPU with a clear error for missing, truncated or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling and zip errors come in many types
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint (truncated or corrupted?): "
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors, found {type(obj).__name__}")
    return obj


def network_state(obj: dict) -> dict[str, torch.Tensor]:
    """The network weights inside a weights-only file or a full training checkpoint."""
    state = obj["network"] if isinstance(obj.get("network"), dict) else obj
    # weights saved from a DistributedDataParallel wrapper carry a "module." prefix
    return {(k[7:] if k.startswith("module.") else k): v for k, v in state.items()}


def load_weights(
    net: nn.Module, state: dict[str, torch.Tensor], for_training: bool = False, source: str = "checkpoint"
) -> LoadReport:
    """Load ``state`` into ``net`` by the rules in the module docstring."""
    target = net.state_dict()
    state = dict(state)
    extended = []
    src = state.get(FIRST_VALUE_CONV)
    dst = target.get(FIRST_VALUE_CONV)
    if src is not None and dst is not None and src.dim() == 4 and src.shape[1] == 4 and dst.shape[1] == 5:
        pad = torch.zeros(src.shape[0], 1, *src.shape[2:], dtype=src.dtype)
        if for_training:
            nn.init.orthogonal_(pad)
        state[FIRST_VALUE_CONV] = torch.cat([src, pad], 1)
        extended.append(FIRST_VALUE_CONV)
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    misshaped = [
        f"{k} {tuple(state[k].shape)} (network wants {tuple(target[k].shape)})"
        for k in target
        if k in state and state[k].shape != target[k].shape
    ]
    stcn = bool(missing) and all(k.startswith(GSFM_ONLY_PREFIXES) for k in missing)
    if unexpected or misshaped or (missing and not stcn):
        lines = [
            f"{source}: does not fit the GSFM network "
            f"({'single' if getattr(net, 'single_object', False) else 'multi'}-object)."
        ]
        for title, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
            if keys:
                shown = ", ".join(keys[:12]) + (f", ... ({len(keys)} in all)" if len(keys) > 12 else "")
                lines.append(f"  {title} keys: {shown}")
        raise CheckpointError("\n".join(lines))
    net.load_state_dict(state, strict=not stcn)
    kind = "stcn" if stcn else "gsfm"
    if extended:
        kind += " single-object"
    return LoadReport(kind, fresh=missing, extended=extended)


def load_network_file(net: nn.Module, path: str | os.PathLike, for_training: bool = False) -> LoadReport:
    """Read a weights file (or a full training checkpoint) and load its network weights."""
    return load_weights(net, network_state(read_checkpoint(path)), for_training, source=str(path))


def load_network(path: str | os.PathLike, device: torch.device | str = "cpu") -> GSFM:
    """The multi-object inference network with the weights of ``path`` (GSFM, STCN or
    single-object checkpoints; what was converted is printed to stderr)."""
    network = GSFM(single_object=False)
    report = load_network_file(network, path, for_training=False)
    if report.kind != "gsfm":
        logger.warning(f"{path}: {report.describe()}")
    return network.to(device).eval()


def save_file(obj: dict, path: str | os.PathLike) -> None:
    """torch.save through a temporary file and a rename: a crash keeps the previous file."""

    def write(tmp: Path) -> None:
        try:
            torch.save(obj, tmp)
        except RuntimeError as e:  # torch reports a failed write (e.g. a full disk) as RuntimeError
            free = shutil.disk_usage(tmp.parent).free / 2**20
            raise OSError(errno.EIO, f"write failed ({e}); {free:.0f} MB free on that disk") from e

    atomic_save(write, path)


def find_latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest readable full checkpoint of a run (by iteration); broken ones and
    unfinished temporary files are skipped."""
    best, best_it = None, -1
    for path in sorted(Path(run_dir).glob("*_checkpoint*.pth")):
        if path.name.startswith("."):  # an atomic write that never completed
            continue
        try:
            it = int(read_checkpoint(path).get("it", -1))
        except CheckpointError:
            continue
        if it > best_it:
            best, best_it = path, it
    return best
