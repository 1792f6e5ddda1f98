"""Label quality until the label-quality score lands: today's suspect rule, no evidence test."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lossacc_cli.analysis.dynamics import suspect_mask, training_dynamics
from lossacc_cli.analysis.run import Run


@dataclass(frozen=True, eq=False)
class LabelQuality:
    score: np.ndarray
    likely_class: np.ndarray
    flagged: np.ndarray
    noise: bool
    method: str
    evidence: dict = field(default_factory=dict)


def label_quality(run: Run) -> LabelQuality:
    dyn = training_dynamics(run)
    flagged = suspect_mask(dyn)
    return LabelQuality(score=dyn.confidence, likely_class=dyn.mode_class, flagged=flagged, noise=False,
                        method="predicted as one other class, confidently, in most epochs")
