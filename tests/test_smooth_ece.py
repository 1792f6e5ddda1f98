"""Smooth ECE against a direct numerical integration of its definition (Błasiok & Nakkiran 2023):

    smECE_s = ∫_0^1 | (1/N) Σ_i K_s(t, f_i) (f_i - y_i) | dt,
    K_s(t, f) = Σ_k φ_s(t - f - 2k) + φ_s(t + f - 2k)   (Gaussian reflected at 0 and 1),

evaluated here with every sample's kernel written out on a fine grid (no binning, no FFT).
"""

from __future__ import annotations

import numpy as np
import pytest

from lossacc_cli.metrics.smooth_ece import smooth_ece, smooth_ece_at


def _direct(f, y, s, points=20001):
    t = np.linspace(0, 1, points)
    kernel = np.zeros((points, len(f)))
    for k in range(-4, 5):
        kernel += np.exp(-0.5 * ((t[:, None] - f[None, :] - 2 * k) / s) ** 2)
        kernel += np.exp(-0.5 * ((t[:, None] + f[None, :] - 2 * k) / s) ** 2)
    kernel /= np.sqrt(2 * np.pi) * s
    r = np.abs(kernel @ (f - y)) / len(f)
    return float(np.sum((r[1:] + r[:-1]) / 2) * (t[1] - t[0]))


def _sample(seed, n=300):
    rng = np.random.default_rng(seed)
    f = rng.uniform(0.2, 1.0, n)
    y = (rng.random(n) < f**2).astype(float)  # overconfident where f is high
    return f, y


@pytest.mark.parametrize("sigma", [0.01, 0.05, 0.2, 0.6])
def test_matches_direct_integration(sigma):
    f, y = _sample(0)
    assert smooth_ece_at(f, y, sigma) == pytest.approx(_direct(f, y, sigma), rel=1e-5)


def test_fixed_point_width():
    f, y = _sample(1)
    res = smooth_ece(f, y)
    # at the reported width the value equals the width (the fixed point), and the direct integral agrees
    assert res.value == pytest.approx(res.sigma, abs=1e-9)
    assert res.value == pytest.approx(_direct(f, y, res.sigma), rel=1e-5)
    assert 0.0 <= res.value <= 1.0


def test_perfect_predictions_have_zero_smooth_ece():
    res = smooth_ece(np.ones(10), np.ones(10))
    assert res.value == pytest.approx(0.0, abs=1e-12)


def test_uniformly_positive_residual_equals_the_confidence_gap():
    # every sample confident 0.9 and wrong: the smoothed residual is positive everywhere, so
    # smECE = ∫ (1/N) Σ K (f - y) dt = mean(f - y) = 0.9 at any width
    f, y = np.full(50, 0.9), np.zeros(50)
    assert smooth_ece_at(f, y, 0.1) == pytest.approx(0.9, rel=1e-9)


def _whole_period_value(grid, sigma):
    """``_Smoother.value`` with the kernel computed at every point of the period, every image
    included (the terms it leaves out are exactly 0.0, the second half a mirror image)."""
    m = grid.shape[0] - 1
    period = 2 * m
    ext = np.zeros(period)
    ext[: m + 1] = grid
    ext[m + 1 :] = grid[1:m][::-1]
    ext[0] *= 2.0
    ext[m] *= 2.0
    d = np.minimum(np.arange(period), period - np.arange(period)) / m
    kernel = np.zeros(period)
    for wrap in range(0, 4):
        for sign in ((1,) if wrap == 0 else (1, -1)):
            kernel += np.exp(-0.5 * ((d + sign * 2.0 * wrap) / sigma) ** 2)
    kernel /= np.sqrt(2 * np.pi) * sigma
    smoothed = np.fft.irfft(np.fft.rfft(ext) * np.fft.rfft(kernel), n=period)[: m + 1]
    magnitude = np.abs(smoothed)
    return float(1.0 / m * (magnitude.sum() - 0.5 * (magnitude[0] + magnitude[-1])))


@pytest.mark.parametrize("sigma", [1e-3, 0.004, 0.0259, 0.026, 0.05, 0.3, 0.99, 1.0])
@pytest.mark.parametrize("intervals", [1 << 12, 1 << 14])
def test_the_closed_form_kernel_spectrum_is_the_sampled_kernels(sigma, intervals):
    # the kernel written out at every point of the period, every image included, and transformed:
    # the same smECE as the spectrum in closed form, to rounding
    from lossacc_cli.metrics.smooth_ece import _grid_residuals, _Smoother

    f, y = _sample(3, n=500)
    grid = _grid_residuals(f, y, intervals)
    assert _Smoother(grid).value(sigma) == pytest.approx(_whole_period_value(grid, sigma), rel=1e-10)


def _bisected_fixed_point(f, y):
    """The fixed-point width by plain bisection on smECE_s - s, to 1e-12 in s."""
    lo, hi = 1e-3, 1.0
    while hi - lo > 1e-12:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if smooth_ece_at(f, y, mid) > mid else (lo, mid)
    return 0.5 * (lo + hi)


@pytest.mark.parametrize("seed", range(6))
def test_the_fixed_point_is_the_bisected_root(seed):
    # runs from nearly calibrated to badly overconfident, and one where every sample is right
    rng = np.random.default_rng(seed)
    f = rng.uniform(0.1 * seed, 1.0, 400)
    y = rng.random(400) < f ** (0.5 + seed) if seed < 5 else np.ones(400, dtype=bool)
    res = smooth_ece(f, y)
    assert res.sigma == pytest.approx(_bisected_fixed_point(f, y), abs=1e-9)
    assert res.value == pytest.approx(smooth_ece_at(f, y, res.sigma), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_grid_is_the_plain_expressions_bit_for_bit(seed):
    """The residuals are spread onto the grid with temporaries reused in place: the same grid,
    bit for bit, as the plain expressions (confidences of 0 and 1 and float32 ones included)."""
    from lossacc_cli.metrics.smooth_ece import _grid_residuals

    rng = np.random.default_rng(seed)
    n, intervals = 50_001, 1 << 14
    f = np.concatenate([rng.random(n - 4), [0.0, 1.0, 1.0 - 1e-17, 0.5]])
    y = rng.random(n) < f
    for conf in (f, f.astype(np.float32)):
        c = np.clip(np.asarray(conf, dtype=np.float64), 0.0, 1.0)
        r = (c - y.astype(np.float64)) / n
        pos = c * intervals
        left = np.minimum(pos.astype(np.int64), intervals - 1)
        frac = pos - left
        expected = np.bincount(left, weights=r * (1 - frac), minlength=intervals + 1)
        expected += np.bincount(left + 1, weights=r * frac, minlength=intervals + 1)
        assert np.array_equal(_grid_residuals(conf, y, intervals), expected)
