"""The output folder's record of what produced its masks, so that results are never stale.

``<output>/eval_record.json`` holds the weights' fingerprint (a hash of the weights; the
file they were read from is shown beside it), every setting that changes masks (the
inference settings and the benchmark's protocol: split, frames read, output layout) and the
code version. Every published video's statistics carry the record's id. A run into a folder
with the same record continues it (only missing videos are computed); a different record is
refused, naming what differs and ``--overwrite``; a folder with masks but no record (or
videos of another record) is refused the same way. Processes sharing a folder (torchrun
ranks, independent runs) create the record atomically: the first one writes it, the others
compare theirs with it. A single process whose run fails before any video is done removes
the record it wrote.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from util.atomic import atomic_save
from util.errors import ConfigError

RECORD_FILE = "eval_record.json"


class RecordMismatch(ConfigError):
    """The output folder holds results made by other weights, settings or code."""


def make_record(weights: str, inference: dict, protocol: dict, code: str, weights_file: str | None = None) -> dict:
    """The record of a run; ``weights_file``, where the weights were read from, is shown
    beside their hash but is not part of the id (the same weights elsewhere give the same masks)."""
    record = {"weights": weights, "inference": inference, "protocol": protocol, "code": code}
    record["id"] = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]
    record["weights_file"] = weights_file
    return record


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """``name: old -> new`` for every leaf that differs (the weights with their files)."""
    out = []
    for key in sorted((set(old) | set(new)) - {"id", "weights_file"}):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{key}.")
        elif key == "weights" and not prefix and a != b:
            files = old.get("weights_file") or "file not recorded", new.get("weights_file")
            out.append(f"weights: {a!r} ({files[0]}) -> {b!r} ({files[1]})")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


def claim_folder(out_root: Path, record: dict, has_results: bool) -> bool:
    """Make ``record`` the folder's record, or refuse when the folder belongs to another one;
    True when this call wrote the record.

    ``has_results``: the folder already held published videos before this call (results
    without a record were made by something this run cannot vouch for)."""
    path = out_root / RECORD_FILE
    fd, candidate = tempfile.mkstemp(prefix=".eval_record.", dir=out_root)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(record, indent=1, sort_keys=True))
            f.flush()
            os.fsync(f.fileno())
        os.link(candidate, path)  # atomic, complete, and fails if another process was first
        created = True
    except FileExistsError:
        created = False
    finally:
        os.unlink(candidate)
    if created and has_results:
        path.unlink()
        raise RecordMismatch(
            f"{out_root} holds masks but no {RECORD_FILE}: what produced them is unknown; use "
            f"another --output, or --overwrite to recompute every video"
        )
    if not created:
        existing = read_record(path)
        if existing.get("id") != record["id"]:
            raise RecordMismatch(
                f"{out_root} holds results of another run:\n  "
                + "\n  ".join(differences(existing, record) or ["(unreadable record)"])
                + "\nuse another --output, or --overwrite to recompute every video"
            )
    return created


def withdraw_record(out_root: Path) -> None:
    """A run that wrote the record failed before publishing any video: the folder holds
    nothing the record describes, so it goes (a rerun with other settings is not refused)."""
    (out_root / RECORD_FILE).unlink(missing_ok=True)


def replace_record(out_root: Path, record: dict) -> None:
    """--overwrite: the folder's record becomes ``record`` (its videos were removed)."""
    atomic_save(lambda tmp: tmp.write_text(json.dumps(record, indent=1, sort_keys=True)), out_root / RECORD_FILE)


def read_record(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
