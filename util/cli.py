"""What every command shares: its argument parser (``--help`` shows each default) and the
wrapper that turns errors meant for the user into a one-line exit."""

from __future__ import annotations

import argparse
import copy
from typing import Any, Callable

from util import distributed, memory
from util.errors import GSFMError
from util.log import get_logger

BAD_INPUT = 2  # the exit status of a command given input it cannot use
_logger = get_logger(__name__)


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


def run(main: Callable[[], object], keep_freed_memory: bool = True) -> None:
    """Call ``main()``; a ``GSFMError`` or ``OSError`` (bad input: a missing file, a file
    that cannot be used, a full disk) ends the command with one line, ``error: <message>``,
    on standard error and no traceback: exit status 2 (as argparse gives for bad
    arguments), or the error's ``exit_code``. The process group, if any, is left. Freed
    memory is kept for reuse (``util.memory.keep_freed_memory``: fewer page faults, the
    same results) unless ``keep_freed_memory`` is False (the benchmarks' reference runs,
    timed with the C library's defaults as the reference's code runs)."""
    if keep_freed_memory:
        memory.keep_freed_memory()
    try:
        main()
    except (GSFMError, OSError) as e:
        message = f"error: {e}"
        _logger.error(message)
        stop = SystemExit(message)  # the message stays readable by a caller that catches it
        stop.code = getattr(e, "exit_code", BAD_INPUT)
        raise stop from None
    finally:
        distributed.cleanup()
