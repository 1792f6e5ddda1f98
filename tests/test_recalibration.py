"""Per-sample losses and confidences at T* (metrics.recalibration) against plain NumPy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lossacc_cli.metrics.recalibration import CROSSFIT_SEED
from lossacc_cli.metrics.stream import reduce_epoch_data
from tests.helpers import epoch


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _mean_loss(z, y, t):
    return float(-_log_softmax(z / t)[np.arange(len(y)), y].mean())


def _golden_temperature(z, y):
    """argmin over T of the mean loss: log grid, then golden section on log T (independent of
    the package's Halley iteration)."""
    grid = np.exp(np.linspace(np.log(0.01), np.log(100.0), 401))
    i = int(np.argmin([_mean_loss(z, y, t) for t in grid]))
    lo, hi = np.log(grid[max(i - 1, 0)]), np.log(grid[min(i + 1, len(grid) - 1)])
    r = (math.sqrt(5) - 1) / 2
    for _ in range(80):
        a, b = hi - r * (hi - lo), lo + r * (hi - lo)
        if _mean_loss(z, y, math.exp(a)) <= _mean_loss(z, y, math.exp(b)):
            hi = b
        else:
            lo = a
    return math.exp((lo + hi) / 2)


def test_hand_computed_two_classes():
    # logits [2, 0] with label 1 and [0, 1] with label 1; at T the losses are softplus(2/T) and
    # softplus(-1/T). Whatever T* is, each row must equal that formula at the reported T*.
    z = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    y = np.array([1, 1, 0])
    stats, summary = reduce_epoch_data(epoch(z, y))
    t = summary.temperature
    expected = [math.log1p(math.exp(2 / t)), math.log1p(math.exp(-1 / t)), math.log1p(math.exp(-3 / t))]
    assert stats.recal_loss == pytest.approx(expected, rel=1e-12)
    # the top class keeps the top: confidence = 1 / (1 + e^{-|gap| / T})
    assert stats.recal_confidence == pytest.approx([1 / (1 + math.exp(-g / t)) for g in (2, 1, 3)], rel=1e-12)
    assert summary.recalibrated_loss == pytest.approx(np.mean(expected), rel=1e-12)


@pytest.mark.parametrize("kind, dtype", [("logits", np.float64), ("logits", np.float32),
                                         ("probs", np.float64), ("probs", np.float16), ("logit", np.float64)])
def test_rows_equal_numpy_at_the_fitted_temperature(kind, dtype):
    rng = np.random.default_rng(3)
    n, k = 1200, 6
    z = rng.normal(size=(n, k)) * 3
    p = np.exp(_log_softmax(z / 1.7))  # labels drawn from a softer model: T* is about 1.7
    y = (p.cumsum(1) > rng.random((n, 1))).argmax(1)
    if kind == "probs":
        scores = np.exp(_log_softmax(z)).astype(dtype)
        zz = np.log(np.maximum(scores.astype(np.float64), np.finfo(float).eps))
    elif kind == "logit":
        scores = z[:, 0]
        y = (rng.random(n) < 1 / (1 + np.exp(-scores / 1.7))).astype(np.int64)
        zz = np.column_stack([np.zeros(n), scores])
    else:
        scores = z.astype(dtype)
        zz = scores.astype(np.float64)
    stats, summary = reduce_epoch_data(epoch(scores, y, kind=kind))
    t = summary.temperature
    assert 1.3 < t < 2.3
    ref = -_log_softmax(zz / t)[np.arange(n), y]
    tol = 1e-12 if dtype == np.float64 else 1e-6  # float32 arithmetic for float16/32 scores
    np.testing.assert_allclose(stats.recal_loss, ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(stats.recal_confidence, np.exp(_log_softmax(zz / t)).max(1), rtol=tol, atol=tol)
    assert summary.recalibrated_loss == pytest.approx(ref.mean(), rel=tol)
    assert summary.recalibrated_loss <= summary.loss
    # T* against an independent search
    assert t == pytest.approx(_golden_temperature(zz, y), rel=1e-5)


def test_cross_fitted_loss_equals_an_exact_cross_fit():
    rng = np.random.default_rng(11)
    n, k = 900, 5
    z = rng.normal(size=(n, k)) * 4
    p = np.exp(_log_softmax(z / 2.0))
    y = (p.cumsum(1) > rng.random((n, 1))).argmax(1)
    _, summary = reduce_epoch_data(epoch(z, y))
    first = np.random.default_rng(CROSSFIT_SEED).random(n) < 0.5
    total = 0.0
    for fit_on, measure_on in ((first, ~first), (~first, first)):
        t = _golden_temperature(z[fit_on], y[fit_on])
        total += _mean_loss(z[measure_on], y[measure_on], t) * measure_on.sum()
    assert summary.recalibrated_loss_crossfit == pytest.approx(total / n, rel=1e-6)
    # measured on samples it was not fitted on, it cannot beat the in-sample optimum
    assert summary.recalibrated_loss_crossfit >= summary.recalibrated_loss


def test_cross_fit_needs_enough_samples():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(150, 3))
    _, summary = reduce_epoch_data(epoch(z, rng.integers(0, 3, 150)))
    assert math.isnan(summary.recalibrated_loss_crossfit)


def test_probabilities_whose_fit_is_worse_than_as_given_keep_the_given_loss():
    # rows summing to 1.0009 (within the reader's tolerance): any temperature renormalises them,
    # which costs ln(1.0009) per sample; a calibrated model gains less than that by rescaling
    # (about 1/N: 5e-5 nats here)
    rng = np.random.default_rng(5)
    z = rng.normal(size=(20000, 3))
    p = np.exp(_log_softmax(z))
    y = (p.cumsum(1) > rng.random((20000, 1))).argmax(1)
    stats, summary = reduce_epoch_data(epoch(p * 1.0009, y, kind="probs"))
    assert summary.recalibrated_loss == pytest.approx(summary.loss, rel=1e-12)
    np.testing.assert_array_equal(stats.recal_loss, stats.loss)
    # and the advice is to use the scores as they are, not a temperature that does worse
    assert summary.temperature == 1.0 and stats.recal_as_given
