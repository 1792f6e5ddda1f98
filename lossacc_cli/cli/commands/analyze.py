"""`lossacc analyze`: the whole diagnosis of a run."""

from __future__ import annotations

from typing import Annotated

import typer

from lossacc_cli.cli.common import cli_errors
from lossacc_cli.cli.options import Format, FromOpt, Shared, ToOpt, shared_options

BriefOpt = Annotated[bool, typer.Option("--brief", help="Only the headline, the findings and the checkpoint.")]
WatchOpt = Annotated[bool, typer.Option(
    "--watch", help="Analyse again whenever a new epoch arrives (Ctrl-C to stop); only new epochs are read.")]
IntervalOpt = Annotated[float, typer.Option(
    "--interval", help="With --watch: seconds between looks at the run's folder.")]


@shared_options(top=True)
def analyze(opts: Shared, from_epoch: FromOpt = None, to_epoch: ToOpt = None, brief: BriefOpt = False,
            watch: WatchOpt = False, interval: IntervalOpt = 5.0) -> None:
    """Why the loss rises: the headline, how sure we are, the causes with their evidence, the
    checkpoint to keep; then the curves, where the rise sits and the per-epoch table.

    Compares the lowest-loss epoch with the last by default (--from/--to to choose).
    Example: lossacc analyze preds/ --format json --output report.json
    Watching a run as it trains: lossacc analyze preds/ --watch --interval 10
    """
    from lossacc_cli.cli.loading import load
    from lossacc_cli.cli.respond import respond
    from lossacc_cli.report import analyze_run

    with cli_errors(opts.debug):
        if watch:
            from lossacc_cli.cli.common import fail
            from lossacc_cli.cli.watch import follow

            if not interval > 0 or interval != interval:
                raise fail(f"--interval must be more than 0 seconds, not {interval:g}")
            if opts.output:
                raise fail("--watch prints to stdout; --output cannot be used with it")
            follow(opts, lambda run: analyze_run(run, from_epoch=from_epoch, to_epoch=to_epoch),
                   interval=interval)
            return
        run = load(opts, progress=opts.fmt is Format.table)
        report = analyze_run(run, from_epoch=from_epoch, to_epoch=to_epoch)

        def view(plain: bool):
            from lossacc_cli.render.analyze import render

            return render(report, top=opts.top, plain=plain, brief=brief)

        respond("analyze", opts.fmt, opts.output, lambda: report.json_body(top=opts.top), view,
                opts.color)
