"""What every command shares: its argument parser (``--help`` shows each default) and the
wrapper that turns errors meant for the user into a one-line exit."""

from __future__ import annotations

import argparse
import copy
import sys
from typing import Any, Callable

from util import distributed
from util.errors import GSFMError


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The description as written (line breaks kept), and each option's default after its
    help (unless the help already says it, or the option is an on/off flag)."""

    def _format_action(self, action: argparse.Action) -> str:
        default = default_text(action)
        if default is not None and "default" not in (action.help or "").lower():
            action = copy.copy(action)
            action.help = f"{action.help} (default: {default})" if action.help else f"default: {default}"
        return super()._format_action(action)


def default_text(action: argparse.Action) -> str | None:
    """How ``--help`` shows the action's default; None when there is nothing to show."""
    value: Any = action.default
    if value is None or value is argparse.SUPPRESS or action.help is argparse.SUPPRESS or isinstance(value, bool):
        return None
    if not action.option_strings and action.nargs not in ("?", "*"):
        return None  # a required positional argument
    text = " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
    return text.replace("%", "%%")  # argparse expands %-formats in help


def argument_parser(description: str | None = None, epilog: str | None = None) -> argparse.ArgumentParser:
    """The parser every command uses (see ``HelpFormatter``)."""
    return argparse.ArgumentParser(description=description, epilog=epilog, formatter_class=HelpFormatter)


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
