"""What the writer raises: ``ValueError`` subclasses, so a training script can catch them as such."""

from __future__ import annotations

from lossacc_cli.errors import LossaccError


class PredictionError(LossaccError, ValueError):
    """Predictions that cannot be saved as given (shapes, dtypes, repeated ids, misuse)."""


class ValidationSetChanged(PredictionError):
    """An epoch's ids or labels differ from those of the epochs already in the folder.

    Per-sample comparisons across epochs are only meaningful on one fixed evaluation set.
    """
