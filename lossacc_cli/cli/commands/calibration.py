"""`lossacc calibration`: one epoch's reliability, ECE variants and temperature."""

from __future__ import annotations

from lossacc_cli.cli.common import cli_errors
from lossacc_cli.cli.options import EpochOpt, Format, Shared, shared_options


@shared_options()
def calibration(opts: Shared, epoch: EpochOpt = "last") -> None:
    """Reliability table and diagram, ECE variants, temperature T* and the calibration/refinement split.

    Example: lossacc calibration --epoch best preds/
    """
    from lossacc_cli.analysis.calibration import calibration_report
    from lossacc_cli.cli.loading import load
    from lossacc_cli.cli.respond import respond
    from lossacc_cli.render.bodies import calibration_json

    with cli_errors(opts.debug):
        run = load(opts, progress=opts.fmt is Format.table, epochs=(epoch,))
        rep = calibration_report(run, run.resolve_epoch(epoch, option="--epoch"))

        def view(plain: bool):
            from lossacc_cli.render.calibration import calibration_renderable

            return calibration_renderable(rep, plain=plain)

        respond("calibration", opts.fmt, opts.output, lambda: calibration_json(rep), view,
                opts.color)
