"""The Typer application: parse, call, render, exit code. Nothing else happens here."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Optional

import typer

from lossacc_cli import __version__
from lossacc_cli.analysis.overview import overview
from lossacc_cli.analysis.run import Run, load_run
from lossacc_cli.cli.common import (
    ClassNamesOpt,
    DebugOpt,
    Format,
    FormatOpt,
    IdColOpt,
    LabelColOpt,
    OutputOpt,
    PathArg,
    RenormOpt,
    ScoresOpt,
    SplitOpt,
    TopOpt,
    cli_errors,
    load_class_names,
    read_options,
    resolve_path,
)
from lossacc_cli.cli.output import emit, is_plain, stderr_console, stdout_console
from lossacc_cli.errors import UsageError
from lossacc_cli.render.analyze import analyze_json, analyze_renderable
from lossacc_cli.render.jsonout import document, dumps

app = typer.Typer(
    help="Explain why validation loss rises while validation accuracy rises too.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lossacc {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """lossacc reads per-epoch predictions on a fixed evaluation set and names the cause of rising loss."""


def _load(path, fmt: Format, class_names_file, options) -> Run:
    """Load the run with a progress bar on stderr (terminal, table format, several files only)."""
    err = stderr_console()
    names = load_class_names(class_names_file)
    if fmt is Format.table and err.is_terminal:
        from rich.progress import Progress

        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("reading epochs", total=None)
            run = load_run(path, options, on_epoch=lambda done, total: progress.update(task, completed=done, total=total))
    else:
        run = load_run(path, options)
    if names is not None:
        if len(names) != run.n_classes:
            raise UsageError(
                f"--class-names {class_names_file}: {len(names)} names for {run.n_classes} classes"
            )
        run = dataclasses.replace(run, class_names=names)
    for note in run.notes:
        err.print(f"warning: {note}", markup=False, highlight=False)
    return run


@app.command()
def analyze(
    path: PathArg = None,
    fmt: FormatOpt = Format.table,
    top: TopOpt = 10,
    output: OutputOpt = None,
    split: SplitOpt = None,
    label_col: LabelColOpt = None,
    id_col: IdColOpt = None,
    scores: ScoresOpt = None,
    renormalize: RenormOpt = False,
    class_names: ClassNamesOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Per-epoch loss, accuracy and calibration, and the epochs where loss rises while accuracy holds.

    Example: lossacc analyze preds/ --format json --output report.json
    """
    with cli_errors(debug):
        options = read_options(label_col, id_col, scores, split, renormalize)
        run = _load(resolve_path(path), fmt, class_names, options)
        ov = overview(run.summaries)
        if fmt is Format.json:
            emit(None, dumps(document("analyze", analyze_json(run, ov))), output=output)
        else:
            plain = bool(output) or is_plain(stdout_console())
            emit(analyze_renderable(run, ov, plain=plain), None, output=output)


def main() -> None:
    app()
