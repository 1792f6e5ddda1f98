"""Write a command's result: the JSON document, or the table view (plain when piped or to a file)."""

from __future__ import annotations

from collections.abc import Callable

from lossacc_cli.cli.options import Format
from lossacc_cli.cli.output import emit, is_plain, stdout_console
from lossacc_cli.render.jsonout import document, dumps


def respond(command: str, fmt: Format, output: str | None, body: Callable[[], dict], view) -> None:
    """Print (or write to ``output``) the JSON document from ``body()`` or the view from ``view(plain)``."""
    if fmt is Format.json:
        emit(None, dumps(document(command, body())), output=output)
    else:
        plain = bool(output) or is_plain(stdout_console())
        emit(view(plain), None, output=output)
