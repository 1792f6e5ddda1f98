"""`lossacc compare`: who made the mean loss change between two epochs."""

from __future__ import annotations

from lossacc_cli.cli.common import cli_errors
from lossacc_cli.cli.options import Format, FromOpt, Shared, ToOpt, shared_options


@shared_options(top=True)
def compare(opts: Shared, from_epoch: FromOpt = None, to_epoch: ToOpt = None) -> None:
    """Who made the mean loss change between two epochs: its calibration and refinement parts,
    by outcome group, by class (beside each class's share of the samples) and by sample.

    Default: from the lowest-loss epoch to the last. Example: lossacc compare --from 12 --to last preds/
    """
    from lossacc_cli.analysis.compare import compare_epochs
    from lossacc_cli.cli.loading import load
    from lossacc_cli.cli.respond import respond
    from lossacc_cli.report_dict import rise_dict

    with cli_errors(opts.debug):
        shown = (from_epoch or "best", to_epoch or "last")
        run = load(opts, progress=opts.fmt is Format.table, epochs=shown)
        a = run.resolve_epoch(shown[0], option="--from")
        b = run.resolve_epoch(shown[1], option="--to")
        both = compare_epochs(run, a, b)

        def view(plain: bool):
            from rich.console import Group

            from lossacc_cli.render.rise import rise_lines, rise_section

            return Group(rise_lines(both.rise, None, picked=False),
                         rise_section(run, both, top=opts.top, plain=plain))

        respond("compare", opts.fmt, opts.output, lambda: rise_dict(run, both, opts.top), view,
                opts.color)
