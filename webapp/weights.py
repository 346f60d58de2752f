"""Which weights the app runs: ``--model`` (a checkpoint path, or a published name that
``model.zoo`` downloads once into its cache), or else the newest checkpoint
``python demo.py`` trained, saying so."""

from __future__ import annotations

from pathlib import Path

from model import zoo
from util.errors import CheckpointError, ConfigError
from util.log import get_logger

logger = get_logger(__name__)
DEMO_SAVES = Path("output/demo/saves")  # demo.py's default --output, then train.py's run folders
BETTER = "for real videos pass --model with GSFM weights or a published name such as stcn-s012 (README.md, Model zoo)"


def resolve_model(model: str | None, demo_saves: Path = DEMO_SAVES) -> Path:
    """The checkpoint file to load: ``model`` when given (a published name resolves to its
    cached file, downloaded first if needed), else the newest network weights
    (``<run>_<iteration>.pth``) under ``demo_saves``."""
    if model is not None:
        path = Path(zoo.resolve_model(model))
        if not path.is_file():
            raise CheckpointError(f"{model}: no such checkpoint file, nor a published name ({', '.join(zoo.MODELS)})")
        return path
    candidates = [p for p in demo_saves.glob("*/*.pth") if not p.stem.endswith(("_checkpoint", "_prev"))]
    if not candidates:
        raise ConfigError(
            f"no --model given and no checkpoint from `python demo.py` in {demo_saves}: "
            f"run `python demo.py` (minutes on a CPU) for one, or {BETTER}"
        )
    newest = max(candidates, key=lambda p: p.stat().st_mtime)
    logger.info(f"no --model given: using {newest}, the demo's checkpoint (trained on synthetic shapes); {BETTER}")
    return newest
