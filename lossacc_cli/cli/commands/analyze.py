"""`lossacc analyze`: the whole diagnosis of a run."""

from __future__ import annotations

from typing import Annotated

import typer

from lossacc_cli.cli.common import cli_errors
from lossacc_cli.cli.options import Format, FromOpt, Shared, ToOpt, shared_options

BriefOpt = Annotated[bool, typer.Option("--brief", help="Only the headline, the findings and the checkpoint.")]


@shared_options(top=True)
def analyze(opts: Shared, from_epoch: FromOpt = None, to_epoch: ToOpt = None, brief: BriefOpt = False) -> None:
    """Why the loss rises: the headline, how sure we are, the causes with their evidence, the
    checkpoint to keep; then the curves, where the rise sits and the per-epoch table.

    Compares the lowest-loss epoch with the last by default (--from/--to to choose).
    Example: lossacc analyze preds/ --format json --output report.json
    """
    from lossacc_cli.cli.loading import load
    from lossacc_cli.cli.respond import respond
    from lossacc_cli.render.analyze import render
    from lossacc_cli.report import analyze_run

    with cli_errors(opts.debug):
        run = load(opts, progress=opts.fmt is Format.table)
        report = analyze_run(run, from_epoch=from_epoch, to_epoch=to_epoch)
        respond("analyze", opts.fmt, opts.output, lambda: report.json_body(top=opts.top),
                lambda plain: render(report, top=opts.top, plain=plain, brief=brief), opts.color)
