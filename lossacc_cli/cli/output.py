"""Where command output goes: stdout or an atomically written file; messages go to stderr."""

from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from lossacc_cli.errors import UsageError

PLAIN_WIDTH = 160


def stdout_console() -> Console:
    """Rich decides colour and box-drawing from the terminal and NO_COLOR; piped output is given a
    wide fixed width so table rows are never wrapped (one record per line for awk/cut)."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(PLAIN_WIDTH, console.width))
    return console


def stderr_console() -> Console:
    return Console(stderr=True, soft_wrap=True)


def render_text(renderable, *, plain: bool, width: int | None = None) -> str:
    """Render to a string without colour (for files and for tests)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width or PLAIN_WIDTH, color_system=None, force_terminal=False)
    console.print(renderable)
    return buffer.getvalue()


def write_atomic(path: str, text: str) -> None:
    """Write to a temporary file in the target's folder, then rename: never a half-written report."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"--output {path}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def is_plain(console: Console) -> bool:
    return not console.is_terminal


def emit(renderable, doc_text: str | None, *, output: str | None) -> None:
    """Print the result (table renderable, or JSON text) to stdout, or write it to ``output``."""
    if output:
        text = doc_text if doc_text is not None else render_text(renderable, plain=True)
        write_atomic(output, text)
        return
    if doc_text is not None:
        sys.stdout.write(doc_text)
        sys.stdout.flush()
        return
    stdout_console().print(renderable)
