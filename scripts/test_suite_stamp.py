"""Run the test suite and record what it ran, how long it took and on what (stamped), for
the README's test-suite line.

    python -m scripts.test_suite_stamp                  # pytest -q tests, then the JSON
    python -m scripts.test_suite_stamp -- -m "not slow" # arguments after -- go to pytest

Writes docs/results/test_suite_cpu.json (only when no test failed) with the counts from
pytest's summary line, the wall time and the machine stamp; ``python -m
scripts.render_docs`` then renders it into the README.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from util import cli
from util.atomic import atomic_save
from util.errors import GSFMError
from util.log import get_logger
from util.stamp import machine_stamp

logger = get_logger(__name__)
REPO = Path(__file__).resolve().parents[1]
OUTCOMES = ("passed", "failed", "errors", "skipped", "deselected", "xfailed", "xpassed")


def summary_counts(output: str) -> dict[str, int]:
    """The counts of pytest's last summary line (``194 passed, 10 skipped in 381.2s``)."""
    lines = [line for line in output.strip().splitlines() if re.search(r"\b(passed|failed|error)", line)]
    if not lines:
        raise GSFMError("pytest printed no summary line (did it run?)")
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", lines[-1])}
    counts = {("errors" if word == "error" else word): n for word, n in counts.items()}
    return {outcome: counts.get(outcome, 0) for outcome in OUTCOMES}


def main(argv: list[str] | None = None) -> dict:
    parser = cli.argument_parser(__doc__)
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "results" / "test_suite_cpu.json")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest after the tests folder")
    args = parser.parse_args(argv)
    command = [sys.executable, "-m", "pytest", "-q", "tests", *args.pytest_args]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    counts = summary_counts(result.stdout)
    if counts["failed"] or counts["errors"] or result.returncode not in (0, 5):
        raise GSFMError(
            f"the suite did not pass ({counts['failed']} failed, {counts['errors']} errors): nothing written\n"
            + result.stdout[-2000:]
        )
    report = {
        "command": " ".join(["pytest", "-q", "tests", *args.pytest_args]),
        **counts,
        "seconds": round(seconds, 1),
        "stamp": machine_stamp("cpu"),
    }
    atomic_save(lambda tmp: tmp.write_text(json.dumps(report, indent=1)), args.output)
    logger.info(f"{args.output}: {counts['passed']} passed, {counts['skipped']} skipped in {seconds:.0f} s")
    return report


if __name__ == "__main__":
    cli.run(main)
