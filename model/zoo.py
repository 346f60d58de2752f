"""Published checkpoints by name: download once into a cache folder, check, and resolve
``--model NAME_OR_PATH``.

A download goes to ``<file>.part`` and resumes from there (an HTTP Range request) when it was
interrupted; the finished file is checked as a checkpoint (its tensor names and shapes must
be GSFM's or STCN's) before it is moved into place, and its SHA-256 is written beside it
(``<file>.sha256``) and checked on every later use. The cache folder is torch hub's
(``$TORCH_HOME/hub/checkpoints``) unless one is given.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from tqdm import tqdm

from model.checkpoint import fit_state, network_state
from model.network import GSFM
from util.atomic import atomic_save
from util.errors import CheckpointError
from util.log import get_logger

logger = get_logger(__name__)
CHUNK = 1 << 20
TIMEOUT_S = 60


@dataclass(frozen=True)
class PublishedModel:
    url: str
    filename: str
    what: str


def _drive(file_id: str) -> str:
    # Google Drive's direct download; confirm=t skips the "cannot scan for viruses" page of
    # large files (if Drive still sends a page, the HTML check below says so)
    return f"https://drive.usercontent.google.com/download?id={file_id}&export=download&confirm=t"


# Where STCN's authors publish them (STCN's README): s0 and s01 on the GitHub release 1.0,
# s03 and s012 on Google Drive.
MODELS = {
    "stcn-s0": PublishedModel(
        "https://github.com/hkchengrex/STCN/releases/download/1.0/stcn_s0.pth",
        "stcn_s0.pth",
        "STCN after static-image pre-training (single-object; start of GSFM's stage 3)",
    ),
    "stcn-s01": PublishedModel(
        "https://github.com/hkchengrex/STCN/releases/download/1.0/stcn_s01.pth",
        "stcn_s01.pth",
        "STCN after static images and BL30K (start of stage 2)",
    ),
    "stcn-s03": PublishedModel(
        _drive("1JllXPJZola0G-g1aUQfXe9nLMBioj-aH"), "stcn_s03.pth", "STCN, static images then DAVIS + YouTube-VOS"
    ),
    "stcn-s012": PublishedModel(
        _drive("1mRrE0uCI2ktdWlUgapJI_KmgeIiF2eOm"),
        "stcn_s012.pth",
        "STCN, static images, BL30K, then DAVIS + YouTube-VOS (STCN's best)",
    ),
}


def default_cache_dir() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One download of a file at a time, also across the processes of a torchrun job."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _what_arrived(path: Path) -> str:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(512)
    if head.lstrip().lower().startswith((b"<!doctype html", b"<html")) or b"<html" in head.lower():
        return f"an HTML page ({size} bytes) arrived instead of a checkpoint: {head[:80]!r}"
    return f"{size} bytes arrived, starting {head[:16]!r}"


def _fetch(url: str, part: Path) -> None:
    """Download ``url`` into ``part``, continuing from its current size when the server
    honours a Range request."""
    done = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "gsfm"})
    if done:
        request.add_header("Range", f"bytes={done}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code == 416 and done:  # nothing left to send: the part is complete
            return
        raise CheckpointError(f"{url}: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise CheckpointError(f"{url}: cannot connect ({getattr(e, 'reason', e)})") from None
    with response:
        if done and response.status != 206:  # the server ignored the Range: start over
            done = 0
        length = response.headers.get("Content-Length")
        total = done + int(length) if length is not None else None
        with (
            open(part, "ab" if done else "wb") as f,
            tqdm(total=total, initial=done, unit="B", unit_scale=True, desc=part.name[: -len(".part")]) as bar,
        ):
            try:
                for block in iter(lambda: response.read(CHUNK), b""):
                    f.write(block)
                    bar.update(len(block))
            except (OSError, http.client.HTTPException) as e:  # a dropped connection
                raise CheckpointError(
                    f"{url}: download interrupted at {f.tell()} bytes ({type(e).__name__}); "
                    f"run it again to resume from {part}"
                ) from None
    if total is not None and part.stat().st_size < total:
        raise CheckpointError(
            f"{url}: download interrupted at {part.stat().st_size} of {total} bytes; run it again to resume from {part}"
        )


def check_checkpoint(path: Path, source: str) -> str:
    """The checkpoint's format ("gsfm", "stcn", ...); ``CheckpointError`` saying what
    arrived when it is not a readable GSFM or STCN checkpoint."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # unpickling and zip errors come in many types
        raise CheckpointError(f"{source}: not a readable checkpoint (truncated?): {_what_arrived(path)}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{source}: expected a dict of tensors, found {type(obj).__name__}")
    with torch.device("meta"):
        network = GSFM(single_object=False)
    return fit_state(network, network_state(obj), source=source)[1].kind


def download(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """The cached file of the published model ``name``, downloaded and checked first if it
    is not there yet; a cached file whose SHA-256 differs from the one recorded is refused."""
    if name not in MODELS:
        raise CheckpointError(f"unknown model {name!r}; published: {', '.join(MODELS)}")
    model = MODELS[name]
    path = Path(cache_dir if cache_dir is not None else default_cache_dir()) / model.filename
    record = path.with_name(path.name + ".sha256")
    with _locked(path):
        if not path.exists():
            part = path.with_name(path.name + ".part")
            logger.info(f"downloading {name} ({model.what}) from {model.url} to {path}")
            _fetch(model.url, part)
            try:
                kind = check_checkpoint(part, f"{name} from {model.url}")
            except CheckpointError:
                part.unlink()  # a whole file that is not a checkpoint: nothing to resume
                raise
            os.replace(part, path)
            digest = sha256_of(path)
            atomic_save(lambda tmp: tmp.write_text(digest + "\n"), record)
            logger.info(f"{path}: a {kind} checkpoint, sha256 {digest}")
            return path
    if not record.exists():
        raise CheckpointError(f"{path}: no recorded sha256 ({record.name}); delete the file to download it again")
    recorded, actual = record.read_text().strip(), sha256_of(path)
    if recorded != actual:
        raise CheckpointError(
            f"{path}: sha256 {actual} differs from the {recorded} recorded at download; delete it to download it again"
        )
    return path


def resolve_model(name_or_path: str) -> str:
    """A published model's name (``stcn-s012``) -> its cached file, downloaded if needed;
    anything else is a path and stays as it is."""
    return str(download(name_or_path)) if name_or_path in MODELS else name_or_path
