"""Shrink large static images (e.g. BIG, HRSOD) so the long edge is at most --size, giving
the ``BIG_small`` / ``HRSOD_small`` folders stage 0 reads. Images bicubic, masks nearest.

    python -m scripts.resize_long_edge data/static/BIG data/static/BIG_small [--size 512]

Resumable: files already in the output are skipped (each is written atomically).
"""
from __future__ import annotations

import sys
from pathlib import Path

from datasets.preparation import flat_folder_jobs, long_edge_rule, run_jobs
from util import cli


def main(argv: list[str] | None = None) -> dict:
    parser = cli.argument_parser(__doc__)
    parser.add_argument("src", type=Path, help="folder of X.jpg images and X.png masks")
    parser.add_argument("dst", type=Path)
    parser.add_argument("--size", type=int, default=512, help="maximum long edge in pixels")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    return run_jobs(flat_folder_jobs(args.src, args.dst), long_edge_rule(args.size), args.workers)


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
