"""One epoch's calibration report: reliability tables, ECE variants, temperature and the loss split."""

from __future__ import annotations

from dataclasses import dataclass

from lossacc_cli.analysis.run import Run
from lossacc_cli.metrics.calibration import N_BINS, ReliabilityTable
from lossacc_cli.metrics.smooth_ece import smooth_ece
from lossacc_cli.metrics.summary import EpochSummary


@dataclass(frozen=True, eq=False)
class CalibrationReport:
    """Calibration at one epoch. ECE values are in [0, 1] (lower is better); losses in nats.

    ``calibration_loss`` = L - L(T*) is the part of the loss that temperature scaling removes;
    ``refinement_loss`` = L(T*) is what remains. Both NaN for the compact per-sample form.
    """

    epoch: int
    summary: EpochSummary
    equal_width: ReliabilityTable
    equal_mass: ReliabilityTable
    smooth_ece: float
    smooth_ece_sigma: float
    calibration_loss: float
    refinement_loss: float


def calibration_report(run: Run, epoch: int, *, n_bins: int = N_BINS) -> CalibrationReport:
    r = run.record(epoch)
    s = r.stats
    smooth = smooth_ece(s.confidence, s.correct)
    equal_width, equal_mass = s.reliability(n_bins)
    return CalibrationReport(
        epoch=r.epoch,
        summary=r.summary,
        equal_width=equal_width,
        equal_mass=equal_mass,
        smooth_ece=smooth.value,
        smooth_ece_sigma=smooth.sigma,
        calibration_loss=r.summary.loss - r.summary.recalibrated_loss,
        refinement_loss=r.summary.recalibrated_loss,
    )
