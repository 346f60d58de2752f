"""docs/API.md's layout table is the code map: it names every source file (a row's folder
cell, e.g. `util/`, with the file names in its description, or the file's full path)."""

import re
import subprocess

import pytest

from tests.helpers import REPO

API = REPO / "docs" / "API.md"


def layout_names() -> set[str]:
    """The repository paths the layout table names: a cell's `path`, and in a folder's row
    (`util/`) every `name.py` of its description as `util/name.py`."""
    table = API.read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    named = set()
    for row in (line for line in table.splitlines() if line.startswith("| `")):
        first, description = row.strip("|").split("|", 1)
        paths = re.findall(r"`([^`]+)`", first)
        named.update(paths)
        for folder in (p for p in paths if p.endswith("/")):
            named.update(folder + name for name in re.findall(r"`([\w./]+\.py)`", description))
    return named


def source_files() -> list[str]:
    """Every tracked .py file outside tests/ (package __init__ files: their folder's row)."""
    try:
        listed = subprocess.run(["git", "ls-files", "*.py"], cwd=REPO, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return sorted(
        path
        for path in listed.stdout.split()
        if not path.startswith("tests/") and not path.endswith("__init__.py") and (REPO / path).is_file()
    )


def test_the_code_map_names_every_source_file():
    named = layout_names()
    missing = [path for path in source_files() if path not in named]
    assert not missing, (
        f"docs/API.md's layout table does not name {len(missing)} source file(s); add each with its one job "
        f"(in its folder's row, or as a row of its own at the top level):\n  " + "\n  ".join(missing)
    )


def test_the_code_map_names_no_file_that_is_gone():
    gone = sorted(p for p in layout_names() if p.endswith(".py") and not (REPO / p).is_file())
    assert not gone, "docs/API.md's layout table names files that do not exist:\n  " + "\n  ".join(gone)
