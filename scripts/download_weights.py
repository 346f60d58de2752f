"""Download a published checkpoint into the cache folder (once; later runs check its sha256).

    python -m scripts.download_weights stcn-s012
    python -m scripts.download_weights stcn-s0 --cache_dir saves

An interrupted download resumes where it stopped. Wherever a checkpoint path is taken
(``--model`` of the eval scripts and eval_generic.py, ``train.py --load_network``), the name
works too and downloads first if needed.
"""

from __future__ import annotations

from pathlib import Path

from model import zoo
from util import cli
from util.log import get_logger

logger = get_logger(__name__)


def main(argv: list[str] | None = None) -> Path:
    parser = cli.argument_parser(
        __doc__, epilog="published: " + "; ".join(f"{name}: {m.what}" for name, m in zoo.MODELS.items())
    )
    parser.add_argument("name", choices=list(zoo.MODELS), help="which checkpoint")
    parser.add_argument("--cache_dir", type=Path, default=zoo.default_cache_dir(), help="where checkpoints are kept")
    args = parser.parse_args(argv)
    path = zoo.download(args.name, args.cache_dir)
    logger.info(f"{args.name}: {path}")
    return path


if __name__ == "__main__":
    cli.run(main)
