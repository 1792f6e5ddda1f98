"""Calibration of the top-label confidence: reliability bins, ECE variants, MCE, class-wise ECE."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_BINS = 15
"""Guo et al. (2017) use 15 bins; so do torchmetrics and netcal by default."""


@dataclass(frozen=True, eq=False)
class ReliabilityTable:
    """Per-bin statistics of top-label confidence against accuracy.

    Attributes
    ----------
    lower, upper : float64, shape (B,)
        Bin edges. Equal-width bins hold ``lower <= conf < upper``; the last bin is closed, so a
        confidence of exactly 1.0 is counted in it.
    count : int64, shape (B,)
    confidence : float64, shape (B,)
        Mean confidence in the bin (NaN when empty).
    accuracy : float64, shape (B,)
        Fraction correct in the bin (NaN when empty).
    """

    lower: np.ndarray
    upper: np.ndarray
    count: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray

    @property
    def gap(self) -> np.ndarray:
        """``confidence - accuracy`` per bin; > 0 means overconfident."""
        return self.confidence - self.accuracy

    def ece(self) -> float:
        """``sum_b (n_b / N) |acc_b - conf_b|`` over non-empty bins."""
        filled = self.count > 0
        weights = self.count[filled] / self.count.sum()
        return float(np.sum(weights * np.abs(self.gap[filled])))

    def mce(self) -> float:
        """Largest ``|acc_b - conf_b|`` over non-empty bins."""
        filled = self.count > 0
        return float(np.max(np.abs(self.gap[filled])))


def _bin_means(bins: np.ndarray, n_bins: int, confidence: np.ndarray, correct: np.ndarray):
    count = np.bincount(bins, minlength=n_bins)
    conf_sum = np.bincount(bins, weights=confidence, minlength=n_bins)
    hit_sum = np.bincount(bins, weights=correct.astype(np.float64), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return count, conf_sum / count, hit_sum / count


def equal_width_bins(confidence: np.ndarray, n_bins: int = N_BINS) -> np.ndarray:
    """Bin index of each confidence: ``b`` such that ``edges[b] <= c < edges[b+1]``, last bin closed."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, n_bins - 1)


def reliability_table(
    confidence: np.ndarray, correct: np.ndarray, *, n_bins: int = N_BINS, strategy: str = "uniform"
) -> ReliabilityTable:
    """Reliability table with equal-width (``uniform``) or equal-mass (``quantile``) bins.

    Equal-mass bins split the samples sorted by confidence into ``n_bins`` groups whose sizes differ
    by at most one (``np.array_split`` of the ranks; ties are split by sample order), as in
    Nixon et al. (2019) "adaptive calibration error".
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    if strategy == "uniform":
        bins = equal_width_bins(confidence, n_bins)
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        lower, upper = edges[:-1], edges[1:]
    elif strategy == "quantile":
        order = np.argsort(confidence, kind="stable")
        n = confidence.shape[0]
        n_bins = min(n_bins, n)
        sizes = np.full(n_bins, n // n_bins)
        sizes[: n % n_bins] += 1
        bins = np.empty(n, dtype=np.int64)
        bins[order] = np.repeat(np.arange(n_bins), sizes)
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
        sorted_conf = confidence[order]
        lower = sorted_conf[starts]
        upper = sorted_conf[starts + sizes - 1]
    else:
        raise ValueError(f"unknown binning strategy {strategy!r}")
    count, conf_mean, acc = _bin_means(bins, n_bins, confidence, correct)
    return ReliabilityTable(lower=lower, upper=upper, count=count, confidence=conf_mean, accuracy=acc)


def expected_calibration_error(confidence, correct, *, n_bins: int = N_BINS) -> float:
    """Top-label ECE with equal-width bins (Guo et al. 2017); in [0, 1], lower is better.

    >>> expected_calibration_error(np.array([0.9, 0.9, 0.6, 0.6]), np.array([1, 1, 1, 0]))
    0.1
    """
    return reliability_table(confidence, correct, n_bins=n_bins).ece()


def classwise_calibration_error(labels: np.ndarray, probs: np.ndarray, *, n_bins: int = N_BINS) -> float:
    """Class-wise ECE (Kull et al. 2019): mean over classes k of the ECE of p_k against 1[y = k].

    Every entry of the (N, K) matrix is binned (equal-width, last bin closed); in [0, 1], lower is
    better. ``probs`` may be any float dtype; sums are taken in float64.
    """
    n, k = probs.shape
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    count = np.zeros(k * n_bins)
    p_sum = np.zeros(k * n_bins)
    hit = np.zeros(k * n_bins)
    offsets = np.arange(k) * n_bins
    step = max(1, (1 << 16) // k)
    for start in range(0, n, step):
        p = np.asarray(probs[start : start + step], dtype=np.float64)
        cell = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, n_bins - 1) + offsets
        count += np.bincount(cell.ravel(), minlength=k * n_bins)
        p_sum += np.bincount(cell.ravel(), weights=p.ravel(), minlength=k * n_bins)
        y = labels[start : start + step]
        true_cells = cell[np.arange(y.shape[0]), y]
        hit += np.bincount(true_cells, minlength=k * n_bins)
    gap = np.abs(hit - p_sum)  # n_b * |freq_b - mean_p_b|
    return float(gap.sum() / (n * k))


def classwise_from_binary(labels: np.ndarray, prob_one: np.ndarray, *, n_bins: int = N_BINS) -> float:
    """Class-wise ECE for a binary task given P(class 1)."""
    p = np.asarray(prob_one, dtype=np.float64)
    return classwise_calibration_error(labels, np.column_stack([1.0 - p, p]), n_bins=n_bins)
