"""Write a command's result: the JSON document, or the view (rich in a terminal, plain otherwise).

The layout depends only on whether stdout is a terminal (``isatty``), never on FORCE_COLOR or
``--color``, which change the colour alone. Plain output (a pipe, a file) is one record per line:
prose is not wrapped, table rows are never folded or cut, and lines carry no trailing spaces.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from lossacc_cli.cli.options import ColorChoice, Format
from lossacc_cli.cli.output import Inert, emit
from lossacc_cli.render.jsonout import SHOWN_AS_IT_IS, document, dump_parts

if TYPE_CHECKING:
    from rich.console import Console

UNWRAPPED = 1 << 16
"""The width plain output is laid out at: wide enough that nothing wraps."""


def stdout_is_terminal() -> bool:
    try:
        return os.isatty(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # replaced or closed stdout (tests, pipes)
        return False


def colour_wanted(color: ColorChoice) -> bool:
    if color is ColorChoice.always:
        return True
    if color is ColorChoice.never or os.environ.get("NO_COLOR"):
        return False
    return stdout_is_terminal() or bool(os.environ.get("FORCE_COLOR"))


def plain_text(renderable, *, colour: bool = False) -> str:
    """The renderable laid out for a pipe or a file: unwrapped, without trailing spaces."""
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=UNWRAPPED, color_system="standard" if colour else None,
                      force_terminal=colour, highlight=False, emoji=False)
    console.print(Inert(renderable), soft_wrap=True)  # data escaped, rich's own colour kept
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def terminal_console(color: ColorChoice) -> Console:
    from rich.console import Console

    if color is ColorChoice.never or (color is ColorChoice.auto and os.environ.get("NO_COLOR")):
        return Console(color_system=None, highlight=False)
    return Console(highlight=False, force_terminal=True if color is ColorChoice.always else None)


def respond(command: str, fmt: Format, output: str | None, body: Callable[[], dict], view,
            color: ColorChoice = ColorChoice.auto) -> None:
    """Print (or write to ``output``) the JSON document from ``body()`` or the view from
    ``view(plain)`` (a JSON report never imports rich: ``view`` imports its renderer)."""
    if fmt is Format.json:
        emit(None, dump_parts(document(command, body())), output=output, inert=SHOWN_AS_IT_IS)
        return
    to_file = bool(output) and output != "-"
    if to_file or not stdout_is_terminal():
        emit(None, plain_text(view(True), colour=not to_file and colour_wanted(color)), output=output,
             inert=True)
        return
    terminal_console(color).print(Inert(view(False)))
