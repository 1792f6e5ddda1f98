"""Smooth ECE (Błasiok & Nakkiran, 2023): the ECE of kernel-smoothed residuals, at the fixed-point width.

    smECE_s = ∫_0^1 | (1/N) Σ_i K_s(t, f_i) (f_i - y_i) | dt

with f_i the top-label confidence, y_i = 1 if correct, and K_s the Gaussian kernel of width s
reflected at 0 and 1 (all images: K_s(t, f) = Σ_k φ_s(t - f - 2k) + φ_s(t + f - 2k)). The reported
value is smECE at the width s* where smECE_s* = s* (it exists and is unique because smECE_s
decreases in s); relplot reports the same quantity, found by a coarser search.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GRID_POINTS = 1 << 14
"""Intervals of the [0, 1] grid (h = 6.1e-5): at the smallest width searched there are 16 grid
steps per sigma, so linear binning of the samples onto the grid errs by O((h / s)^2) < 1e-3 relative."""

SIGMA_MIN = 1e-3
"""Below this width smECE is reported as at most 1e-3 (relplot uses the same floor)."""


@dataclass(frozen=True)
class SmoothECE:
    """``value`` in [0, 1], lower is better; ``sigma`` is the kernel width it was computed at."""

    value: float
    sigma: float


def _grid_residuals(confidence: np.ndarray, correct: np.ndarray, intervals: int) -> np.ndarray:
    """Residuals (f - y) / N spread linearly onto the grid points t_j = j / intervals."""
    f = np.clip(np.asarray(confidence, dtype=np.float64), 0.0, 1.0)
    r = (f - np.asarray(correct, dtype=np.float64)) / f.shape[0]
    pos = f * intervals
    left = np.minimum(pos.astype(np.int64), intervals - 1)
    frac = pos - left
    grid = np.bincount(left, weights=r * (1 - frac), minlength=intervals + 1)
    grid += np.bincount(left + 1, weights=r * frac, minlength=intervals + 1)
    return grid


class _Smoother:
    """Reflection at 0 and 1 makes the smoothed signal 2-periodic: convolve circularly over [0, 2)."""

    def __init__(self, grid: np.ndarray) -> None:
        m = grid.shape[0] - 1  # intervals
        period = 2 * m
        ext = np.zeros(period)
        ext[: m + 1] = grid
        ext[m + 1 :] = grid[1:m][::-1]  # the mirror image on (1, 2)
        ext[0] *= 2.0  # a point at 0 (or 1) coincides with its own mirror image: count both
        ext[m] *= 2.0
        self.m, self.period = m, period
        self.spectrum = np.fft.rfft(ext)
        # circular distance of grid point j from 0: j / m up to the half period, then back down
        self.offsets = np.arange(m + 1) / m

    def value(self, sigma: float) -> float:
        kernel = np.zeros(self.period)
        half = kernel[: self.m + 1]
        for wrap in range(0, 4):  # images of the 2-periodic kernel; exp(-(2*3)^2 / 2) is negligible
            for sign in ((1,) if wrap == 0 else (1, -1)):
                shift = self.offsets + sign * 2.0 * wrap
                near = _near(shift, sigma)
                if near.stop > near.start:  # elsewhere exp(...) is exactly 0: nothing to add
                    half[near] += np.exp(-0.5 * (shift[near] / sigma) ** 2)
        half /= np.sqrt(2 * np.pi) * sigma
        kernel[self.m + 1 :] = half[1 : self.m][::-1]  # the distance is symmetric about m
        smoothed = np.fft.irfft(self.spectrum * np.fft.rfft(kernel), n=self.period)[: self.m + 1]
        magnitude = np.abs(smoothed)
        h = 1.0 / self.m
        return float(h * (magnitude.sum() - 0.5 * (magnitude[0] + magnitude[-1])))  # trapezoid


ZERO_BEYOND = 40.0
"""exp(-x^2 / 2) is exactly 0.0 in float64 beyond x = 38.6: grid points farther than this many
widths from a kernel image add nothing, and are not computed."""


def _near(shift: np.ndarray, sigma: float) -> slice:
    """The grid points (``shift`` increasing) within :data:`ZERO_BEYOND` widths of 0."""
    reach = ZERO_BEYOND * sigma
    return slice(int(np.searchsorted(shift, -reach, "left")), int(np.searchsorted(shift, reach, "right")))


def smooth_ece_at(confidence, correct, sigma: float, *, intervals: int = GRID_POINTS) -> float:
    """smECE at a given kernel width ``sigma``."""
    return _Smoother(_grid_residuals(confidence, correct, intervals)).value(sigma)


def smooth_ece(confidence, correct, *, intervals: int = GRID_POINTS) -> SmoothECE:
    """smECE at its fixed-point width, found by bisection on s -> smECE_s - s to 1e-6 in s."""
    smoother = _Smoother(_grid_residuals(confidence, correct, intervals))
    lo, hi = SIGMA_MIN, 1.0
    if smoother.value(lo) <= lo:
        return SmoothECE(smoother.value(lo), lo)
    if smoother.value(hi) >= hi:
        return SmoothECE(smoother.value(hi), hi)
    while hi - lo > 1e-6:
        mid = 0.5 * (lo + hi)
        if smoother.value(mid) > mid:
            lo = mid
        else:
            hi = mid
    sigma = 0.5 * (lo + hi)
    return SmoothECE(smoother.value(sigma), sigma)
