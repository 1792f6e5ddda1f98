"""Per-epoch summary: loss, accuracy, loss distribution, chance baseline, calibration, temperature.

The record and its parts are :mod:`.epoch_summary`; what needs an epoch's scores (by score kind) is
:mod:`.stream`. This module gathers them as one API.
"""

from __future__ import annotations

import numpy as np

from lossacc_cli.metrics.epoch_summary import (  # noqa: F401 - the summary API in one place
    TOP_SHARE_FRACTION,
    Baseline,
    EpochSummary,
    chance_baseline,
    class_prior,
    summary_from_parts,
    top_share,
    with_recalibration,
)
from lossacc_cli.metrics.stream import (  # noqa: F401
    classwise_ece,
    fit_epoch,
    fitted_summary,
    temperature_logits,
)
from lossacc_cli.metrics.vectors import SampleStats
from lossacc_cli.readers.model import EpochData


def summarize_epoch(
    data: EpochData, stats: SampleStats, *, prior: np.ndarray | None = None
) -> EpochSummary:
    """Summarise one epoch; ``prior`` defaults to the label frequencies of this epoch's samples.

    T* comes from the same exact moment-based fit the streaming path uses (``metrics.stream``), so
    the tests of this function cover what ``lossacc`` runs.
    """
    return fitted_summary(data, stats, prior=prior)[1]
