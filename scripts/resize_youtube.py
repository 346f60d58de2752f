"""Resize YouTube-VOS train to 480p (short side 480; frames bicubic, masks nearest), as the
reference's ``scripts/resize_youtube.py`` does before training.

    python -m scripts.resize_youtube data/YouTube/train data/YouTube/train_480p [--workers 8]

Resumable: files already in the output are skipped (each is written atomically).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from datasets.preparation import run_jobs, short_side_rule, youtube_jobs
from util import cli


def main(argv: list[str] | None = None) -> dict:
    parser = cli.argument_parser(__doc__)
    parser.add_argument("src", type=Path, help="YouTube-VOS split folder (JPEGImages/, Annotations/)")
    parser.add_argument("dst", type=Path, help="output folder, e.g. data/YouTube/train_480p")
    parser.add_argument("--size", type=int, default=480, help="short side in pixels")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    counts = run_jobs(youtube_jobs(args.src, args.dst), short_side_rule(args.size), args.workers)
    if (args.src / "meta.json").is_file():
        shutil.copyfile(args.src / "meta.json", args.dst / "meta.json")
    return counts


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
