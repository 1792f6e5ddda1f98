"""`lossacc compare`: who made the mean loss change between two epochs."""

from __future__ import annotations

from lossacc_cli.analysis.compare import compare_epochs
from lossacc_cli.cli.common import cli_errors
from lossacc_cli.cli.loading import load
from lossacc_cli.cli.options import Format, FromOpt, Shared, ToOpt, shared_options
from lossacc_cli.cli.respond import respond
from lossacc_cli.render.attribution import compare_renderable, comparison_json


@shared_options(top=True)
def compare(opts: Shared, from_epoch: FromOpt = None, to_epoch: ToOpt = None) -> None:
    """Who made the mean loss change between two epochs: outcome groups, samples, classes.

    Default: from the lowest-loss epoch to the last. Example: lossacc compare --from 12 --to last preds/
    """
    with cli_errors(opts.debug):
        run = load(opts, progress=opts.fmt is Format.table)
        a = run.resolve_epoch(from_epoch or "best", option="--from")
        b = run.resolve_epoch(to_epoch or "last", option="--to")
        c = compare_epochs(run, a, b, top=opts.top)
        respond("compare", opts.fmt, opts.output, lambda: comparison_json(c),
                lambda plain: compare_renderable(c, run.class_names, top=opts.top, plain=plain))
