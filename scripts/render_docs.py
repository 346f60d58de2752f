"""Write the docs' generated tables from the stamped result files in docs/results/.

A generated block of a page in docs/ lies between two markers,

    <!-- generated from results/NAME.json by python -m scripts.render_docs -->
    ...
    <!-- end of generated block -->

and is the rendering of docs/results/NAME.json: a benchmark report (written by
``python -m scripts.benchmark`` as benchmark.json) or a demo summary (written by
``python demo.py`` as summary.json). Every result file carries the stamp of the machine and
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

from scripts.benchmark import markdown as benchmark_markdown
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
    r"(?P<begin><!-- generated from results/(?P<name>[\w.-]+\.json) by python -m scripts\.render_docs "
    r"-->\n)(?P<body>.*?)(?P<end><!-- end of generated block -->)",
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


def render_result(path: Path) -> str:
    """The markdown of one result file, by its kind."""
    result = read_result(path)
    if "inference" in result and "conv_gflops" in result:
        return benchmark_markdown(result)
    if "model_jf" in result:
        return demo_table(result)
    raise GSFMError(f"{path}: neither a benchmark report nor a demo summary")


def render_page(text: str, results: Path = RESULTS) -> str:
    """The page with each generated block rewritten from its result file."""
    return BLOCK.sub(lambda m: m["begin"] + render_result(results / m["name"]) + m["end"], text)


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
    for page in sorted(args.docs.glob("*.md")):
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
