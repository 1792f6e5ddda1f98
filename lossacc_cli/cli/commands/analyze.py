"""`lossacc analyze`: the whole diagnosis of a run."""

from __future__ import annotations

from lossacc_cli.analysis.compare import compare_epochs
from lossacc_cli.analysis.diagnosis import diagnose
from lossacc_cli.analysis.dynamics import suspected_label_errors, training_dynamics
from lossacc_cli.analysis.overview import overview
from lossacc_cli.cli.common import cli_errors
from lossacc_cli.cli.loading import load
from lossacc_cli.cli.options import Format, FromOpt, Shared, ToOpt, shared_options
from lossacc_cli.cli.respond import respond
from lossacc_cli.render.analyze import analyze_json, analyze_renderable
from lossacc_cli.render.attribution import comparison_json, suspects_json
from lossacc_cli.render.diagnosis import diagnosis_json


@shared_options(top=True)
def analyze(opts: Shared, from_epoch: FromOpt = None, to_epoch: ToOpt = None) -> None:
    """Per-epoch loss, accuracy and calibration, the epochs where loss rises while accuracy holds,
    and the samples and classes responsible for the rise (lowest-loss epoch -> last by default).

    Example: lossacc analyze preds/ --format json --output report.json
    """
    with cli_errors(opts.debug):
        run = load(opts, progress=opts.fmt is Format.table)
        ov = overview(run.summaries)
        a = run.resolve_epoch(from_epoch or ov.best_loss_epoch, option="--from")
        b = run.resolve_epoch(to_epoch or "last", option="--to")
        top = opts.top
        comparison = compare_epochs(run, a, b, top=top) if a != b and run.n_common(a, b) else None
        dynamics = training_dynamics(run)
        suspects = suspected_label_errors(run, dynamics)
        dx = diagnose(run, dynamics, a, b)

        def body() -> dict:
            return {
                **analyze_json(run, ov),
                "diagnosis": diagnosis_json(dx),
                "responsibility": comparison_json(comparison) if comparison else None,
                "suspected_label_errors": suspects_json(suspects, top),
            }

        respond("analyze", opts.fmt, opts.output, body,
                lambda plain: analyze_renderable(run, ov, dx, comparison, suspects, top=top, plain=plain))
