"""How long score.py takes on a set the size of SA-V val (155 videos), generated.

    python -m scripts.score_speed --output docs/results/scoring_sav_cpu.json

The set has SA-V's layout (one binary PNG per object and annotated frame) with small frames;
the predictions are the ground truth shifted by two pixels. score.py runs once per
``--processes`` value; the result file is stamped (util/stamp.py) and rendered by
``python -m scripts.render_docs``.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

import score
from datasets.synthetic import make_video
from util import cli
from util.atomic import atomic_save
from util.log import get_logger
from util.palette import write_binary_png
from util.stamp import machine_stamp

logger = get_logger(__name__)


def generate_sav(root: Path, videos: int, frames: int, height: int, width: int, seed: int = 0) -> None:
    """``root``/SAV (annotated frames only, 2 objects, as JPEGImages_24fps + Annotations_6fps)
    and ``root``/pred (the masks moved two pixels right)."""
    from PIL import Image

    rng = np.random.RandomState(seed)
    names = [f"sav_{i:06d}" for i in range(videos)]
    for name in names:
        images, labels = make_video(rng, height, width, frames, 2, late_objects=False)
        for t in range(frames):
            frame = root / "SAV" / "JPEGImages_24fps" / name / f"{4 * t:05d}.jpg"
            frame.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[t]).save(frame, quality=90)
            for obj in (1, 2):
                mask = labels[t] == obj
                write_binary_png(mask, root / "SAV" / "Annotations_6fps" / name / f"{obj - 1:03d}" / f"{4 * t:05d}.png")
                write_binary_png(np.roll(mask, 2, axis=1), root / "pred" / name / f"{obj - 1:03d}" / f"{4 * t:05d}.png")
    (root / "SAV" / "sav_val.txt").write_text("".join(n + "\n" for n in names))


def main(argv: list[str] | None = None) -> None:
    p = cli.argument_parser(__doc__)
    p.add_argument("--output", type=Path, required=True, help="the result file")
    p.add_argument("--videos", type=int, default=155, help="SA-V val has 155")
    p.add_argument("--frames", type=int, default=24, help="annotated frames per video")
    p.add_argument("--size", type=int, nargs=2, default=[120, 216], metavar=("H", "W"))
    p.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    p.add_argument("--under_load", action="store_true", help="record that other jobs shared the CPU meanwhile")
    args = p.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory(prefix="gsfm-score-speed-") as tmp:
        root = Path(tmp)
        generate_sav(root, args.videos, args.frames, *args.size)
        for processes in args.processes:
            start = time.perf_counter()
            score.main(
                ["--benchmark", "sav", "--data_path", str(root / "SAV"), "--predictions", str(root / "pred")]
                + ["--output", str(root / f"out{processes}"), "--processes", str(processes)]
            )
            runs.append({"processes": processes, "seconds": time.perf_counter() - start})
            overall = json.loads((root / f"out{processes}" / "scores.json").read_text())["overall"]
    result = {
        "stamp": machine_stamp("cpu"),
        "scoring": {
            "benchmark": "sav",
            "videos": args.videos,
            "objects": 2 * args.videos,
            "annotated_frames": args.frames,
            "frame_size": args.size,
            "data": "generated (scripts/score_speed.py), SA-V layout, small frames",
            "bootstrap": 1000,
            "under_load": args.under_load,
        },
        "overall": overall,
        "runs": runs,
    }
    atomic_save(lambda t: t.write_text(json.dumps(result, indent=1)), args.output)
    logger.info(f"{args.output}: " + ", ".join(f"{r['processes']} processes {r['seconds']:.1f} s" for r in runs))


if __name__ == "__main__":
    cli.run(main)
