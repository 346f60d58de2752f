"""Messages for the user from library code: the ``gsfm`` logger, never ``print``.

Library modules take ``logger = get_logger(__name__)``. Unless an application configures
the ``gsfm`` logger itself, messages go to the console as plain lines (INFO to standard
output, warnings and errors to standard error), written through tqdm so that they do not
break a progress bar. An application that wants them elsewhere replaces the handler.
"""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm

ROOT_NAME = "gsfm"


class ConsoleHandler(logging.Handler):
    """Plain lines around tqdm's bars, to the streams as they are when a message is written
    (so redirections made later, e.g. by a test, see them)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stdout if record.levelno < logging.WARNING else sys.stderr)
        except Exception:  # noqa: BLE001 - logging must not raise into the caller
            self.handleError(record)


def get_logger(name: str) -> logging.Logger:
    """The logger of a library module (a child of ``gsfm``)."""
    return logging.getLogger(ROOT_NAME).getChild(name)


_root = logging.getLogger(ROOT_NAME)
if not _root.handlers:
    _root.addHandler(ConsoleHandler())
    _root.setLevel(logging.INFO)
    _root.propagate = False
