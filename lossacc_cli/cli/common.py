"""Options shared by every command, defined once; error handling at the CLI edge."""

from __future__ import annotations

import contextlib
import os
import traceback
import warnings
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from lossacc_cli.errors import LossaccError
from lossacc_cli.readers.model import ReadOptions


class Format(str, Enum):
    table = "table"
    json = "json"


class ScoresChoice(str, Enum):
    logits = "logits"
    probs = "probs"


PathArg = Annotated[
    Optional[Path],
    typer.Argument(help="Folder of per-epoch .parquet/.npz files, or one long-format Parquet file. "
                   "Default: preds/ when it exists, else the current folder.", show_default=False),
]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table (terminal) or json.")]
TopOpt = Annotated[int, typer.Option("--top", min=1, help="How many samples/classes to list.")]
OutputOpt = Annotated[
    Optional[str], typer.Option("--output", "-o", help="Write the report to this file (atomically).")
]
SplitOpt = Annotated[Optional[str], typer.Option("--split", help="Keep only rows whose split column equals this.")]
LabelColOpt = Annotated[Optional[str], typer.Option("--label-col", help="Name of the label column.")]
IdColOpt = Annotated[Optional[str], typer.Option("--id-col", help="Name of the sample-id column.")]
ScoresOpt = Annotated[
    Optional[ScoresChoice], typer.Option("--scores", help="Use logits or probs when a file has both.")
]
RenormOpt = Annotated[
    bool, typer.Option("--renormalize", help="Rescale probability rows that do not sum to 1 (within 1e-3).")
]
ClassNamesOpt = Annotated[
    Optional[Path], typer.Option("--class-names", help="File with one class name per line.")
]
EpochOpt = Annotated[str, typer.Option("--epoch", "-e", help="An epoch number, 'best' (lowest loss) or 'last'.")]
FromOpt = Annotated[
    Optional[str], typer.Option("--from", help="Earlier epoch: a number, 'best' or 'last'. Default: best.")
]
ToOpt = Annotated[Optional[str], typer.Option("--to", help="Later epoch: a number, 'best' or 'last'. Default: last.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the traceback of an internal error.")]
JobsOpt = Annotated[
    int,
    typer.Option("--jobs", min=0, help="CPU cores to use for reading epochs (0: all of them). "
                 "The results do not depend on it."),
]


def resolve_path(path: Path | None) -> str:
    if path is not None:
        return str(path)
    return "preds" if Path("preds").is_dir() else "."


def read_options(label_col, id_col, scores, split, renormalize) -> ReadOptions:
    return ReadOptions(
        label_col=label_col,
        id_col=id_col,
        scores=scores.value if scores is not None else None,
        split=split,
        renormalize=renormalize,
    )


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
