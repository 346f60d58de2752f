"""Write the docs' generated tables from the stamped result files in docs/results/.

A generated block of a page in docs/ (or of the README beside it) lies between two markers,

    <!-- generated from results/NAME.json by python -m scripts.render_docs -->
    ...
    <!-- end of generated block -->

and is the rendering of docs/results/NAME.json: a benchmark report (written by
``python -m scripts.benchmark`` as benchmark.json), a whole-process benchmark (written by
``python -m scripts.benchmark_process``) or a demo summary (written by ``python demo.py`` as
summary.json). Every result file carries the stamp of the machine and
code that measured it (util/stamp.py), and its table shows that stamp. To publish a new
measurement, copy its result file into docs/results/, point a block at it and run:

    python -m scripts.render_docs            # rewrite the generated blocks of every page
    python -m scripts.render_docs --check    # only report the blocks that are out of date
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Callable

from scripts.benchmark_onnx import markdown as onnx_markdown
from scripts.benchmark_process import markdown as process_markdown
from scripts.benchmark_report import markdown as benchmark_markdown
from scripts.videos_per_device import markdown as videos_per_device_markdown
from util import cli
from util.atomic import atomic_save
from util.errors import GSFMError
from util.log import get_logger
from util.stamp import describe

logger = get_logger(__name__)
REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
RESULTS = DOCS / "results"
BLOCK = re.compile(
    r"(?P<begin><!-- generated from results/(?P<name>[\w.-]+\.json)(?:#(?P<view>\w+))? "
    r"by python -m scripts\.render_docs -->\n)(?P<body>.*?)(?P<end><!-- end of generated block -->)",
    re.S,
)
STAMP_KEYS = ("cpu", "cpu_flags", "threads", "gpu", "torch", "commit")


def read_result(path: Path) -> dict:
    """A result file, checked to carry a complete stamp."""
    try:
        result = json.loads(path.read_text())
    except FileNotFoundError:
        raise GSFMError(f"{path}: result file not found") from None
    except json.JSONDecodeError as e:
        raise GSFMError(f"{path}: not a JSON result file ({e})") from None
    stamp = result.get("stamp") if isinstance(result, dict) else None
    missing = [key for key in STAMP_KEYS if not isinstance(stamp, dict) or key not in stamp]
    if missing:
        raise GSFMError(f"{path}: no machine stamp (missing {', '.join(missing)}); only stamped results are published")
    return result


def demo_table(summary: dict) -> str:
    """The demo's J&F next to the copy-the-first-mask baseline, and its time."""
    command = "python demo.py --quick" if summary.get("quick") else "python demo.py"
    return (
        f"Measured on {describe(summary['stamp'])}.\n\n"
        "| command | J&F-Mean: GSFM | J&F-Mean: copy the first mask | seconds in all |\n|---|---|---|---|\n"
        f"| `{command}` | {summary['model_jf']:.3f} | {summary['baseline_jf']:.3f} | {summary['seconds']:.0f} |\n"
    )


def scoring_table(result: dict) -> str:
    """score.py's time on a generated set, per number of processes."""
    run = result["scoring"]
    load = " (under load: other jobs shared the CPU)" if run.get("under_load") else ""
    h, w = run["frame_size"]
    rows = "".join(f"| {r['processes']} | {r['seconds']:.0f} |\n" for r in result["runs"])
    return (
        f"Measured on {describe(result['stamp'])}{load}: {run['videos']} videos, {run['objects']} objects, "
        f"{run['annotated_frames']} annotated frames of {w}x{h} each, {run['bootstrap']} resamples.\n\n"
        f"| processes | seconds (scoring, intervals, report) |\n|---|---|\n{rows}"
    )


def memory_table(report: dict) -> str:
    """``scripts.long_video_memory``'s report: the bank of a long video under each setting,
    and what the check run measured."""
    check, formula = report["check"], report["formula"]
    rows = sorted(formula, key=lambda r: -(r["max_memory_frames"] or float("inf")))
    default = next(r for r in formula if r["max_memory_frames"] is None)
    smallest = rows[-1]
    lines = [
        f"Measured on {describe(report['stamp'])}, for a video of {report['video']}.",
        "",
        "| settings | memory frames at the end | memory bank |",
        "|---|---|---|",
    ]
    for r in rows:
        setting = (
            f"defaults (`mem_every` {check['settings']['mem_every']}, every memory frame kept)"
            if r["max_memory_frames"] is None
            else f"`--max_memory_frames {r['max_memory_frames']}`"
        )
        lines.append(f"| {setting} | {r['bank_frames']:,} | {r['bank_mb']:,.1f} MB |")
    rss = check["rss_mb"]
    base_gb = check["rss_max_mb"] / 1024
    lines += [
        "",
        f"({report['positions_per_frame']:,} positions per frame, the padded frame at 1/16; "
        f"{report['bytes_per_position']:,} bytes per position with one object.) The check run "
        f"({check['frames']} frames, default settings, deterministic weights) allocated a bank of "
        f"{check['bank_allocated_mb']} MB, the formula's {check['bank_formula_mb']} MB for {check['frames']} "
        f"frames; the process's resident memory was {rss[0]:,.1f} MB after the first frame and "
        f"{rss[-1]:,.1f} MB after the last (between {check['rss_min_mb']:,.1f} and {check['rss_max_mb']:,.1f} MB), "
        f"a change of {check['rss_growth_after_second_frame_mb']:+.1f} MB from the second frame to the last. So such a "
        f"video needs about {base_gb:.1f} GB plus its bank: about {base_gb + default['bank_mb'] / 1024:.1f} GB "
        f"with the defaults, about {base_gb + smallest['bank_mb'] / 1024:.1f} GB with "
        f"`--max_memory_frames {smallest['max_memory_frames']}`.",
        "",
    ]
    return "\n".join(lines)


def fine_tuning_summary(result: dict) -> str:
    """``scripts.fine_tune_curve``'s result: the validation curve, the best iteration and
    validation's share of the run's time."""
    curve = ", ".join(f"{p['J&F']:.3f} at {p['it']}" for p in result["curve"])
    seconds = [p["seconds"] for p in result["curve"]]
    per_iteration = result["train_seconds"] / result["iterations"]
    return (
        f"Measured on {describe(result['stamp'])}, with other processes sharing the cores (absolute times are "
        f"inflated; the share is the comparable number):\n"
        f"- validation J&F: {curve}; `<run>_best.pth` is the network of iteration {result['best']['it']} "
        f"(J&F {result['best']['jf']:.3f}).\n"
        f"- time: training {result['train_seconds']:.0f} s ({per_iteration:.1f} s per iteration), validation "
        f"{result['validation_seconds']:.0f} s in all ({min(seconds):.0f}-{max(seconds):.0f} s per validation of "
        f"{result['val_videos'] * result['val_frames']} frames): validation took "
        f"**{100 * result['validation_share']:.1f} % of the run's time** (training and validation) at one "
        f"validation per {result['val_interval']} iterations; a validation costs about as much as "
        f"{result['validation_seconds'] / len(seconds) / per_iteration:.1f} training iterations here.\n"
    )


def test_suite_line(report: dict) -> str:
    """``scripts.test_suite_stamp``'s report: what the whole suite ran, and in how long."""
    minutes, seconds = divmod(round(report["seconds"]), 60)
    return (
        f"The whole suite (`{report['command']}`) ran {report['passed']} tests ({report['skipped']} more skipped "
        f"without a GPU) in {minutes} min {seconds} s on {describe(report['stamp'])}.\n"
    )


# each kind of result file: how to recognise it, and how to render it
RENDERERS: tuple[tuple[str, Callable[[dict], bool], Callable[[dict], str]], ...] = (
    ("benchmark report", lambda r: "inference" in r and "conv_gflops" in r, benchmark_markdown),
    ("demo summary", lambda r: "model_jf" in r, demo_table),
    ("long-video memory report", lambda r: "formula" in r and "check" in r, memory_table),
    ("fine-tuning curve", lambda r: "curve" in r and "validation_share" in r, fine_tuning_summary),
    ("test-suite run", lambda r: "passed" in r and "command" in r, test_suite_line),
    ("scoring speed", lambda r: "scoring" in r, scoring_table),
    ("ONNX Runtime benchmark", lambda r: "export" in r and "rows" in r, onnx_markdown),
    (
        "several videos at once",
        lambda r: bool(r.get("rows")) and all("videos_per_device" in row for row in r["rows"]),
        videos_per_device_markdown,
    ),
    (
        "whole-process benchmark",
        lambda r: bool(r.get("rows")) and all("run" in row for row in r["rows"]),
        process_markdown,
    ),
)


def render_result(path: Path) -> str:
    """The markdown of one result file, by its kind."""
    result = read_result(path)
    for _, recognise, render in RENDERERS:
        if recognise(result):
            return render(result)
    raise GSFMError(f"{path}: not a result file of a known kind ({', '.join(kind for kind, _, _ in RENDERERS)})")


def own_video_speed(result: dict) -> str:
    """One sentence for the own-video quick start: the engine's float32 speed on an 854x480
    video with one object, from the benchmark report."""
    row = next(r for r in result["inference"] if r["objects"] == 1)
    return (
        f"a CPU segments 854x480 at {row['engine']['fps']:.2f} frames/s with one object "
        f"({describe(result['stamp'])}).\n"
    )


# a part of a result file that a page quotes on its own: ``results/NAME.json#VIEW``
VIEWS: dict[str, Callable[[dict], str]] = {"own_video_speed": own_video_speed}


def render_block(results: Path, name: str, view: str | None) -> str:
    if view is None:
        return render_result(results / name)
    if view not in VIEWS:
        raise GSFMError(f"results/{name}#{view}: no such view ({', '.join(VIEWS)})")
    return VIEWS[view](read_result(results / name))


def render_page(text: str, results: Path = RESULTS) -> str:
    """The page with each generated block rewritten from its result file."""
    return BLOCK.sub(lambda m: m["begin"] + render_block(results, m["name"], m["view"]) + m["end"], text)


def generated_blocks(text: str) -> list[tuple[str, str]]:
    """(result file name, block body) of each generated block of a page."""
    return [(m["name"], m["body"]) for m in BLOCK.finditer(text)]


def main(argv: list[str] | None = None) -> list[Path]:
    """Rewrite (or with --check, list) the pages whose generated blocks are out of date."""
    parser = cli.argument_parser(__doc__)
    parser.add_argument("--docs", type=Path, default=DOCS, help="folder of the pages (results/ inside it)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a page is out of date")
    args = parser.parse_args(argv)
    if not args.docs.is_dir():
        raise GSFMError(f"{args.docs}: docs folder not found")
    stale = []
    readme = args.docs.parent / "README.md"  # its blocks read the same results/ folder
    for page in sorted(args.docs.glob("*.md")) + ([readme] if readme.is_file() else []):
        text = page.read_text()
        rendered = render_page(text, args.docs / "results")
        if rendered != text:
            stale.append(page)
            if not args.check:
                atomic_save(lambda tmp: tmp.write_text(rendered), page)
    for page in stale:
        logger.info(f"{page}: {'out of date' if args.check else 'rewritten'}")
    if args.check and stale:
        sys.exit(1)
    return stale


if __name__ == "__main__":
    cli.run(main)
