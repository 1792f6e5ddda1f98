"""The CLI edge: expected faults to exit codes, the default path, the class-names file."""

from __future__ import annotations

import contextlib
import os
import traceback
import warnings
from pathlib import Path

import typer

from lossacc_cli.errors import LossaccError


def resolve_path(path: Path | None) -> str:
    if path is not None:
        return str(path)
    return "preds" if Path("preds").is_dir() else "."


def load_class_names(path: Path | None) -> tuple[str, ...] | None:
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LossaccError(f"--class-names {path}: cannot read ({exc.__class__.__name__}: {exc})") from None
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def one_line(text: object) -> str:
    """Messages can quote library errors that span lines; stderr gets one line per fault."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


@contextlib.contextmanager
def cli_errors(debug: bool = False):
    """Map expected faults to exit code 2 with one line on stderr; never a traceback unless --debug."""
    from lossacc_cli.cli.output import stderr_console

    debug = debug or bool(os.environ.get("LOSSACC_DEBUG"))
    try:
        with warnings.catch_warnings():
            if not debug:  # library warnings (numpy's RuntimeWarning ...) would break the stderr contract
                warnings.simplefilter("ignore")
            yield
    except typer.Exit:
        raise
    except LossaccError as exc:
        stderr_console().print(f"error: {one_line(exc)}", markup=False, highlight=False, emoji=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # the CLI edge: an unexpected fault still must not dump a traceback
        if debug:
            traceback.print_exc()
        stderr_console().print(
            f"error: internal error ({exc.__class__.__name__}: {one_line(exc)}); "
            "rerun with --debug for the traceback",
            markup=False,
            highlight=False,
            emoji=False,
        )
        raise typer.Exit(2) from None
