"""Segment your own video in the browser: open it, paint the objects on any frame,
propagate, correct a frame and propagate again, export the masks (docs/APP.md).

    python app.py                                  # the newest `python demo.py` checkpoint
    python app.py --model saves/gsfm.pth --device cuda
    python app.py --model stcn-s012                # a published name: downloaded once
    python app.py --model saves/gsfm.pth --backend onnxruntime   # graphs exported on first use

Serves http://127.0.0.1:7860 (--host 0.0.0.0 to serve other machines). Each browser tab
(or gradio_client) has its own session folder under a temporary folder, deleted when the
session ends or expires and when the app stops (Ctrl-C or SIGTERM). Needs the app's extra:
pip install -r requirements-app.txt (make venv installs it).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path

from evaluation.run import add_network_args, start
from util import cli
from util.configuration import InferenceConfig, add_arguments, from_arguments
from util.errors import ConfigError
from util.log import get_logger
from webapp.session import Caps, Sessions
from webapp.weights import resolve_model

logger = get_logger("app")
EXPIRY_CHECK_SECONDS = 30


class MissingExtra(ConfigError):
    exit_code = 2  # the command cannot run as installed, like a usage error


def main(argv: list[str] | None = None) -> None:
    parser = cli.argument_parser(__doc__)
    add_network_args(
        parser, "network weights (.pth) or a published name (stcn-s012); default: the newest from python demo.py"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on")
    parser.add_argument("--port", type=int, default=7860)
    add_arguments(parser, InferenceConfig)
    parser.add_argument("--max_frames", type=int, default=Caps.max_frames, help="longest video accepted")
    parser.add_argument("--max_side", type=int, default=Caps.max_side, help="largest frame side accepted (pixels)")
    parser.add_argument("--session_ttl", type=float, default=3600, help="seconds an idle session is kept")
    parser.add_argument(
        "--workdir", type=Path, help="where session folders go (default: the system's temporary folder)"
    )
    args = parser.parse_args(argv)
    try:
        import gradio  # noqa: F401 - only whether it is there; webapp.ui uses it
    except ImportError:
        raise MissingExtra("the app needs Gradio: pip install -r requirements-app.txt -c constraints.txt") from None
    config = from_arguments(InferenceConfig, args)
    if args.onnx is None:  # the weights run, or the ones whose graphs the onnxruntime backend exports
        args.model = str(resolve_model(args.model))
    _, network = start(args)

    root = Path(tempfile.mkdtemp(prefix="gsfm_app_", dir=args.workdir))
    os.environ["GRADIO_TEMP_DIR"] = str(root / "uploads")  # Gradio's copies of uploads go with the app
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from webapp.ui import LAUNCH_OPTIONS, App, build  # imports Gradio, which reads the variables above

    sessions = Sessions(root / "sessions", args.session_ttl)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    page = build(App(network, config, sessions, Caps(args.max_frames, args.max_side)))
    try:
        page.queue(default_concurrency_limit=4).launch(
            server_name=args.host, server_port=args.port, prevent_thread_lock=True, quiet=True, **LAUNCH_OPTIONS
        )
        logger.info(f"serving on http://{args.host}:{args.port} (Ctrl-C stops)")
        while not stop.wait(EXPIRY_CHECK_SECONDS):
            sessions.expire()
    finally:
        page.close(verbose=False)
        sessions.close()
        shutil.rmtree(root, ignore_errors=True)
        logger.info("stopped; session folders deleted")


if __name__ == "__main__":
    cli.run(main)
