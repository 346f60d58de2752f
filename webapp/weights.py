"""Which weights the app runs: ``--model``, or else the newest checkpoint ``python demo.py``
trained, saying so. One function, so that named downloadable weights plug in here."""

from __future__ import annotations

from pathlib import Path

from util.errors import CheckpointError, ConfigError
from util.log import get_logger

logger = get_logger(__name__)
DEMO_SAVES = Path("output/demo/saves")  # demo.py's default --output, then train.py's run folders
BETTER = "for real videos pass --model with GSFM weights (README.md, Model zoo)"


def resolve_model(model: str | None, demo_saves: Path = DEMO_SAVES) -> Path:
    """The checkpoint file to load: ``model`` when given, else the newest network weights
    (``<run>_<iteration>.pth``) under ``demo_saves``."""
    if model is not None:
        path = Path(model)
        if not path.is_file():
            raise CheckpointError(f"{model}: no such checkpoint file")
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
