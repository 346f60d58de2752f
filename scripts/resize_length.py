"""Resize large static images (BIG, HRSOD) as the reference does before stage 0, giving the
``BIG_small`` / ``HRSOD_small`` folders it reads: the short side to --min_length (384) with
OpenCV's INTER_AREA, images and masks alike, smaller images enlarged too.

    python -m scripts.resize_length data/static/BIG data/static/BIG_small [--min_length 384]

Resumable: files already in the output are skipped (each is written atomically).
"""

from __future__ import annotations

from pathlib import Path

from datasets.preparation import flat_folder_jobs, run_jobs, static_resize
from util import cli


def main(argv: list[str] | None = None) -> dict:
    parser = cli.argument_parser(__doc__)
    parser.add_argument("src", type=Path, help="folder of X.jpg images and X.png masks")
    parser.add_argument("dst", type=Path)
    parser.add_argument("--min_length", type=int, default=384, help="short side in pixels")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    return run_jobs(flat_folder_jobs(args.src, args.dst), static_resize(args.min_length), args.workers)


if __name__ == "__main__":
    cli.run(main)
