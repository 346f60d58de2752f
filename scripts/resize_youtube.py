"""Resize YouTube-VOS train to 480p as the reference does before training: short side 480,
frames bicubic and saved at PIL's default JPEG quality (75), masks nearest.

    python -m scripts.resize_youtube data/YouTube/train data/YouTube/train_480p [--workers 8]

Resumable: files already in the output are skipped (each is written atomically).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from datasets.preparation import run_jobs, youtube_jobs, youtube_resize
from util import cli


def main(argv: list[str] | None = None) -> dict:
    parser = cli.argument_parser(__doc__)
    parser.add_argument("src", type=Path, help="YouTube-VOS split folder (JPEGImages/, Annotations/)")
    parser.add_argument("dst", type=Path, help="output folder, e.g. data/YouTube/train_480p")
    parser.add_argument("--size", type=int, default=480, help="short side in pixels")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    counts = run_jobs(youtube_jobs(args.src, args.dst), youtube_resize(args.size), args.workers)
    if (args.src / "meta.json").is_file():
        shutil.copyfile(args.src / "meta.json", args.dst / "meta.json")
    return counts


if __name__ == "__main__":
    cli.run(main)
