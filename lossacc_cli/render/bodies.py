"""The JSON bodies of `outliers`, `calibration` and `check` (`analyze`'s is
:mod:`lossacc_cli.report_dict`): plain dicts for :mod:`.jsonout`, built without rich, which a JSON
report never imports."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the reports' modules are the commands' to import (analyze needs one of them)
    from lossacc_cli.analysis.calibration import CalibrationReport
    from lossacc_cli.analysis.check import CheckResult
    from lossacc_cli.analysis.outliers import OutlierReport


def outliers_json(rep: OutlierReport) -> dict:
    return {
        "epoch": rep.epoch,
        "n_samples": rep.n_samples,
        "loss": rep.loss,
        "quantiles": rep.quantiles,
        "top1pct_share": rep.top1pct_share,
        "top10_share": rep.top10_share,
        "histogram": list(rep.histogram),
        "n_outliers": rep.n_outliers,
        "outliers_loss_share": rep.outliers_loss_share,
        "loss_without_outliers": rep.loss_without,
        "outliers": list(rep.outliers),
    }


def _table_json(tab) -> list[dict]:
    return [
        {"lower": tab.lower[b], "upper": tab.upper[b], "count": tab.count[b], "confidence": tab.confidence[b],
         "accuracy": tab.accuracy[b], "gap": tab.gap[b]}
        for b in range(len(tab.count))
    ]


def calibration_json(rep: CalibrationReport) -> dict:
    s = rep.summary
    return {
        "epoch": rep.epoch,
        "n_samples": s.n_samples,
        "accuracy": s.accuracy,
        "mean_confidence": s.mean_confidence,
        "overconfidence_gap": s.overconfidence_gap,
        "ece_equal_width_15": s.ece,
        "ece_equal_mass_15": s.adaptive_ece,
        "mce_equal_width_15": s.mce,
        "classwise_ece_15": s.classwise_ece,
        "smooth_ece": rep.smooth_ece,
        "smooth_ece_sigma": rep.smooth_ece_sigma,
        "temperature": s.temperature,
        "temperature_at_bound": s.temperature_at_bound,
        "loss": s.loss,
        "calibration_loss": rep.calibration_loss,
        "refinement_loss": rep.refinement_loss,
        "reliability_equal_width": _table_json(rep.equal_width),
        "reliability_equal_mass": _table_json(rep.equal_mass),
    }


def check_json(res: CheckResult, warnings) -> dict:
    return {"path": res.path, "epoch": res.epoch, "passed": res.passed, "rules": list(res.rules),
            "warnings": list(warnings)}
