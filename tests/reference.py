"""Independent reference computations for the tests: straightforward NumPy, written separately from
the package (no shared helpers), deliberately naive (float64, whole matrices, explicit loops over bins).
"""

from __future__ import annotations

import numpy as np


F32_TOL = 1e-6
"""The arithmetic contract for float16/float32 scores, which lossacc reduces in float32 (sums over
rows in float64): each per-sample loss within 1e-6 * (1 + loss) nats of this float64 reference,
probabilities and calibration errors within 1e-6 (the scores themselves carry float32 rounding,
~6e-8 relative). float64 scores are reduced in float64 and held to ~1e-12."""


def tolerance(dtype) -> float:
    """Relative (and absolute) tolerance against the float64 reference for scores of ``dtype``."""
    return 1e-12 if np.dtype(dtype) == np.float64 else F32_TOL


def softmax64(logits):
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def ce_from_logits(labels, logits):
    p = softmax64(logits)
    # Not via log(p) (underflows to -inf): log-softmax written out.
    z = np.asarray(logits, dtype=np.float64)
    m = z.max(axis=1)
    lse = m + np.log(np.exp(z - m[:, None]).sum(axis=1))
    return lse - z[np.arange(len(labels)), labels], p


def ece_loop(conf, correct, n_bins=15):
    """Guo et al. binning with explicit edge comparisons: [lo, hi), last bin [lo, 1] and, for
    published files whose probabilities exceed 1 by rounding (IMDB: 1.00001), anything above."""
    conf = np.asarray(conf, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    worst = 0.0
    for b in range(n_bins):
        lo, hi = edges[b], edges[b + 1]
        inside = (conf >= lo) & (conf < hi) if b < n_bins - 1 else (conf >= lo)
        if inside.any():
            gap = abs(correct[inside].mean() - conf[inside].mean())
            total += inside.sum() / len(conf) * gap
            worst = max(worst, gap)
    return total, worst


def classwise_ece_loop(labels, probs, n_bins=15):
    probs = np.asarray(probs, dtype=np.float64)
    k = probs.shape[1]
    return float(np.mean([ece_loop(probs[:, c], labels == c, n_bins)[0] for c in range(k)]))


def temperature_grid(labels, logits, lo=0.01, hi=100.0, points=4001):
    """Brute-force T* on a log grid, refined twice around the best point."""
    z = np.asarray(logits, dtype=np.float64)

    def loss(t):
        return ce_from_logits(labels, z / t)[0].mean()

    grid = np.geomspace(lo, hi, points)
    for _ in range(3):
        values = np.array([loss(t) for t in grid])
        i = int(values.argmin())
        a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        grid = np.geomspace(a, b, 401)
    values = np.array([loss(t) for t in grid])
    i = int(values.argmin())
    return grid[i], values[i]


def temperature_newton(labels, logits, t_min=1e-2, t_max=1e2):
    """T* by a bisection-safeguarded Newton solve of f'(beta) = 0, beta = 1/T, on whole float64
    arrays (f = mean loss, convex in beta; f' = mean(E_w[d] - d_y), f'' = mean(Var_w[d])).
    Returns (T*, loss at T = 1, loss at T*, at_bound)."""
    z = np.asarray(logits, dtype=np.float64)
    d = z - z.max(axis=1, keepdims=True)
    d_true = d[np.arange(len(labels)), labels]

    def moments(beta):
        w = np.exp(beta * d)
        s0 = w.sum(axis=1)
        mean_d = (w * d).sum(axis=1) / s0
        var = np.maximum((w * d * d).sum(axis=1) / s0 - mean_d**2, 0.0)
        return np.mean(np.log(s0) - beta * d_true), np.mean(mean_d - d_true), np.mean(var)

    loss_at_one = moments(1.0)[0]
    lo, hi = 1.0 / t_max, 1.0 / t_min
    f_lo, g_lo, _ = moments(lo)
    f_hi, g_hi, _ = moments(hi)
    if g_lo >= 0:
        return t_max, loss_at_one, min(f_lo, loss_at_one), True
    if g_hi <= 0:
        return t_min, loss_at_one, min(f_hi, loss_at_one), True
    beta = 1.0
    f, g, h = moments(beta)
    for _ in range(200):
        if g > 0:
            hi = beta
        else:
            lo = beta
        candidate = beta - g / h if h > 0 else np.inf
        if not (lo < candidate < hi):
            candidate = np.sqrt(lo * hi) if hi / lo > 4 else 0.5 * (lo + hi)
        converged = abs(candidate - beta) <= 1e-13 * beta
        beta = candidate
        f, g, h = moments(beta)
        if converged or (hi - lo) <= 1e-13 * beta:
            break
    return 1.0 / beta, loss_at_one, min(f, loss_at_one), False
