"""Names read from data files (list files, meta files) become folder names only after a
check, and deletions stay inside the folder they were asked for: a list naming ``../x``
must not make ``--overwrite`` delete outside ``--output``."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path, PurePosixPath, PureWindowsPath

from util.errors import DatasetError


def checked_name(name: str, source: str | Path) -> str:
    """``name`` unchanged when it is one plain path component (no separator of any OS, not
    ``.`` or ``..``, not absolute, not empty); else a ``DatasetError`` naming ``source``,
    the file it was read from."""
    if (
        not isinstance(name, str)
        or name in ("", ".", "..")
        or "\0" in name
        or len(PurePosixPath(name).parts) != 1
        or len(PureWindowsPath(name).parts) != 1
        or PurePosixPath(name).is_absolute()
        or PureWindowsPath(name).is_absolute()
    ):
        raise DatasetError(f"{source}: {name!r} is not a plain video name (no separator, '..' or absolute path)")
    return name


def checked_names(names: Iterable[str], source: str | Path) -> list[str]:
    """``checked_name`` for each name, in order."""
    return [checked_name(name, source) for name in names]


def remove_tree_inside(root: Path, path: Path) -> None:
    """``shutil.rmtree(path)`` (if it exists) after checking that its resolved location lies
    strictly inside ``root``'s: a symlink or a name that leads elsewhere is refused."""
    inside, target = root.resolve(), path.resolve()
    if target == inside or not target.is_relative_to(inside):
        raise DatasetError(f"{path}: refusing to delete, it is not inside {root}")
    shutil.rmtree(target, ignore_errors=True)
