"""The documentation against the code: every flag the README and docs/ give to a command is
in that command's --help, every --help shows the defaults, every number in
docs/PERFORMANCE.md comes from a stamped result file, and the fault table names real tests."""

import contextlib
import functools
import importlib
import io
import json
import re
import shutil
import subprocess

import pytest
from torch.distributed.run import get_args_parser as torchrun_parser

from scripts import render_docs, test_suite_stamp
from tests.helpers import REPO
from util import cli
from util.configuration import STAGES
from util.errors import GSFMError

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
CODE_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
INLINE_CODE = re.compile(r"`([^`]+)`")
SEPARATORS = re.compile(r"[;&|()]")  # shell separators, subshells and background jobs end a command
FLAG = re.compile(r"^--[A-Za-z][\w-]*")
TORCHRUN_FLAGS = {o for a in torchrun_parser()._actions for o in a.option_strings}


@functools.lru_cache(maxsize=None)
def help_text(module: str) -> str:
    """``python -m <module> --help``, in this process (the modules import in a fraction of a
    second once torch is loaded)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as stop:
        importlib.import_module(module).main(["--help"])
    assert stop.value.code == 0, module
    return out.getvalue()


def in_help(flag: str, module: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text(module)) is not None


def is_command(module: str) -> bool:
    return (REPO / f"{module.replace('.', '/')}.py").is_file()


def command_lines(text: str) -> list[str]:
    """The shell code of a page: its shell code blocks (continued lines joined, comments
    dropped) and its inline code spans."""
    lines = []
    for lang, body in CODE_BLOCK.findall(text):
        if lang in ("", "bash", "sh", "console"):
            lines += [re.sub(r"(^|\s)#.*", "", line) for line in body.replace("\\\n", " ").splitlines()]
    lines += [span.replace("\n", " ") for span in INLINE_CODE.findall(CODE_BLOCK.sub("", text))]
    return lines


def commands(line: str) -> list[tuple[str | None, list[str], list[str]]]:
    """(project command or None, its flags, torchrun's flags) of each python/torchrun call in
    a line; flags of a line without a call are returned under None."""
    found = []
    for segment in SEPARATORS.split(line):
        tokens = [t.strip("\"'[],") for t in segment.split()]
        module, own, launcher, i = None, [], [], 0
        while i < len(tokens):
            token = tokens[i]
            if token in ("python", "python3") and i + 1 < len(tokens):
                if tokens[i + 1] == "-m" and i + 2 < len(tokens):
                    module, i = tokens[i + 2], i + 3
                elif tokens[i + 1].endswith(".py"):
                    module, i = tokens[i + 1][:-3].replace("/", "."), i + 2
                else:
                    break  # python -c, or python code
                continue
            if token == "torchrun":
                i += 1
                while i < len(tokens) and not tokens[i].endswith(".py"):
                    launcher += [t.split("=")[0] for t in [tokens[i]] if FLAG.match(t)]
                    i += 1
                if i < len(tokens):
                    module, i = tokens[i][:-3].replace("/", "."), i + 1
                continue
            if FLAG.match(token):
                own.append(FLAG.match(token).group())
            i += 1
        if module is not None or own or launcher:
            found.append((module, own, launcher))
    return found


def test_every_flag_in_the_docs_is_in_the_help_of_its_command():
    modules = sorted(
        {
            m
            for page in PAGES
            for line in command_lines(page.read_text())
            for m, _, _ in commands(line)
            if m and is_command(m)
        }
    )
    assert {"train", "eval_davis", "eval_generic", "util.metrics", "scripts.benchmark"} <= set(modules)
    wrong = []
    for page in PAGES:
        for line in command_lines(page.read_text()):
            for module, flags, launcher in commands(line):
                if module is None:  # a flag on its own: some command (or torchrun) must have it
                    wrong += [
                        f"{page.name}: {f} (no command has it)"
                        for f in flags
                        if f not in TORCHRUN_FLAGS and not any(in_help(f, m) for m in modules)
                    ]
                elif is_command(module):  # pip, pytest and other tools are not checked
                    wrong += [
                        f"{page.name}: {f} not in python -m {module} --help" for f in flags if not in_help(f, module)
                    ]
                wrong += [f"{page.name}: {f} is not a torchrun option" for f in launcher if f not in TORCHRUN_FLAGS]
    assert not wrong, "\n".join(wrong)


def test_the_flag_check_sees_what_it_should():
    """The parser of the check itself: commands, torchrun's own flags, separators."""
    line = (
        "torchrun --nproc_per_node=8 --master_port 29500 train.py --stage 3 --id s03 --load_network "
        '"$S0/$(basename "$S0")_40000.pth"; python -m util.metrics a b --json [--binary] & '
        "python -m pytest -q -m cuda --lf"
    )
    assert commands(line)[0] == ("train", ["--stage", "--id", "--load_network"], ["--nproc_per_node", "--master_port"])
    assert ("util.metrics", ["--json", "--binary"], []) in commands(line)
    assert ("pytest", ["--lf"], []) in commands(line) and not is_command("pytest")
    assert commands("--max_memory_frames N") == [(None, ["--max_memory_frames"], [])]
    assert not in_help("--no_such_flag", "eval_davis") and in_help("--top", "eval_davis")


def test_help_shows_the_defaults():
    assert re.search(r"--top TOP_K\s+top-k[^(]*\(default: 50\)", help_text("eval_davis"))
    assert re.search(r"--top TOP_K\s+top-k[^(]*\(default: 20\)", help_text("eval_davis_2016"))
    assert re.search(r"--size SIZE[^(]*\([^)]*\)\s*\(default: 480\)", help_text("eval_youtube"))
    train_help = help_text("train")
    assert re.search(r"--seed SEED.*?\(default: 14159265\)", train_help, re.S)
    assert re.search(r"--num_workers NUM_WORKERS\s+.*?\(default: 8\)", train_help, re.S)
    for stage, preset in STAGES.items():  # the presets the unset options take
        assert re.search(
            rf"^\s+{stage}\s+{preset.lr:g}\s+{preset.batch_size}\s+{preset.iterations}\s", train_help, re.M
        ), stage
    assert "default: 60" in help_text("scripts.benchmark")  # --frames, a list


def test_help_formatter():
    parser = cli.argument_parser("first line\n  kept as written")
    parser.add_argument("--plain", type=int, default=7)
    parser.add_argument("--rate", default="5%", help="a rate")
    parser.add_argument("--said", default=3, help="N (default: three)")
    parser.add_argument("--flag", action="store_true", help="on or off")
    parser.add_argument("--sizes", type=int, nargs=2, default=(96, 160))
    parser.add_argument("--unset", help="no default")
    text = parser.format_help()
    assert "first line\n  kept as written" in text
    assert re.search(r"--plain PLAIN\s+default: 7\n", text) and "a rate (default: 5%)" in text
    assert text.count("default:") == 4  # --plain, --rate, --said's own text, --sizes; not --flag nor --unset
    assert "default: 96 160" in text and "on or off\n" in text and "no default\n" in text


def test_every_command_uses_the_shared_parser():
    sources = [
        p
        for p in REPO.rglob("*.py")
        if not any(part.startswith(".") for part in p.relative_to(REPO).parts)
        and p.relative_to(REPO).parts[0] != "tests"
        and p != REPO / "util" / "cli.py"
    ]
    direct = [str(p.relative_to(REPO)) for p in sources if "argparse.ArgumentParser(" in p.read_text()]
    assert not direct, f"use util.cli.argument_parser (defaults in --help): {direct}"


def test_performance_numbers_come_from_stamped_result_files():
    text = (REPO / "docs" / "PERFORMANCE.md").read_text()
    blocks = render_docs.generated_blocks(text)
    kinds = set()
    for name, body in blocks:
        result = render_docs.read_result(REPO / "docs" / "results" / name)  # raises unless stamped
        kinds.add("benchmark" if "inference" in result else "demo" if "model_jf" in result else name)
        assert body == render_docs.render_result(REPO / "docs" / "results" / name), f"{name}: run scripts.render_docs"
        assert f"Measured on {render_docs.describe(result['stamp'])}" in body
    assert {"benchmark", "demo"} <= kinds
    measured = measured_numbers(render_docs.BLOCK.sub("", text))
    assert not measured, f"numbers in docs/PERFORMANCE.md outside generated blocks: {measured}"


def measured_numbers(text: str) -> list[str]:
    """What looks like a measurement: a number with a unit of time, size, speed or share, or
    any decimal."""
    return re.findall(
        r"(?<![\w.])\d+(?:\.\d+)?\s*(?:x|%|s|ms|min|minutes|seconds|MB|GB|MiB|GiB|frames/s|fps|"
        r"GFLOP/s|GFLOP)(?![\w/])|(?<![\w.])\d+\.\d+",
        text,
    )


def section(text: str, heading: str) -> str:
    """A page's section, from its heading to the next heading of the same level or above."""
    start = text.index(heading)
    level = heading.split(" ")[0]
    rest = text[start + len(heading) :]
    ends = [m.start() for m in re.finditer(r"^#{1,%d} " % len(level), rest, re.M)]
    return rest[: ends[0]] if ends else rest


# the measured sections of the docs and the README: every number in them is rendered
MEASURED_SECTIONS = {
    "docs/MIXED_PRECISION.md": "## Measured",
    "docs/FINE_TUNING.md": "## Measured",
    "docs/BENCHMARKS.md": "## Long videos and memory",
    "docs/ONNX.md": "## Speed (ONNX Runtime against PyTorch, CPU)",
    "README.md": "## Tests",
}


def test_every_generated_block_equals_its_result_file():
    pages = sorted((REPO / "docs").glob("*.md")) + [REPO / "README.md"]
    stale = [p.name for p in pages if render_docs.render_page(p.read_text()) != p.read_text()]
    assert not stale, f"out of date (run python -m scripts.render_docs): {stale}"
    for page, heading in MEASURED_SECTIONS.items():
        text = section((REPO / page).read_text(), heading)
        assert render_docs.generated_blocks(text), f"{page}: no generated block under {heading}"
        measured = measured_numbers(render_docs.BLOCK.sub("", text))
        assert not measured, f"{page} ({heading}): numbers outside generated blocks: {measured}"


def test_a_page_that_disagrees_with_its_result_file_is_found(tmp_path):
    (tmp_path / "docs" / "results").mkdir(parents=True)
    for name in ("long_video_memory_cpu.json", "test_suite_cpu.json"):
        shutil.copy(REPO / "docs" / "results" / name, tmp_path / "docs" / "results" / name)
    begin = "<!-- generated from results/{} by python -m scripts.render_docs -->\n"
    page, readme = tmp_path / "docs" / "PAGE.md", tmp_path / "README.md"
    page.write_text(begin.format("long_video_memory_cpu.json") + "old\n<!-- end of generated block -->\n")
    readme.write_text(begin.format("test_suite_cpu.json") + "old\n<!-- end of generated block -->\n")
    assert render_docs.main(["--docs", str(tmp_path / "docs")]) == [page, readme]
    report = json.loads((tmp_path / "docs" / "results" / "test_suite_cpu.json").read_text())
    assert f"ran {report['passed']} tests" in readme.read_text() and "| 1,002 | 3,566.7 MB |" in page.read_text()
    report["passed"] += 1  # the result changes, the page does not: --check names it
    (tmp_path / "docs" / "results" / "test_suite_cpu.json").write_text(json.dumps(report))
    with pytest.raises(SystemExit):
        render_docs.main(["--docs", str(tmp_path / "docs"), "--check"])
    assert render_docs.main(["--docs", str(tmp_path / "docs")]) == [readme]


def test_test_suite_stamp_reads_pytest_summaries():
    assert test_suite_stamp.summary_counts("....\n194 passed, 10 skipped, 3 deselected in 381.20s (0:06:21)\n") == {
        "passed": 194,
        "failed": 0,
        "errors": 0,
        "skipped": 10,
        "deselected": 3,
        "xfailed": 0,
        "xpassed": 0,
    }
    assert test_suite_stamp.summary_counts("F.\n1 failed, 1 passed, 1 error in 2.0s")["errors"] == 1


def test_render_docs_rewrites_blocks_and_refuses_unstamped_results(tmp_path):
    (tmp_path / "results").mkdir()
    demo_result = next(p for p in (REPO / "docs" / "results").glob("demo*.json"))
    shutil.copy(demo_result, tmp_path / "results" / "demo.json")
    begin = "<!-- generated from results/demo.json by python -m scripts.render_docs -->\n"
    page = tmp_path / "PAGE.md"
    page.write_text(f"# A page\n\n{begin}an old table\n<!-- end of generated block -->\n\nafter\n")
    assert render_docs.main(["--docs", str(tmp_path)]) == [page]
    text = page.read_text()
    summary = json.loads((tmp_path / "results" / "demo.json").read_text())
    assert "an old table" not in text and f"| {summary['model_jf']:.3f} |" in text and text.endswith("\n\nafter\n")
    assert render_docs.main(["--docs", str(tmp_path), "--check"]) == []  # now up to date
    del summary["stamp"]["commit"]
    (tmp_path / "results" / "demo.json").write_text(json.dumps(summary))
    with pytest.raises(GSFMError, match=r"demo\.json: no machine stamp \(missing commit\)"):
        render_docs.main(["--docs", str(tmp_path), "--check"])


def test_the_fault_table_names_existing_tests():
    """Each row names `file::test`, `test` (in the file of the row above), `file.py` or `same`."""
    rows = [
        line
        for line in (REPO / "docs" / "FAULTS.md").read_text().splitlines()
        if line.startswith("| ") and not line.startswith("| fault") and not line.startswith("| bad input")
    ]
    assert len(rows) > 30
    missing, current = [], None
    for row in rows:
        for name in re.findall(r"`(test_\w+(?:::test_\w+|\.py)?)`", row.rsplit("|", 2)[-2]):
            if name.endswith(".py"):
                found = (REPO / "tests" / name).is_file()
            else:
                if "::" in name:
                    current, name = name.split("::")
                found = (
                    current is not None
                    and re.search(rf"^def {name}\(", (REPO / "tests" / f"{current}.py").read_text(), re.M) is not None
                )
            if not found:
                missing.append(f"{current}::{name}")
    assert not missing, missing


def test_the_readme_score_command(tmp_path):
    """`python -m util.metrics PRED GT --json FILE` as the README gives it: perfect masks
    score 1, a missed object lowers J&F, and the JSON holds what was printed."""
    import numpy as np

    from util import metrics
    from util.palette import davis_palette, write_indexed_png

    for frame in range(3):
        mask = np.zeros((32, 48), np.uint8)
        mask[4:20, 6 + frame : 30 + frame] = 1
        mask[22:30, 30:44] = 2
        write_indexed_png(mask, davis_palette(), tmp_path / "gt" / "clip" / f"{frame:05d}.png")
        mask[mask == 2] = 0 if frame else 2
        write_indexed_png(mask, davis_palette(), tmp_path / "pred" / "clip" / f"{frame:05d}.png")
    shutil.copytree(tmp_path / "gt", tmp_path / "perfect")
    metrics.main([str(tmp_path / "perfect"), str(tmp_path / "gt"), "--json", str(tmp_path / "perfect.json")])
    assert json.loads((tmp_path / "perfect.json").read_text())["overall"]["J&F-Mean"] == pytest.approx(1.0)
    metrics.main([str(tmp_path / "pred"), str(tmp_path / "gt"), "--json", str(tmp_path / "pred.json")])
    scores = json.loads((tmp_path / "pred.json").read_text())["overall"]
    assert 0.4 < scores["J&F-Mean"] < 0.9  # object 1 perfect, object 2 lost after the first frame


def test_readme_is_a_short_read():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    for task in (
        "eval_davis.py",
        "torchrun --nproc_per_node=8 train.py --stage 0",
        "--stage 3",
        "--resume auto",
        "eval_generic.py",
        "python score.py",
        "make test",
        "make test-fast",
    ):
        assert task in readme, task


def test_nothing_cites_a_file_outside_the_repository():
    """Every document the code and docs name (an upper-case ``.md`` name, ``docs/...``) is in the
    repository, and nothing points outside it (the material the project was written from
    is not part of a clone)."""
    tracked = [
        REPO / p
        for p in subprocess.run(
            ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.split()
    ]
    names = {p.name for p in tracked} | {"PAGE.md"}  # PAGE.md: a page this module writes in a test
    texts = {
        p: p.read_text(errors="ignore")
        for p in tracked
        if p.suffix in (".py", ".md", ".toml", ".txt", ".cfg") or p.name == "Makefile"
    }
    outside = "../" + "shared"  # spelled apart, so that this file does not trip its own check
    for path, text in texts.items():
        where = path.relative_to(REPO)
        assert outside not in text, f"{where} points outside the repository"
        for name in re.findall(r"\b([A-Z][A-Z_]+\.md)\b", text):  # the project's documents are upper-case
            assert name in names, f"{where} cites {name}, which is not in the repository"
        for cited in re.findall(r"\bdocs/[\w/-]+\.\w+", text):
            if "NAME" not in cited:  # a pattern, not a file
                assert (REPO / cited).exists(), f"{where} cites {cited}, which is not in the repository"
