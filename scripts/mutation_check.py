"""Plant each change of a scoring rule and check that the scorer tests fail.

    python -m scripts.mutation_check            # every mutation (make mutation-check)
    python -m scripts.mutation_check --list     # the mutations, without running anything
    python -m scripts.mutation_check --only lvos-v-unrounded sav-start-at-gt

Each mutation replaces one snippet of the scorers' code (DAVIS J&F in util/metrics.py; MOSE
v2, LVOS, VOST and SA-V wherever their scorer lives: the snippet is searched for in the
source tree and must occur exactly once) in a copy of the repository, then runs the scorer
tests there (stopping at the first failure). A mutation the tests pass is MISSED, and the
command exits with status 1: the rule it changes has no test that would notice.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from util import cli
from util.errors import GSFMError
from util.log import get_logger

logger = get_logger(__name__)
REPO = Path(__file__).resolve().parents[1]
# the rule tests first: a mutation they catch stops the run before the slower transcription tests
SCORER_TESTS = ("tests/test_scoring_rules.py", "tests/test_metrics.py", "tests/test_benchmarks.py")
SEARCHED_OUTSIDE = ("tests", "reference", "scripts", ".venv")  # the oracles and the tests stay as they are


@dataclass(frozen=True)
class Mutation:
    name: str
    rule: str  # the protocol rule the change breaks
    snippet: str  # exact code, unique in the source tree
    replacement: str


MUTATIONS = (
    # ---- DAVIS (util/metrics.py) ----
    Mutation(
        "davis-first-frame-scored",
        "DAVIS: the first frame is excluded",
        "js = [region_j(pred[t] == obj, gt[t] == obj) for t in range(1, len(gt) - 1)]",
        "js = [region_j(pred[t] == obj, gt[t] == obj) for t in range(0, len(gt) - 1)]",
    ),
    Mutation(
        "davis-last-frame-scored",
        "DAVIS: the last frame is excluded",
        "fs = [boundary_f(pred[t] == obj, gt[t] == obj) for t in range(1, len(gt) - 1)]",
        "fs = [boundary_f(pred[t] == obj, gt[t] == obj) for t in range(1, len(gt))]",
    ),
    Mutation(
        "davis-boundary-rounded",
        "DAVIS: boundary tolerance ceil(0.008 x diagonal)",
        "radius = int(math.ceil(bound_th * np.linalg.norm(pred.shape)))",
        "radius = int(round(bound_th * np.linalg.norm(pred.shape)))",
    ),
    Mutation(
        "davis-boundary-fraction",
        "DAVIS: boundary tolerance 0.008 of the diagonal",
        "bound_th: float = 0.008, radius",
        "bound_th: float = 0.012, radius",
    ),
    Mutation(
        "davis-recall-at-or-above",
        "DAVIS: recall counts values > 0.5",
        "recall = float(np.nanmean(values > 0.5))",
        "recall = float(np.nanmean(values >= 0.5))",
    ),
    Mutation(
        "davis-recall-threshold",
        "DAVIS: recall threshold 0.5",
        "recall = float(np.nanmean(values > 0.5))",
        "recall = float(np.nanmean(values > 0.6))",
    ),
    Mutation(
        "davis-decay-bin-ends",
        "DAVIS: decay bins include their end index",
        "bins = [values[ids[i] : ids[i + 1] + 1] for i in range(4)]",
        "bins = [values[ids[i] : ids[i + 1]] for i in range(4)]",
    ),
    Mutation(
        "davis-decay-quarters",
        "DAVIS: decay is the first quarter minus the last",
        "decay = float(np.nanmean(bins[0]) - np.nanmean(bins[3]))",
        "decay = float(np.nanmean(bins[0]) - np.nanmean(bins[2]))",
    ),
    Mutation(
        "davis-decay-no-wrap",
        "DAVIS: decay bin bounds are uint8 (wrap past 256 frames)",
        "ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(np.uint8).astype(int)",
        "ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(int)",
    ),
    Mutation(
        "davis-empty-j",
        "DAVIS: J is 1 when both masks are empty",
        "return 1.0 if union == 0 else float(inter / union)",
        "return 0.0 if union == 0 else float(inter / union)",
    ),
    Mutation(
        "davis-void-kept",
        "DAVIS: 255 (void) is background",
        "gt = np.where(gt == 255, 0, gt)\n",
        "\n",
    ),
    # ---- MOSE v2 ----
    Mutation(
        "mose2-f-swapped",
        "MOSE v2: F is the DAVIS width, F_new the adaptive one",
        "f.append(classic)\n                f_new.append(adaptive)",
        "f.append(adaptive)\n                f_new.append(classic)",
    ),
    Mutation(
        "mose2-adaptive-fraction",
        "MOSE v2: adaptive width ceil(0.1 x sqrt(area))",
        "MOSE2_BOUNDARY = 0.1 ",
        "MOSE2_BOUNDARY = 0.2 ",
    ),
    Mutation(
        "mose2-j-unsmoothed",
        "MOSE v2: J = (inter + 1) / (union + 1)",
        "(np.logical_and(pred, gt).sum() + 1) / (union + 1)",
        "np.logical_and(pred, gt).sum() / union",
    ),
    Mutation(
        "mose2-first-frame-scored",
        "MOSE v2: the first frame is skipped",
        "for n in names[1 : length - 1]]",
        "for n in names[0 : length - 1]]",
    ),
    Mutation(
        "mose2-last-frame-scored",
        "MOSE v2: the last frame is skipped",
        "for n in names[1 : length - 1]]",
        "for n in names[1:length]]",
    ),
    Mutation(
        "mose2-disappear-at-start",
        "MOSE v2: an object absent on the first scored frame has no disappearance segment",
        "        if start > 0:\n            gone.append",
        "        if start >= 0:\n            gone.append",
    ),
    Mutation(
        "mose2-segment-end",
        "MOSE v2: a disappearance segment lasts up to the reappearance",
        "end = reappear[i] if i < len(reappear) else len(empty_gt)",
        "end = reappear[i] + 1 if i < len(reappear) else len(empty_gt)",
    ),
    Mutation(
        "mose2-segments-on-classic-f",
        "MOSE v2: the segments' F is F_new",
        "mose2_segments(np.array(j), np.array(f_new), np.array(empty))",
        "mose2_segments(np.array(j), np.array(f), np.array(empty))",
    ),
    # ---- LVOS ----
    Mutation(
        "lvos-first-frame-scored",
        "LVOS: an object's first annotated frame is skipped",
        "if 0 < k < count - 1]",
        "if 0 <= k < count - 1]",
    ),
    Mutation(
        "lvos-last-frame-scored",
        "LVOS: an object's last annotated frame is skipped",
        "if 0 < k < count - 1]",
        "if 0 < k < count]",
    ),
    Mutation(
        "lvos-v-unrounded",
        "LVOS: V rounds the variance to 4 decimals first",
        "math.sqrt(round(float(variance), 4))",
        "math.sqrt(float(variance))",
    ),
    Mutation(
        "lvos-mean-over-objects",
        "LVOS: J/F/V-Mean average the seen and the unseen means",
        'f"{m}-Mean": (seen + unseen_mean) / 2',
        'f"{m}-Mean": float(np.nanmean([o[f"{m}-Mean"] for o in per_object]))',
    ),
    Mutation(
        "lvos-groups-swapped",
        "LVOS: seen videos are those not in the unseen list",
        '"seen": video not in unseen',
        '"seen": video in unseen',
    ),
    Mutation(
        "lvos-past-range-ignored",
        "LVOS: frames counted past the annotated range score 0",
        "j, f = np.zeros(max(size, 0)), np.zeros(max(size, 0))",
        "j, f = np.full(max(size, 0), np.nan), np.full(max(size, 0), np.nan)",
    ),
    # ---- VOST ----
    Mutation(
        "vost-void-ignored",
        "VOST: void (255) counts as background",
        "j = np.array([region_j(p == obj, g == obj) for p, g in zip(preds, gts)])",
        "j = np.array([region_j((p == obj) & (g != VOID_LABEL), g == obj) for p, g in zip(preds, gts)])",
    ),
    Mutation(
        "vost-first-frame-scored",
        "VOST: the first frame is skipped",
        "        names = names[1:-1]\n        last_quarter",
        "        names = names[:-1]\n        last_quarter",
    ),
    Mutation(
        "vost-last-frame-scored",
        "VOST: the last frame is skipped",
        "        names = names[1:-1]\n        last_quarter",
        "        names = names[1:]\n        last_quarter",
    ),
    Mutation(
        "vost-j-last-half",
        "VOST: J_last covers the last quarter",
        "last_quarter = int(math.floor(len(names) * 0.75))",
        "last_quarter = int(math.floor(len(names) * 0.5))",
    ),
    # ---- SA-V ----
    Mutation(
        "sav-start-at-gt",
        "SA-V: an object counts from its first non-empty ground truth or prediction",
        "started = started or bool(pred.any() or gt.any())",
        "started = started or bool(gt.any())",
    ),
    Mutation(
        "sav-start-at-first-frame",
        "SA-V: frames before an object's start do not count",
        "started = started or bool(pred.any() or gt.any())",
        "started = True",
    ),
    Mutation(
        "sav-first-frame-scored",
        "SA-V: the first annotated frame is skipped",
        "names = _pngs(gt_root / video / obj)[1:-1]",
        "names = _pngs(gt_root / video / obj)[:-1]",
    ),
    Mutation(
        "sav-last-frame-scored",
        "SA-V: the last annotated frame is skipped",
        "names = _pngs(gt_root / video / obj)[1:-1]",
        "names = _pngs(gt_root / video / obj)[1:]",
    ),
)


def source_files(root: Path) -> list[Path]:
    return [p for p in sorted(root.rglob("*.py")) if p.relative_to(root).parts[0] not in SEARCHED_OUTSIDE]


def locate(mutation: Mutation, root: Path) -> Path:
    """The one source file holding ``mutation.snippet`` (exactly once)."""
    hits = [(p, p.read_text().count(mutation.snippet)) for p in source_files(root)]
    hits = [(p, n) for p, n in hits if n]
    if len(hits) != 1 or hits[0][1] != 1:
        where = ", ".join(f"{p.relative_to(root)} ({n}x)" for p, n in hits) or "nowhere"
        raise GSFMError(f"mutation {mutation.name}: its snippet must occur once in the source tree, found {where}")
    return hits[0][0]


def copy_repository(destination: Path) -> None:
    """The tracked and the new (not ignored) files of the working tree."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
        text=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def run_tests(root: Path, tests: tuple[str, ...]) -> tuple[bool, str]:
    """(whether the tests pass, the first failing test or the last output line)."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-m", "not slow", "-p", "no:cacheprovider", *tests],
        cwd=root,
        capture_output=True,
        text=True,
    )
    lines = result.stdout.strip().splitlines()
    failed = [line.split(" - ")[0].removeprefix("FAILED ").removeprefix("ERROR ") for line in lines]
    failed = [line for line in failed if "::" in line and line.startswith("tests/")]
    return result.returncode == 0, failed[0] if failed else (lines[-1] if lines else result.stderr[-300:])


def main(argv: list[str] | None = None) -> dict[str, str]:
    """Run the mutations; returns {name: the test that caught it, or "MISSED"}."""
    parser = cli.argument_parser(__doc__)
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these mutations only")
    parser.add_argument("--list", action="store_true", help="list the mutations and the rule each breaks")
    args = parser.parse_args(argv)
    known = {m.name: m for m in MUTATIONS}
    unknown = sorted(set(args.only or ()) - set(known))
    if unknown:
        raise GSFMError(f"--only: unknown mutation(s) {', '.join(unknown)} (see --list)")
    chosen = [known[name] for name in args.only] if args.only else list(MUTATIONS)
    if args.list:
        for m in chosen:
            logger.info(f"{m.name}: {m.rule}")
        return {}
    outcome = {}
    with tempfile.TemporaryDirectory(prefix="gsfm-mutation-") as tmp:
        root = Path(tmp)
        copy_repository(root)
        for m in chosen:
            locate(m, root)  # every snippet is checked before the first (slow) test run
        passes, last = run_tests(root, SCORER_TESTS)
        if not passes:
            raise GSFMError(f"the scorer tests fail without any mutation ({last}); fix them first")
        for m in chosen:
            path = locate(m, root)
            original = path.read_text()
            started = time.perf_counter()
            try:
                path.write_text(original.replace(m.snippet, m.replacement))
                passes, caught_by = run_tests(root, SCORER_TESTS)
            finally:
                path.write_text(original)
            outcome[m.name] = "MISSED" if passes else caught_by
            verdict = "MISSED" if passes else f"caught by {caught_by}"
            logger.info(
                f"{m.name} ({path.relative_to(root)}; {m.rule}): {verdict} [{time.perf_counter() - started:.0f} s]"
            )
    missed = [name for name, result in outcome.items() if result == "MISSED"]
    logger.info(f"{len(outcome) - len(missed)} of {len(outcome)} mutations caught")
    if missed:
        raise SystemExit(1)
    return outcome


if __name__ == "__main__":
    cli.run(main)
