"""The Typer application: the root options and one module per command (``cli/commands``).

Each command parses, calls the analysis, renders and sets the exit code; nothing else happens here.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from lossacc_cli import __version__
from lossacc_cli.cli.commands.analyze import analyze
from lossacc_cli.cli.commands.cache import cache_app
from lossacc_cli.cli.commands.calibration import calibration
from lossacc_cli.cli.commands.check import check
from lossacc_cli.cli.commands.compare import compare
from lossacc_cli.cli.commands.outliers import outliers
from lossacc_cli.cli.commands.report import report

app = typer.Typer(
    help="Explain why validation loss rises while validation accuracy rises too.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

for command in (analyze, outliers, compare, calibration, check, report):
    app.command()(command)
app.add_typer(cache_app, name="cache")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lossacc {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """lossacc reads per-epoch predictions on a fixed evaluation set and names the cause of rising loss."""


def main() -> None:
    app()
