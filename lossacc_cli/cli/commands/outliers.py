"""`lossacc outliers`: one epoch's per-sample loss distribution and its outlying samples."""

from __future__ import annotations

from lossacc_cli.cli.common import cli_errors
from lossacc_cli.cli.options import EpochOpt, Format, Shared, shared_options


@shared_options(top=True)
def outliers(opts: Shared, epoch: EpochOpt = "last") -> None:
    """The per-sample loss distribution at one epoch and the outlying samples.

    Example: lossacc outliers --epoch 50 preds/
    """
    from lossacc_cli.analysis.outliers import outlier_report
    from lossacc_cli.cli.loading import load
    from lossacc_cli.cli.respond import respond
    from lossacc_cli.render.bodies import outliers_json

    with cli_errors(opts.debug):
        run = load(opts, progress=opts.fmt is Format.table, epochs=(epoch,))
        rep = outlier_report(run, run.resolve_epoch(epoch, option="--epoch"), top=opts.top)

        def view(plain: bool):
            from lossacc_cli.render.outliers import outliers_renderable

            return outliers_renderable(rep, run.class_names, plain=plain)

        respond("outliers", opts.fmt, opts.output, lambda: outliers_json(rep), view, opts.color)
