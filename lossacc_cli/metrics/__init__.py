"""Pure NumPy metrics: arrays in, small frozen dataclasses out. Nothing here prints or exits."""

from lossacc_cli.metrics.calibration import (
    ReliabilityTable,
    classwise_calibration_error,
    expected_calibration_error,
    reliability_table,
)
from lossacc_cli.metrics.per_sample import SampleStats, sample_stats
from lossacc_cli.metrics.summary import EpochSummary, chance_baseline, class_prior, summarize_epoch
from lossacc_cli.metrics.temperature import TemperatureFit, fit_temperature

__all__ = [
    "EpochSummary",
    "ReliabilityTable",
    "SampleStats",
    "TemperatureFit",
    "chance_baseline",
    "class_prior",
    "classwise_calibration_error",
    "expected_calibration_error",
    "fit_temperature",
    "reliability_table",
    "sample_stats",
    "summarize_epoch",
]
