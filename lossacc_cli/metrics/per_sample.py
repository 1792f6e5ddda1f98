"""Per-sample quantities from one epoch's scores: loss, prediction, confidence, p[label], margin.

The vectors and the formulas that need no streaming are :mod:`.vectors`; logits go through the
streaming pass (:mod:`.stream`), which is also where the score kind is branched on
(:func:`sample_stats`).
"""

from __future__ import annotations

import numpy as np

from lossacc_cli.metrics.stream import reduce_rows, sample_stats  # noqa: F401 - the API in one place
from lossacc_cli.metrics.vectors import (  # noqa: F401
    MAX_PROB_LOSS,
    PROB_FLOOR,
    SampleStats,
    from_binary_logit,
    from_binary_prob,
    from_compact,
    from_probs,
)


def from_logits(labels: np.ndarray, logits: np.ndarray) -> SampleStats:
    """Per-sample statistics from an (N, K) logit matrix.

    Parameters
    ----------
    labels : ndarray of int, shape (N,)
    logits : ndarray of float16/32/64, shape (N, K)

    Notes
    -----
    ``loss_i = log1p(sum_{k != top} exp(z_ik - z_i,top)) - (z_i[y_i] - z_i,top)``: the row maximum
    subtracted first and its own term (1) kept apart, so a near-certain row keeps its tiny loss.
    The per-row work is in float32 for float16/float32 logits (float64 otherwise), the result in
    float64; this is the streaming pass (:mod:`~lossacc_cli.metrics.stream`) on the whole matrix.

    Examples
    --------
    >>> s = from_logits(np.array([0]), np.log(np.array([[0.9, 0.1]])))
    >>> round(float(s.loss[0]), 4)   # -ln 0.9
    0.1054
    """
    return reduce_rows("logits", labels, logits).sample_stats()
