"""Reading and loading network weights: GSFM, STCN and single-object checkpoints.

What loads, and how:
- a GSFM checkpoint of the same network: strict, untouched;
- a single-object (4-channel value encoder) checkpoint into the multi-object network: one
  input channel is appended to ``value_encoder.conv1.weight`` (orthogonal init when
  training, zeros at inference, as the reference);
- an STCN checkpoint (STCN's exact key set: no spectral filters, no boundary branch, and a
  key encoder whose convolutions have no bias, torchvision's ResNet-50): embedded so that
  the network computes STCN (``embed_stcn``), or with the GSFM-only tensors left at their
  fresh initialisation (``stcn_init="random"``);
- anything else, including a checkpoint that has some of the tensors STCN lacks and not the
  others: one ``CheckpointError`` naming the tensors.
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

logger = get_logger(__name__)
# Tensors GSFM adds to STCN: the spectral modules and the decoder's boundary branch.
GSFM_ONLY_PREFIXES = (
    "lfm.",
    "decoder.hfm.",
    "decoder.boundary_",
    "decoder.mask_1.",
    "decoder.fusion_",
    "decoder.predict_",
)
FIRST_VALUE_CONV = "value_encoder.conv1.weight"
STCN_INITS = ("identity", "random")
# fusion_2's bias when an STCN checkpoint is loaded for training, as a bound on the change
# of the mask logits (see embed_stcn).
FUSION_2_LOGIT_SHIFT = 1e-3


@dataclass
class LoadReport:
    kind: str  # "gsfm", "stcn", each possibly followed by " single-object"
    fresh: list[str] = field(default_factory=list)  # tensors left at their initialisation
    extended: list[str] = field(default_factory=list)  # tensors given extra input channels
    stcn_init: str | None = None  # how the tensors STCN lacks were set ("identity", "random")
    for_training: bool = False

    def describe(self) -> str:
        if self.kind.startswith("stcn") and self.stcn_init == "identity":
            text = (
                "an STCN checkpoint: the network computes STCN (spectral filters and boundary branch "
                "bypassed; STCN's published numbers use --top 20 --mem_every 5); fine-tuning trains "
                "the filters and the boundary branch into GSFM"
            )
            if self.for_training:
                text += (
                    f" (decoder.fusion_2 starts at a bias of at most {FUSION_2_LOGIT_SHIFT:g} logit so it can learn)"
                )
        else:
            text = f"loaded a {self.kind} checkpoint"
        if self.extended:
            text += f"; appended a mask channel to {', '.join(self.extended)}"
        if self.stcn_init == "random":
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


def stcn_absent_keys(net: nn.Module) -> list[str]:
    """The tensors of ``net`` an STCN checkpoint does not have: the GSFM-only modules and
    the biases of the key encoder's convolutions (STCN's is torchvision's ResNet-50)."""
    key_conv_biases = {
        f"key_encoder.{name}.bias" for name, m in net.key_encoder.named_modules() if isinstance(m, nn.Conv2d)
    }
    return [k for k in net.state_dict() if k.startswith(GSFM_ONLY_PREFIXES) or k in key_conv_biases]


@torch.no_grad()
def embed_stcn(net: GSFM, for_training: bool = False) -> None:
    """Set the tensors STCN lacks so that the network computes STCN's function.

    GSFM = STCN + (a) residual spectral filters x + y(x), y = 0 when the filter's last 1x1
    conv is zero; (b) a decoder mask path m = mask_1(x) + relu(fusion_2(b)),
    pred(relu(predict_mask(m))), which is STCN's pred(relu(x)) when mask_1 and predict_mask
    are identity (Dirac) convolutions and fusion_2 outputs 0; (c) key encoder biases, zero.
    The rest of the boundary branch keeps its fresh initialisation: it only feeds the
    boundary loss until fusion_2 learns.

    ``for_training``: an all-zero fusion_2 never learns (its output enters a ReLU whose
    gradient at 0 is 0), so its bias starts at a small positive eps with zero weights: the
    ReLU is open everywhere and both get gradients. Every channel of m then moves by eps,
    which moves each mask logit by at most eps * sum|pred.weight|; eps is chosen so that
    this bound is FUSION_2_LOGIT_SHIFT, and only pixels that close to a decision can change.
    """
    for name, m in net.key_encoder.named_modules():
        if isinstance(m, nn.Conv2d) and m.bias is not None:
            m.bias.zero_()
    for filter_module in (net.lfm, net.decoder.hfm):
        filter_module.conv2.weight.zero_()
        filter_module.conv2.bias.zero_()
    for conv in (net.decoder.mask_1, net.decoder.predict_mask):
        nn.init.dirac_(conv.weight)
        conv.bias.zero_()
    fusion = net.decoder.fusion_2
    fusion.weight.zero_()
    fusion.bias.zero_()
    if for_training:
        fusion.bias.fill_(FUSION_2_LOGIT_SHIFT / max(float(net.decoder.pred.weight.abs().sum()), 1e-12))


def _list(title: str, keys: list[str]) -> str:
    shown = ", ".join(keys[:12]) + (f", ... ({len(keys)} in all)" if len(keys) > 12 else "")
    return f"  {title}: {shown}"


def fit_state(
    net: nn.Module, state: dict[str, torch.Tensor], for_training: bool = False, source: str = "checkpoint"
) -> tuple[dict[str, torch.Tensor], LoadReport]:
    """Check that ``state`` is a GSFM or an STCN checkpoint for ``net`` (``CheckpointError``
    naming the tensors otherwise); return it with the mask channel appended where needed,
    and what it is. Reads only the network's tensor names and shapes (a network on the meta
    device will do)."""
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
    network_kind = f"{'single' if getattr(net, 'single_object', False) else 'multi'}-object"
    absent = stcn_absent_keys(net)
    stcn = bool(missing) and missing == absent
    if not unexpected and not misshaped and missing and set(missing) < set(absent):
        present = [k for k in absent if k in state]
        raise CheckpointError(
            "\n".join(
                [
                    f"{source}: mixes the GSFM and STCN formats (it has some of the tensors STCN lacks, not all)",
                    _list("present", present),
                    _list("absent", missing),
                ]
            )
        )
    if unexpected or misshaped or (missing and not stcn):
        lines = [f"{source}: neither a GSFM nor an STCN checkpoint of the {network_kind} network"]
        # the tensors both formats have first: the ones that tell what is wrong
        missing = sorted(missing, key=lambda k: k in absent)
        for title, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("mis-shaped keys", misshaped)):
            if keys:
                lines.append(_list(title, keys))
        raise CheckpointError("\n".join(lines))
    kind = ("stcn" if stcn else "gsfm") + (" single-object" if extended else "")
    return state, LoadReport(kind, fresh=missing, extended=extended, for_training=for_training)


def load_weights(
    net: nn.Module,
    state: dict[str, torch.Tensor],
    for_training: bool = False,
    source: str = "checkpoint",
    stcn_init: str = "identity",
) -> LoadReport:
    """Load ``state`` into ``net`` by the rules in the module docstring. ``stcn_init``:
    "identity" (an STCN checkpoint computes STCN) or "random" (the GSFM-only tensors keep
    their fresh initialisation)."""
    if stcn_init not in STCN_INITS:
        raise ValueError(f"stcn_init must be one of {', '.join(STCN_INITS)}, not {stcn_init!r}")
    state, report = fit_state(net, state, for_training, source)
    stcn = report.kind.startswith("stcn")
    net.load_state_dict(state, strict=not stcn)
    if stcn:
        report.stcn_init = stcn_init
        if stcn_init == "identity":
            embed_stcn(net, for_training)
    return report


def load_network_file(
    net: nn.Module, path: str | os.PathLike, for_training: bool = False, stcn_init: str = "identity"
) -> LoadReport:
    """Read a weights file (or a full training checkpoint) and load its network weights."""
    return load_weights(net, network_state(read_checkpoint(path)), for_training, source=str(path), stcn_init=stcn_init)


def load_network(path: str | os.PathLike, device: torch.device | str = "cpu", stcn_init: str = "identity") -> GSFM:
    """The multi-object inference network with the weights of ``path`` (GSFM, STCN or
    single-object checkpoints; a converted one is announced in one line)."""
    network = GSFM(single_object=False)
    report = load_network_file(network, path, for_training=False, stcn_init=stcn_init)
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
