"""The one command-line wrapper: errors meant for the user become a one-line exit."""
from __future__ import annotations

import sys
from typing import Callable

from util import distributed
from util.errors import GSFMError


def run(main: Callable[[], object]) -> None:
    """Call ``main()``; a ``GSFMError`` or ``OSError`` (missing file, disk full) exits with
    ``error: <message>`` instead of a traceback (exit status 1, or the error's
    ``exit_code``). The process group, if any, is left."""
    try:
        main()
    except (GSFMError, OSError) as e:
        if getattr(e, "exit_code", 1) == 1:
            sys.exit(f"error: {e}")  # printed to stderr, status 1
        print(f"error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    finally:
        distributed.cleanup()
