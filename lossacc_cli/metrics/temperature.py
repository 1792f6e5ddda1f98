"""Temperature scaling: the single T > 0 that minimises the mean cross-entropy of softmax(z / T)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

T_MIN, T_MAX = 1e-2, 1e2
"""T* is searched in [0.01, 100]; a fit at a bound is reported as such (e.g. all samples correct
with positive margins: the loss keeps falling as T -> 0)."""

_XTOL = 1e-12


@dataclass(frozen=True)
class TemperatureFit:
    """Result of the fit.

    Attributes
    ----------
    temperature : float
        T* in [T_MIN, T_MAX]; > 1 means the model was overconfident, < 1 underconfident.
    loss : float
        Mean loss at T = 1 (nats).
    recalibrated_loss : float
        Mean loss at T* (nats), <= ``loss``: the refinement part. ``loss - recalibrated_loss`` is
        the calibration part.
    at_bound : bool
        True when the optimum lies at or beyond a search bound.
    """

    temperature: float
    loss: float
    recalibrated_loss: float
    at_bound: bool


def _moments(shifted_blocks, beta: float):
    """Mean loss f(beta) and its first two derivatives in beta = 1/T, over all rows.

    With d = z - max(z) per row, w = exp(beta d): f = mean(ln sum w - beta d_y),
    f' = mean(E_w[d] - d_y), f'' = mean(Var_w[d]) >= 0, so f is convex in beta.
    """
    f = g = h = 0.0
    n = 0
    for d, d_true in shifted_blocks():
        w = np.exp(beta * d)
        s0 = w.sum(axis=1)
        s1 = (w * d).sum(axis=1)
        s2 = (w * d * d).sum(axis=1)
        mean_d = s1 / s0
        f += float(np.sum(np.log(s0) - beta * d_true))
        g += float(np.sum(mean_d - d_true))
        h += float(np.sum(np.maximum(s2 / s0 - mean_d * mean_d, 0.0)))
        n += d.shape[0]
    return f / n, g / n, h / n


def _block_source(labels: np.ndarray, logits: np.ndarray):
    n, k = logits.shape
    step = max(1, (1 << 16) // max(1, k))

    def blocks():
        for start in range(0, n, step):
            z = np.asarray(logits[start : start + step], dtype=np.float64)
            d = z - z.max(axis=1, keepdims=True)
            yield d, d[np.arange(d.shape[0]), labels[start : start + step]]

    return blocks


def fit_temperature(labels: np.ndarray, logits: np.ndarray) -> TemperatureFit:
    """Fit T* = argmin_T mean_i -ln softmax(z_i / T)[y_i].

    Parameters
    ----------
    labels : ndarray of int, shape (N,)
    logits : ndarray of float, shape (N, K)
        For probabilities pass ``ln(max(p, eps))``.

    Notes
    -----
    The loss is convex in beta = 1/T, so the root of f'(beta) is found by Newton's method safeguarded
    by bisection on a bracket in [1/T_MAX, 1/T_MIN]; each step is one pass over the scores. It
    converges to |delta beta| < 1e-12 * beta in ~6-10 passes.
    """
    blocks = _block_source(labels, logits)
    loss_at_one, _, _ = _moments(blocks, 1.0)
    lo, hi = 1.0 / T_MAX, 1.0 / T_MIN
    f_lo, g_lo, _ = _moments(blocks, lo)
    f_hi, g_hi, _ = _moments(blocks, hi)
    if g_lo >= 0:  # loss increasing everywhere: the flattest allowed softmax is best
        return TemperatureFit(T_MAX, loss_at_one, float(min(f_lo, loss_at_one)), True)
    if g_hi <= 0:  # loss decreasing everywhere: the sharpest allowed softmax is best
        return TemperatureFit(T_MIN, loss_at_one, float(min(f_hi, loss_at_one)), True)
    beta = 1.0
    f, g, h = _moments(blocks, beta)
    for _ in range(100):
        if g > 0:
            hi = beta
        else:
            lo = beta
        step = g / h if h > 0 else np.inf
        candidate = beta - step
        if not (lo < candidate < hi):
            candidate = np.sqrt(lo * hi) if hi / lo > 4 else 0.5 * (lo + hi)
        converged = abs(candidate - beta) <= _XTOL * beta
        beta = candidate
        f, g, h = _moments(blocks, beta)
        if converged or (hi - lo) <= _XTOL * beta:
            break
    return TemperatureFit(float(1.0 / beta), loss_at_one, float(min(f, loss_at_one)), False)
