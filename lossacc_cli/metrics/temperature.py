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


# --- the same fit from a few exact passes (streaming) ------------------------------------------

HALLEY_TOL = 1e-4
"""Stop once the Halley correction is below this fraction of beta: Halley converges cubically, so
the accepted point is then within ~1e-12 (relative) of the root, like :func:`fit_temperature`."""


@dataclass(frozen=True)
class Moments:
    """Mean loss of softmax(beta * d) and its first three derivatives in beta, over all rows.

    ``f = mean(ln S0 - beta d_y)``, ``g = mean(E_w[d] - d_y)``, ``h = mean(Var_w[d]) >= 0`` and
    ``t = mean(third central moment of d under w)``, with ``w = exp(beta d)`` normalised per row.
    """

    f: float
    g: float
    h: float
    t: float


def row_moments(beta: float, s0, s1, s2, s3, d_true) -> Moments:
    """:class:`Moments` from per-row power sums ``s_j = sum_k w_k d_k^j`` (float64, shape (N,))."""
    m1 = s1 / s0
    m2 = s2 / s0
    m3 = s3 / s0
    var = np.maximum(m2 - m1 * m1, 0.0)
    third = m3 - 3.0 * m1 * m2 + 2.0 * m1 * m1 * m1
    return Moments(
        f=float(np.mean(np.log(s0) - beta * d_true)),
        g=float(np.mean(m1 - d_true)),
        h=float(np.mean(var)),
        t=float(np.mean(third)),
    )


def fit_temperature_from_moments(
    evaluate, at_one: Moments | None = None, *, true_is_top: bool = False
) -> TemperatureFit:
    """T* from exact passes: ``evaluate(beta) -> Moments`` makes one pass over the scores.

    The same minimiser as :func:`fit_temperature` (f is convex in beta = 1/T, searched in
    [1/T_MAX, 1/T_MIN]), found by Halley's method safeguarded by a bracket, so a good start needs
    two or three passes instead of ten to twenty. ``at_one`` (the moments at T = 1, which the
    streaming reduction gets for free) saves the first pass. The bounds are evaluated only when the
    iteration runs into them, which is when ``fit_temperature`` would report a fit at a bound.
    ``true_is_top`` says that every sample's true class has the top score: the loss then never
    rises with beta, so T* is the lower bound (one pass to get the loss there).
    The result agrees with :func:`fit_temperature` to ~1e-12 (relative) in T*.
    """
    lo_bound, hi_bound = 1.0 / T_MAX, 1.0 / T_MIN
    m = at_one if at_one is not None else evaluate(1.0)
    loss_at_one = m.f
    if true_is_top:
        if m.g == 0 and m.h == 0:  # every row flat: the loss is the same at every T
            edge = evaluate(lo_bound)
            return TemperatureFit(T_MAX, loss_at_one, float(min(edge.f, loss_at_one)), True)
        edge = evaluate(hi_bound)
        return TemperatureFit(T_MIN, loss_at_one, float(min(edge.f, loss_at_one)), True)
    beta, lo, hi = 1.0, lo_bound, hi_bound
    lo_known = hi_known = False  # has g been evaluated at the search bound itself?
    for _ in range(100):
        if m.g == 0:
            return TemperatureFit(float(1.0 / beta), loss_at_one, float(min(m.f, loss_at_one)), False)
        if m.g > 0:
            hi, hi_known = beta, True
        else:
            lo, lo_known = beta, True
        candidate = _next_beta(m, beta)
        step = candidate - beta
        if lo < candidate < hi and abs(step) <= HALLEY_TOL * beta:
            # Taylor to third order from the last exact pass: the error is O(step^4).
            f = m.f + step * (m.g + step * (0.5 * m.h + step * m.t / 6.0))
            return TemperatureFit(float(1.0 / candidate), loss_at_one, float(min(f, loss_at_one)), False)
        if candidate <= lo and not lo_known:  # heading below the search range: check the bound
            edge = evaluate(lo_bound)
            if edge.g >= 0:  # loss increasing everywhere: the flattest softmax is best
                return TemperatureFit(T_MAX, loss_at_one, float(min(edge.f, loss_at_one)), True)
            lo_known = True
        elif candidate >= hi and not hi_known:
            edge = evaluate(hi_bound)
            if edge.g <= 0:  # loss decreasing everywhere: the sharpest softmax is best
                return TemperatureFit(T_MIN, loss_at_one, float(min(edge.f, loss_at_one)), True)
            hi_known = True
        if not lo < candidate < hi:
            candidate = float(np.sqrt(lo * hi)) if hi / lo > 4 else 0.5 * (lo + hi)
        if (hi - lo) <= 1e-12 * beta:
            break
        beta = candidate
        m = evaluate(beta)
    return TemperatureFit(float(1.0 / beta), loss_at_one, float(min(m.f, loss_at_one)), False)


def _next_beta(m: Moments, beta: float) -> float:
    """Where Halley's method goes next. Heading down (g > 0, T* > 1: overconfidence, the usual
    case) the step is taken in u = ln beta, where f is closer to quadratic and fewer passes are
    needed; heading up, in beta itself."""
    if m.g <= 0:
        return beta + _halley_step(m)
    # F(u) = f(exp u): dF = beta g, d2F = beta^2 h + beta g, d3F = beta^3 t + 3 beta^2 h + beta g
    in_log = Moments(
        f=m.f,
        g=beta * m.g,
        h=beta * beta * m.h + beta * m.g,
        t=beta**3 * m.t + 3.0 * beta * beta * m.h + beta * m.g,
    )
    return float(beta * np.exp(max(_halley_step(in_log), -5.0)))


def _halley_step(m: Moments) -> float:
    """The correction toward the root of g (g' = h, g'' = t).

    Halley's when f looks quadratic near beta. When it looks like ``a + L beta + B exp(-c beta)``
    instead (q = t g / h^2 near 1: every sample nearly right, the loss still falling
    exponentially), Newton would crawl by 1/c per pass; the root of that model is used, or an
    infinite step toward the bound when the model has no root.
    """
    if not m.h > 0:
        return float("inf") if m.g < 0 else float("-inf")
    newton = -m.g / m.h
    q = m.t * m.g / (m.h * m.h)
    if q < 0.5:
        return newton / (1.0 - 0.5 * q)
    c = -m.t / m.h
    slope = m.g + m.h / c  # L, the linear part of the model
    ratio = slope * c / m.h
    if ratio > 0:
        return float(-np.log(ratio) / c)
    return float("inf") if newton > 0 else float("-inf")
