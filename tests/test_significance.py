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


# --- fewer than 6 epochs: the interval from the samples, or none --------------------------------

def _run_of(probs_by_epoch: list[np.ndarray], labels: np.ndarray):
    from lossacc_cli.analysis.run import build_run
    from tests.helpers import epoch

    ids = np.array([f"s{i}" for i in range(labels.shape[0])], dtype=object)
    return build_run("run", [epoch(p, labels, kind="probs", epoch_no=e + 1, ids=ids)
                             for e, p in enumerate(probs_by_epoch)])


def _binary(p_label: np.ndarray) -> np.ndarray:
    return np.column_stack([p_label, 1 - p_label])  # every label is 0


def test_three_epochs_take_the_interval_from_the_samples():
    from lossacc_cli.analysis.rise import decompose
    from lossacc_cli.analysis.significance import rise_significance

    rng = np.random.default_rng(5)
    n = 400
    labels = np.zeros(n, dtype=np.int64)
    p1 = rng.uniform(0.6, 0.95, n)
    p3 = np.clip(p1 - rng.uniform(0.0, 0.2, n), 0.51, None)  # a broad rise, every sample correct
    run = _run_of([_binary(p1), _binary(0.5 * (p1 + p3)), _binary(p3)], labels)
    rise = decompose(run, 1, 3)
    sig = rise_significance(run, rise, picked=False)
    # by hand: the paired differences of -log p, their mean and standard error
    d = -np.log(p3) + np.log(p1)
    se = d.std(ddof=1) / np.sqrt(n)
    assert sig.basis == "samples" and sig.assessable and sig.significant is True
    assert np.isnan(sig.jitter)
    assert sig.rise == pytest.approx(d.mean(), rel=1e-6)
    assert (sig.samples_low, sig.samples_high) == pytest.approx((d.mean() - 1.96 * se, d.mean() + 1.96 * se),
                                                                rel=1e-3)
    # the bootstrap of the two means (no pick) is the same normal interval up to its draws
    assert (sig.high - sig.low) / 2 == pytest.approx(1.96 * se, rel=0.06)


def test_three_epochs_with_a_rise_inside_sampling_noise_are_not_significant():
    from lossacc_cli.analysis.rise import decompose
    from lossacc_cli.analysis.significance import rise_significance

    rng = np.random.default_rng(6)
    n = 400
    p1 = rng.uniform(0.6, 0.9, n)
    # each loss moves by 0.05 nats, 205 up and 195 down: a rise of 0.05 * 10 / 400 = 0.00125 nats
    # against a standard error of 0.05 / sqrt(400) = 0.0025
    step = rng.permutation(np.r_[np.full(205, 0.05), np.full(195, -0.05)])
    p3 = p1 * np.exp(-step)
    run = _run_of([_binary(p1), _binary(p1), _binary(p3)], np.zeros(n, dtype=np.int64))
    sig = rise_significance(run, decompose(run, 1, 3), picked=False)
    assert sig.rise == pytest.approx(0.00125, rel=1e-3)
    assert sig.basis == "samples" and sig.significant is False and sig.low < 0 < sig.high


def test_a_rise_carried_by_one_sample_in_three_epochs_is_not_assessable():
    from lossacc_cli.analysis.rise import decompose
    from lossacc_cli.analysis.significance import rise_significance

    n = 50
    p1 = np.full(n, 0.9)
    p3 = p1.copy()
    p3[7] = 1e-4  # one sample turns confidently wrong; the others do not move
    run = _run_of([_binary(p1), _binary(p1), _binary(p3)], np.zeros(n, dtype=np.int64))
    sig = rise_significance(run, decompose(run, 1, 3), picked=False)
    assert sig.few_carriers and not sig.assessable and sig.basis == "none"
    assert sig.significant is None
