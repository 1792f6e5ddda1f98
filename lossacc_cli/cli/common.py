"""The CLI edge: expected faults to exit codes, the default path, the class-names file."""

from __future__ import annotations

import contextlib
import os
import traceback
import warnings
from pathlib import Path

import typer

from lossacc_cli.errors import LossaccError, UsageError
from lossacc_cli.text import shown

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
"""0 success, 1 a check failed, 2 usage/input/output error, 3 a bug, 130 interrupted."""

CLASS_NAMES_MAX_BYTES = 64 << 20
"""A class-names file larger than this is refused before it is read (a million long names fit)."""


def resolve_path(path: Path | None) -> str:
    if path is not None:
        return str(path)
    return "preds" if Path("preds").is_dir() else "."


def load_class_names(path: Path | None) -> tuple[str, ...] | None:
    """One name per line of a UTF-8 file (a byte-order mark and CRLF line ends are accepted).

    Lines are split at ``\\n`` only: U+0085, U+2028 and the other characters Python's
    ``splitlines`` also breaks at belong to names. A blank line between names is an error (it
    would shift every name after it); blank lines at the end of the file are ignored.
    """
    if path is None:
        return None
    from lossacc_cli.readers.files import read_small

    label = f"--class-names {shown(path)}"
    data = read_small(path, label=label, limit=CLASS_NAMES_MAX_BYTES)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{label}: not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r})") from None
    lines = [line.removesuffix("\r").strip(" \t") for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    blank = [number for number, line in enumerate(lines, start=1) if not line]
    if blank:
        where = ", ".join(map(str, blank[:5])) + (" ..." if len(blank) > 5 else "")
        noun = "line" if len(blank) == 1 else "lines"
        raise UsageError(
            f"{label}: blank {noun} {where} among the names; give one name per class, in "
            "class-index order (a blank line would shift the names after it)"
        )
    return tuple(lines)


def one_line(text: object) -> str:
    """Messages can quote library errors that span lines; stderr gets one line per fault."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def say(prefix: str, text: object) -> None:
    """Print ``prefix: text`` as one escaped line on stderr (``error``, ``warning``); a stderr
    that cannot be written to is not a further error."""
    from lossacc_cli.cli.output import stderr_console

    line = f"{prefix}: {shown(one_line(text))}"
    with contextlib.suppress(OSError, ValueError):
        stderr_console().print(line, markup=False, highlight=False, emoji=False)


def fail(message: object, code: int = EXIT_INPUT) -> typer.Exit:
    """Say ``error: message`` and return the Exit to raise."""
    say("error", message)
    return typer.Exit(code)


@contextlib.contextmanager
def cli_errors(debug: bool = False):
    """Map faults to exit codes with one line on stderr, never a traceback unless --debug:
    expected faults (bad input, usage, an output that cannot be written, too little memory) exit
    2; anything else is a bug and exits 3; Ctrl-C exits 130."""
    debug = debug or bool(os.environ.get("LOSSACC_DEBUG"))
    try:
        with warnings.catch_warnings():
            if not debug:  # library warnings (numpy's RuntimeWarning ...) would break the stderr contract
                warnings.simplefilter("ignore")
            yield
    except typer.Exit:
        raise
    except LossaccError as exc:
        raise fail(exc) from None
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except MemoryError as exc:
        if debug:
            traceback.print_exc()
        detail = f" ({one_line(exc)})" if str(exc) else ""
        raise fail(f"not enough memory for this input{detail}; try --jobs 1, or a machine with "
                   "more memory") from None
    except Exception as exc:  # the CLI edge: an unexpected fault still must not dump a traceback
        if debug:
            traceback.print_exc()
        raise fail(
            f"internal error ({exc.__class__.__name__}: {one_line(exc)}); "
            "rerun with --debug for the traceback",
            EXIT_BUG,
        ) from None
