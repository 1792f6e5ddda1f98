"""The cross-fitted recalibrated loss: the halves drawn once per number of rows are the split drawn
every time (the fixed seed's draw), and the loss is the one computed from boolean masks."""

from __future__ import annotations

import numpy as np
import pytest

from lossacc_cli.metrics import recalibration as R
from lossacc_cli.metrics.temperature_search import row_terms


def _reference(terms, beta_l):
    # the cross-fit written out with the split drawn on every call, as boolean masks
    f, g, h, t = terms
    n = f.shape[0]
    first = np.random.default_rng(R.CROSSFIT_SEED).random(n) < 0.5
    total = 0.0
    for fit_on, measure_on in ((first, ~first), (~first, first)):
        step = R._half_step(float(g[fit_on].mean()), float(h[fit_on].mean()), float(t[fit_on].mean()))
        beta = min(max(beta_l + step, 1.0 / R.T_MAX), 1.0 / R.T_MIN)
        if not np.isfinite(beta) or abs(beta - beta_l) > R.CROSSFIT_MAX_STEP * beta_l:
            return float("nan")
        f_o, g_o, h_o, t_o = (x[measure_on] for x in terms)
        step = beta - beta_l  # the third-order expansion of each row's loss, written out
        total += float(np.maximum(f_o + step * (g_o + step * (0.5 * h_o + step * t_o / 6.0)), 0.0).sum())
    return total / n


@pytest.mark.parametrize("n", [200, 201, 1000, 9999])
def test_halves_are_the_seeded_split(n):
    first = np.random.default_rng(R.CROSSFIT_SEED).random(n) < 0.5
    a, b = R._halves(n)
    assert np.array_equal(a, np.flatnonzero(first)) and np.array_equal(b, np.flatnonzero(~first))
    assert R._halves(n) is R._halves(n)  # drawn once
    assert not a.flags.writeable


def _row_terms(z: np.ndarray, y: np.ndarray, beta: float) -> tuple:
    # each row's loss and derivatives from the power sums of one exact pass, written out
    # (float64, the top's own term left out)
    top = z.argmax(axis=1)
    rows = np.arange(z.shape[0])
    d = z - z[rows, top][:, None]
    w = np.exp(beta * d)
    w[rows, top] = 0.0
    s = [(w * d**j).sum(axis=1) for j in range(4)]
    return row_terms(beta, s[0], s[1], s[2], s[3], d[rows, y])


def _near_optimum(z: np.ndarray, y: np.ndarray) -> tuple[float, tuple]:
    # a few Newton steps on the mean loss in beta: the cross-fit is made near T*
    beta = 1.0
    for _ in range(6):
        f, g, h, t = _row_terms(z, y, beta)
        beta = float(np.clip(beta - g.mean() / h.mean(), 0.05, 20.0))
    return beta, _row_terms(z, y, beta)


@pytest.mark.parametrize("seed", range(6))
def test_crossfit_equals_the_boolean_mask_reference(seed):
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(200, 5000)), int(rng.integers(2, 12))
    y = rng.integers(0, k, n)
    z = rng.standard_normal((n, k)) * 2.0
    z[np.arange(n), y] += rng.gamma(2.0, 1.5, n)  # a classifier that is mostly right
    beta, terms = _near_optimum(z, y)
    expected = _reference(terms, beta)
    assert np.isfinite(expected)
    assert repr(R._crossfit(terms, beta)) == repr(expected)


def test_the_reference_is_not_trivially_nan():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((1000, 5))
    y = rng.integers(0, 5, 1000)
    z[np.arange(1000), y] += 2.0
    beta, terms = _near_optimum(z, y)
    assert np.isfinite(_reference(terms, beta))  # the comparison above is of numbers, not NaN
