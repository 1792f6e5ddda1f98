"""The temperature search: T* = argmin_T mean_i -ln softmax(z_i / T)[y_i] from the loss and its derivatives in
beta = 1/T (:class:`Moments`), each evaluation one exact pass over the scores made by the caller
(:func:`~lossacc_cli.metrics.stream.temperature_passes`). No score layout is known here."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

T_MIN, T_MAX = 1e-2, 1e2
"""T* is searched in [0.01, 100]; a fit at a bound is reported as such (e.g. all samples correct
with positive margins: the loss keeps falling as T -> 0)."""

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


# --- the same fit from a few exact passes (streaming) ------------------------------------------

HALLEY_TOL = 1e-4
"""Stop once the Halley correction is below this fraction of beta: Halley converges cubically, so
the accepted point is then within ~1e-12 (relative) of the root."""

HALLEY_TOL_FLOAT32 = 3e-3
"""The same for moments from float32 arithmetic (float16/float32 scores), whose own rounding moves
T* by up to ~4e-7: a correction of 3e-3 leaves at most 3e-8 (relative, over 1,500 random runs),
and usually saves the last pass over the scores."""


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


def row_terms(beta: float, rest, s1, s2, s3, d_true) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each row's loss at ``beta`` and its first three derivatives in beta, from per-row power
    sums ``s_j = sum_k w_k d_k^j`` (float64, shape (N,)), where ``d = z - max z`` and
    ``w = exp(beta d)``; ``rest = s_0 - 1`` leaves out the top class's own term, so that
    ``ln s_0 = log1p(rest)`` keeps a near-certain row's loss."""
    # a cache-sized block at a time (the same values as whole-array expressions: elementwise)
    n = rest.shape[0]
    terms = tuple(np.empty(n) for _ in range(4))
    for start in range(0, n, MOMENT_BLOCK_ROWS):
        at = slice(start, start + MOMENT_BLOCK_ROWS)
        terms_into(beta, rest[at], s1[at], s2[at], s3[at], d_true[at], tuple(t[at] for t in terms))
    return terms


def terms_into(beta: float, rest, s1, s2, s3, d_true, out) -> None:
    """:func:`row_terms` of one block of rows, written into ``out`` (four float64 arrays of the
    block's length): what a pass over the scores computes for each block while its sums are in
    cache, so that no (4, N) array of sums is ever held."""
    f, g, var, third = out
    s0 = 1.0 + rest
    m1 = s1 / s0
    m2 = s2 / s0
    m3 = s3 / s0
    np.maximum(m2 - m1 * m1, 0.0, out=var)
    third[...] = m3 - 3.0 * m1 * m2 + 2.0 * m1 * m1 * m1
    np.subtract(np.log1p(rest), beta * d_true, out=f)
    np.subtract(m1, d_true, out=g)


def row_moments(beta: float, rest, s1, s2, s3, d_true) -> Moments:
    """:class:`Moments` from per-row power sums: the means of :func:`row_terms`."""
    return moments_of(row_terms(beta, rest, s1, s2, s3, d_true))


def moments_of(terms: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> Moments:
    """:class:`Moments`: the means over all rows of :func:`row_terms`' four terms."""
    f, g, var, third = terms
    return Moments(
        f=float(np.mean(f)),
        g=float(np.mean(g)),
        h=float(np.mean(var)),
        t=float(np.mean(third)),
    )


MOMENT_BLOCK_ROWS = 1 << 14
"""Rows of :func:`row_terms` computed at a time (their temporaries stay in cache)."""


def fit_temperature_from_moments(
    evaluate,
    at_one: Moments | None = None,
    *,
    true_is_top: bool = False,
    tol: float = HALLEY_TOL,
    exact_start: bool = True,
) -> TemperatureFit:
    """T* from exact passes: ``evaluate(beta) -> Moments`` makes one pass over the scores.

    f is convex in beta = 1/T, searched in [1/T_MAX, 1/T_MIN]; the minimiser is found by Halley's
    method safeguarded by a bracket, so a good start needs two or three passes (a safeguarded Newton
    iteration needs ten to twenty). ``at_one`` (the moments at T = 1, which the
    streaming reduction gets for free) saves the first pass. The bounds are evaluated only when the
    iteration runs into them, which is when the optimum lies at a bound.
    ``true_is_top`` says that every sample's true class has the top score: the loss then never
    rises with beta, so T* is the lower bound (one pass to get the loss there).
    The result agrees with a bisection-safeguarded Newton solve of f'(beta) = 0 (the tests'
    reference) to ~1e-12 (relative) in T*. With ``exact_start`` False (``at_one`` summed less
    accurately than the passes), T* is always taken from a pass made by ``evaluate``.
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
    trusted = exact_start or at_one is None  # may T* be taken from the moments in m?
    for _ in range(100):
        if m.g == 0:
            return TemperatureFit(float(1.0 / beta), loss_at_one, float(min(m.f, loss_at_one)), False)
        if m.g > 0:
            hi, hi_known = beta, True
        else:
            lo, lo_known = beta, True
        candidate = _next_beta(m, beta)
        step = candidate - beta
        if lo < candidate < hi and abs(step) <= tol * beta and trusted:
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
        trusted = True
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
