"""Is the rise real? The jitter estimate and the bootstrap of the pick-the-minimum procedure."""

from __future__ import annotations

import numpy as np
import pytest

from lossacc_cli.analysis.significance import curve_interval, epoch_jitter, pick_min_bootstrap


def test_jitter_of_white_noise_is_its_sd():
    rng = np.random.default_rng(0)
    estimates = [epoch_jitter(0.3 + 0.01 * rng.normal(size=200)) for _ in range(50)]
    assert np.mean(estimates) == pytest.approx(0.01, rel=0.05)
    # by hand: differences of [0, 1, 0, 0, 0, 0] are [1, -1, 0, 0, 0], [-2, 1, 0, 0], then the third
    # [3, -1, 0]: rms sqrt(10 / 3), over sqrt(20)
    assert epoch_jitter(np.array([0.0, 1, 0, 0, 0, 0])) == pytest.approx(np.sqrt(10 / 3 / 20))


def test_jitter_ignores_a_quadratic_trend():
    # a V around the minimum and a steady rise: third differences of a quadratic are 0
    t = np.arange(30.0)
    assert epoch_jitter(0.5 + 0.002 * (t - 10) ** 2) == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(epoch_jitter(np.array([1.0, 0.5, 0.4, 0.45, 0.5])))  # 5 epochs: too few


def test_jitter_is_measured_on_the_compared_stretch():
    # a noisy early descent and a smooth end: the stretch from the minimum on is smooth
    rng = np.random.default_rng(1)
    curve = np.concatenate([1.0 + 0.05 * rng.normal(size=20), 0.4 + 0.001 * np.arange(10.0) ** 2])
    assert epoch_jitter(curve, 20, 29) == pytest.approx(0.0, abs=1e-9)
    assert epoch_jitter(curve) > 0.01


def test_a_flat_noisy_plateau_is_rarely_called_a_rise():
    # the null: 30 epochs of noise around one level; "rise since the minimum" is always > 0, but the
    # interval, corrected for picking the minimum, should exclude 0 in about 2.5% of runs (one side);
    # curve_interval is what rise_significance runs on the population's curve
    rng = np.random.default_rng(2)
    hits = trials = 0
    for seed in range(400):
        curve = 0.3 + 0.01 * rng.normal(size=30)
        a = int(np.argmin(curve[:-1]))
        trials += 1
        _, _, _, low, _ = curve_interval(curve, a, 29, picked=True, seed=seed)
        hits += low > 0
    assert hits / trials <= 0.05


def test_a_real_trend_is_found():
    # the loss falls to epoch 10 and then rises by 0.004 per epoch with noise 0.003 (a rise of 25
    # noise units by the last epoch)
    rng = np.random.default_rng(3)
    t = np.arange(30.0)
    found = 0
    for _ in range(100):
        curve = 0.3 + np.where(t < 10, 0.02 * (10 - t), 0.004 * (t - 10)) + 0.003 * rng.normal(size=30)
        a = int(np.argmin(curve[:-1]))
        _, candidates, corrected, low, high = curve_interval(curve, a, 29, picked=True)
        found += low > 0
        assert low <= corrected <= high
        assert candidates[0] == a
    assert found >= 95


def test_a_given_from_epoch_is_not_picked():
    curve = 0.3 + 0.01 * np.random.default_rng(4).normal(size=30)
    _, candidates, *_ = curve_interval(curve, 5, 29, picked=False)
    assert candidates == [5]


def test_the_draws_are_seeded():
    means = np.array([0.30, 0.31, 0.305, 0.32])
    assert pick_min_bootstrap(means, jitter=0.01) == pick_min_bootstrap(means, jitter=0.01)


def test_sampling_noise_widens_the_interval():
    means = np.array([0.30, 0.33])
    cov = np.array([[1e-4, 0.9e-4], [0.9e-4, 1e-4]])  # paired: the difference has variance 2e-5
    _, low0, high0 = pick_min_bootstrap(means, jitter=0.001)
    _, low1, high1 = pick_min_bootstrap(means, jitter=0.001, cov=cov)
    assert high1 - low1 > high0 - low0
    # the difference's sd is sqrt(2e-6 + 2e-5) = 0.00469: the 95% half-width about 1.96 of that
    assert (high1 - low1) / 2 == pytest.approx(1.96 * np.sqrt(2e-6 + 2e-5), rel=0.1)
