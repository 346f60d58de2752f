"""One way for every command: ``cli.run`` turns bad input into one line, ``error: ...``,
with exit status 2 and no traceback."""

import ast
import re
import subprocess
import sys

import pytest

import eval_benchmark
import eval_davis
import eval_davis_2016
import eval_generic
import eval_youtube
import train
from scripts import export_onnx, render_docs, resize_length, resize_youtube
from tests.helpers import REPO
from util import metrics
from util.cli import BAD_INPUT
from util.cli import run as cli_run

MISSING = "/nonexistent/gsfm"
COMMANDS = {
    "train": (train.main, ["--stage", "3", "--load_network", MISSING + ".pth", "--no_imagenet", "--id", "NULL"]),
    "eval_davis": (eval_davis.main, ["--davis_path", MISSING, "--output", "{tmp}/o"]),
    "eval_davis_2016": (eval_davis_2016.main, ["--davis_path", MISSING, "--output", "{tmp}/o"]),
    "eval_youtube": (eval_youtube.main, ["--yv_path", MISSING, "--output", "{tmp}/o"]),
    "eval_generic": (eval_generic.main, ["--frames", MISSING, "--mask", MISSING + ".png", "--output", "{tmp}/o"]),
    "eval_benchmark": (eval_benchmark.main, ["--benchmark", "sav", "--data_path", MISSING, "--output", "{tmp}/o"]),
    "export_onnx": (export_onnx.main, ["--model", MISSING + ".pth", "--output", "{tmp}/o"]),
    "render_docs": (render_docs.main, ["--docs", MISSING, "--check"]),
    "resize_length": (resize_length.main, [MISSING, "{tmp}/o"]),
    "resize_youtube": (resize_youtube.main, [MISSING, "{tmp}/o"]),
    "util.metrics": (metrics.main, [MISSING, MISSING]),
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_missing_input_is_one_line_with_status_2(name, tmp_path, caplog):
    main, args = COMMANDS[name]
    with pytest.raises(SystemExit) as stop:
        cli_run(lambda: main([a.replace("{tmp}", str(tmp_path)) for a in args]))
    assert stop.value.code == BAD_INPUT
    message = str(stop.value)
    assert message.startswith("error: ") and "/nonexistent/gsfm" in message and "Traceback" not in message, message
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [message]


def entry_points():
    """Every module that runs as a command (``if __name__ == "__main__":``) and that block."""
    for path in sorted(REPO.glob("*.py")) + sorted(REPO.glob("*/*.py")):
        if path.parts[len(REPO.parts)] in ("tests", ".venv"):
            continue
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
                yield path.relative_to(REPO).as_posix(), [ast.unparse(n) for n in node.body]


def test_every_command_goes_through_cli_run():
    commands = dict(entry_points())
    assert len(commands) >= 18, sorted(commands)
    through_cli_run = re.compile(r"cli\.run\(main(, keep_freed_memory=.+)?\)")
    assert {
        name: body for name, body in commands.items() if not (len(body) == 1 and through_cli_run.fullmatch(body[0]))
    } == {}
    # only the benchmarks' reference runs keep the C library's default allocator
    opting_out = {name for name, body in commands.items() if "keep_freed_memory" in body[0]}
    assert opting_out == {"scripts/benchmark.py", "scripts/benchmark_process.py"}


def test_the_process_exits_2_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "util.metrics", MISSING, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == BAD_INPUT
    assert result.stderr.strip() == f"error: {MISSING}: folder not found" and result.stdout == ""
