"""Per-sample quantities at the fitted temperature, from the power sums of the last exact pass.

The temperature fit (:func:`~lossacc_cli.metrics.stream.temperature_passes`) ends with one exact
pass over the scores at some beta_l = 1/T close to beta* = 1/T*. That pass leaves, for every row,
the power sums ``s_j = sum_{k != top} w_k d_k^j`` with ``d = z - max z`` and ``w = exp(beta_l d)``.
They are the row's loss at beta_l and its first three derivatives in beta, so each row's loss at
beta* (and at any beta near it) follows by a third-order expansion, with no further pass:

    l_i(beta) = f_i + D g_i + D^2 h_i / 2 + D^3 t_i / 6,    D = beta - beta_l

The mean of these rows is exactly the fit's own expansion of the mean loss, so the per-sample
recalibrated losses average to the epoch's L(T*). The expansion is only used within 1% of beta_l
(the fit stops within 0.3%); further away the caller makes one more exact pass.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from lossacc_cli.metrics.temperature_search import MOMENT_BLOCK_ROWS, T_MAX, T_MIN

TAYLOR_MAX_STEP = 0.01
"""The expansion is used up to |beta* - beta_l| <= 0.01 beta* (error ~ (0.01 beta d)^4 / 24)."""

CROSSFIT_MIN_SAMPLES = 200
"""A cross-fitted recalibrated loss needs at least this many samples (100 per half)."""

CROSSFIT_MAX_STEP = 0.25
"""... and each half's own beta within 25% of beta_l, where the expansion is still accurate."""

CROSSFIT_SEED = 20260
"""The halves are a fixed pseudo-random split of the rows (the same for every run of lossacc)."""


@dataclass(frozen=True, eq=False)
class Recalibrated:
    """An epoch's scores after dividing them by T* (per sample, shape (N,)).

    Attributes
    ----------
    loss : float64
        ``-ln softmax(z / T*)[label]`` in nats, >= 0 (higher is worse); averages to L(T*).
    confidence : float64
        ``max_k softmax(z / T*)_k`` in [1/K, 1].
    crossfit_loss : float
        Mean loss of each half of the samples at the temperature fitted on the other half
        (nats; NaN below :data:`CROSSFIT_MIN_SAMPLES` samples): L(T*) without choosing T* on
        the samples it is measured on.
    """

    loss: np.ndarray
    confidence: np.ndarray
    crossfit_loss: float


def _expand(terms, step: float, rows: np.ndarray | None = None) -> np.ndarray:
    """``max(0, f + D (g + D (h / 2 + D t / 6)))`` per row (of ``rows`` only, when given), a
    cache-sized block at a time: no full-length temporaries (the same values as the whole-array
    expression, which is elementwise)."""
    f, g, h, t = terms
    n = f.shape[0] if rows is None else rows.shape[0]
    out = np.empty(n)
    for start in range(0, n, MOMENT_BLOCK_ROWS):
        at = slice(start, start + MOMENT_BLOCK_ROWS)
        if rows is None:
            fb, gb, hb, tb = f[at], g[at], h[at], t[at]
        else:
            fb, gb, hb, tb = (x[rows[at]] for x in terms)
        np.maximum(fb + step * (gb + step * (0.5 * hb + step * tb / 6.0)), 0.0, out=out[at])
    return out


def recalibrate(terms, beta_l: float, beta_star: float, d_true: np.ndarray) -> Recalibrated:
    """Per-sample loss and confidence at ``beta_star`` (within :data:`TAYLOR_MAX_STEP` of
    ``beta_l``), and the cross-fitted mean loss, from ``terms``: the rows'
    :func:`~lossacc_cli.metrics.temperature_search.row_terms` at ``beta_l`` (the loss and its
    three derivatives in beta); ``d_true`` = z[label] - max z."""
    loss = _expand(terms, beta_star - beta_l)
    # ln S0(beta*) = loss + beta* d_true >= 0: the top class keeps probability 1 / S0
    log_s0 = np.maximum(loss + beta_star * d_true, 0.0)
    return Recalibrated(loss=loss, confidence=np.exp(-log_s0),
                        crossfit_loss=_crossfit(terms, beta_l))


def _half_step(g: float, h: float, t: float) -> float:
    """The root nearest 0 of g + D h + D^2 t / 2 (the cubic model's stationary point)."""
    disc = h * h - 2.0 * t * g
    if h <= 0:
        return float("nan")
    if disc < 0:
        return -g / h
    return float(-2.0 * g / (h + np.sqrt(disc)))


@functools.lru_cache(maxsize=8)
def _halves(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows of each half (ascending), the split drawn once per number of rows: every epoch
    of a run usually has the same N, and drawing it cost a fifth of the cross-fit."""
    first = np.random.default_rng(CROSSFIT_SEED).random(n) < 0.5
    halves = (np.flatnonzero(first), np.flatnonzero(~first))
    for rows in halves:
        rows.flags.writeable = False
    return halves


def _crossfit(terms, beta_l: float) -> float:
    f, g, h, t = terms
    n = f.shape[0]
    if n < CROSSFIT_MIN_SAMPLES:
        return float("nan")
    halves = _halves(n)
    total = 0.0
    for fit_on, measure_on in (halves, halves[::-1]):
        step = _half_step(float(g[fit_on].mean()), float(h[fit_on].mean()), float(t[fit_on].mean()))
        beta = min(max(beta_l + step, 1.0 / T_MAX), 1.0 / T_MIN) if np.isfinite(step) else float("nan")
        if not np.isfinite(beta) or abs(beta - beta_l) > CROSSFIT_MAX_STEP * beta_l:
            return float("nan")
        total += float(_expand(terms, beta - beta_l, measure_on).sum())
    return total / n


def as_given(loss: np.ndarray, confidence: np.ndarray) -> Recalibrated:
    """The scores as they are (T = 1 for logits; for probabilities, without renormalising)."""
    crossfit = float(loss.mean()) if loss.shape[0] >= CROSSFIT_MIN_SAMPLES else float("nan")
    return Recalibrated(loss=loss, confidence=confidence, crossfit_loss=crossfit)
