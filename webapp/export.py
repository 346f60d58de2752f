"""A session's results as files: the masks as indexed PNGs (DAVIS palette, one per frame)
in a zip beside the annotations they came from, an overlay mp4 at the video's frame rate,
and each object's area (pixels) on each frame as JSON."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from util.atomic import atomic_save
from util.errors import ConfigError
from util.overlay import overlay, write_mp4
from util.palette import read_mask
from webapp.session import PALETTE, Session


def export(session: Session) -> tuple[Path, Path, Path]:
    """Write ``<name>_masks.zip`` (``masks/<frame>.png`` and ``annotations/<index>.png``:
    ``eval_generic.py --mask annotations/`` remakes the masks), ``<name>_overlay.mp4`` and
    ``<name>_areas.json`` into the session's export folder; returns their paths."""
    frames = session.require_video()
    if not session.complete:
        raise ConfigError("nothing to export yet: propagate (to the end, without cancelling) first")
    folder = session.folder / "export"
    results = [session.result_path(i) for i in range(len(frames))]
    annotations = session.annotations()

    def write_zip(tmp: Path) -> None:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in results:
                archive.write(path, f"masks/{path.name}")
            for path in annotations.values():
                archive.write(path, f"annotations/{path.name}")

    masks = folder / f"{session.name}_masks.zip"
    atomic_save(write_zip, masks)

    areas: dict[str, list[int]] = {}
    for index, path in enumerate(results):
        counts = np.bincount(read_mask(path).ravel(), minlength=256)
        for object_id in np.flatnonzero(counts[1:]) + 1:
            areas.setdefault(str(object_id), [0] * len(results))[index] = int(counts[object_id])
    table = {
        "frames": frames.names,
        "frame_size": list(session.frame_size),  # height, width
        "areas": dict(sorted(areas.items(), key=lambda item: int(item[0]))),  # object id -> pixels per frame
    }
    areas_path = folder / f"{session.name}_areas.json"
    atomic_save(lambda tmp: tmp.write_text(json.dumps(table, indent=1)), areas_path)

    video = folder / f"{session.name}_overlay.mp4"
    write_mp4(
        (overlay(frame.rgb, read_mask(results[frame.index]), PALETTE) for frame in session.video().read()),
        video,
        fps=session.fps(),
    )
    return masks, video, areas_path
