"""Temperature scaling: the single T > 0 that minimises the mean cross-entropy of softmax(z / T).

The search itself is :mod:`.temperature_search`; the passes over the scores are
:func:`~lossacc_cli.metrics.stream.temperature_passes`.
"""

from __future__ import annotations

import numpy as np

from lossacc_cli.metrics.stream import matrix_passes, temperature_passes
from lossacc_cli.metrics.temperature_search import (  # noqa: F401 - the temperature API in one place
    HALLEY_TOL,
    HALLEY_TOL_FLOAT32,
    T_MAX,
    T_MIN,
    Moments,
    TemperatureFit,
    fit_temperature_from_moments,
    row_moments,
)


def fit_temperature(labels: np.ndarray, logits: np.ndarray) -> TemperatureFit:
    """Fit T* = argmin_T mean_i -ln softmax(z_i / T)[y_i].

    Parameters
    ----------
    labels : ndarray of int, shape (N,)
    logits : ndarray of float, shape (N, K)
        For probabilities pass ``ln(max(p, eps))``.

    Notes
    -----
    The loss is convex in beta = 1/T; its minimiser in [1/T_MAX, 1/T_MIN] is found from exact
    passes over the scores (:func:`fit_temperature_from_moments`), the same fit ``lossacc`` runs
    while it streams an epoch.
    """
    return temperature_passes("logits", labels, matrix_passes(logits), dtype=logits.dtype)
