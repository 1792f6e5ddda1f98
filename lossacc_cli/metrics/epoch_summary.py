"""The per-epoch summary record (:class:`EpochSummary`) and its parts: loss, accuracy, loss distribution,
chance baseline, calibration, temperature; built from per-sample vectors plus the two numbers that
need the scores (no score layout is known here)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from lossacc_cli.metrics.recalibration import Recalibrated, as_given
from lossacc_cli.metrics.temperature_search import TemperatureFit
from lossacc_cli.metrics.vectors import SampleStats

TOP_SHARE_FRACTION = 0.01
"""The "top 1%" of samples: ceil(0.01 N), at least one sample."""


@dataclass(frozen=True)
class Baseline:
    """What always predicting the class prior would score.

    ``loss`` is H(prior) = -sum_k pi_k ln pi_k in nats (ln K when balanced); ``accuracy`` is
    max_k pi_k (always predicting the majority class).
    """

    loss: float
    accuracy: float


def class_prior(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Label frequencies pi_k, shape (K,), summing to 1."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    return counts / counts.sum()


def chance_baseline(prior: np.ndarray) -> Baseline:
    """Baseline loss H(prior) (0 ln 0 = 0) and chance accuracy max(prior).

    >>> b = chance_baseline(np.array([0.5, 0.5]))
    >>> round(b.loss, 4), b.accuracy       # ln 2
    (0.6931, 0.5)
    """
    p = np.asarray(prior, dtype=np.float64)
    nz = p[p > 0]
    return Baseline(loss=float(-(nz * np.log(nz)).sum()), accuracy=float(p.max()))


def top_share(loss: np.ndarray, fraction: float = TOP_SHARE_FRACTION, *,
              ordered: np.ndarray | None = None) -> float:
    """Share of the total loss carried by the ceil(fraction * N) highest-loss samples; NaN if total
    is 0. ``ordered`` is ``np.sort(loss)`` when the caller has it: the top values are summed in
    ascending order (NumPy's vectorised sort is faster than a partition, whose order of the top
    values would depend on NumPy's selection algorithm)."""
    n = loss.shape[0]
    k = max(1, math.ceil(fraction * n))
    total = float(loss.sum())
    if total <= 0:
        return float("nan")
    ordered = np.sort(loss) if ordered is None else ordered
    return float(ordered[n - k :].sum() / total)


def sorted_quantiles(ordered: np.ndarray, q) -> np.ndarray:
    """``np.quantile(values, q)`` from ``ordered = np.sort(values)``, bit for bit: NumPy's default
    'linear' method (Hyndman and Fan's 7th): at h = (N - 1) q, the order statistics ``a`` at
    floor(h) and ``b`` above it, interpolated as ``a + (b - a) g`` (``b - (b - a)(1 - g)`` when
    g >= 0.5); from the last value on, the last value. NaN when a value is NaN (sorted last).

    >>> sorted_quantiles(np.array([1.0, 2.0, 4.0, 8.0]), [0.0, 0.5, 0.9, 1.0]).tolist()
    [1.0, 3.0, 6.799999999999999, 8.0]
    """
    q = np.asarray(q, dtype=np.float64)
    n = ordered.shape[0]
    h = (n - 1) * q
    below = np.floor(h).astype(np.intp)
    below[h >= n - 1] = -1  # the last value (and g = h + 1: b - a = 0 there)
    above = np.where(below < 0, -1, below + 1)
    g = h - below
    a, b = ordered[below], ordered[above]
    step = b - a
    out = np.where(g >= 0.5, b - step * (1 - g), a + step * g)
    if n and np.isnan(ordered[-1]):
        out[:] = np.nan
    return out


def median(values: np.ndarray) -> float:
    """``np.median(values)`` of a 1-D float array, bit for bit, from the same partition (the
    middle one or two order statistics, and the maximum: NaN when a value is NaN), without the
    import of ``numpy.ma`` that np.median and np.quantile make on their first call (15-20 ms).

    >>> median(np.array([4.0, 1.0, 2.0, 8.0]))
    3.0
    """
    n = values.shape[0]
    if n == 0:
        return float("nan")
    half = n // 2
    middle = (half,) if n % 2 else (half - 1, half)
    part = np.partition(values, sorted({*middle, n - 1}))
    if np.isnan(part[-1]):
        return float("nan")
    return float(part[half] if n % 2 else (part[half - 1] + part[half]) / 2)


@dataclass(frozen=True)
class EpochSummary:
    """Every per-epoch number of the analyze table. Losses in nats; NaN where unavailable.

    ``temperature``/``recalibrated_loss``/``classwise_ece`` are NaN for the compact per-sample form
    (no scores to rescale). ``recalibrated_loss`` is L(T*), or the loss as given when the fit does
    worse (never above ``loss``; ``temperature`` is then 1); ``recalibrated_loss_crossfit`` is L(T*) with T* fitted on one half
    of the samples and the loss measured on the other (NaN below 200 samples). ``information_gain`` = 1 - loss / baseline_loss (< 0: worse than the
    prior on average).
    """

    epoch: int
    n_samples: int
    n_classes: int
    loss: float
    accuracy: float
    loss_p50: float
    loss_p90: float
    loss_p99: float
    loss_max: float
    top1pct_share: float
    baseline_loss: float
    chance_accuracy: float
    information_gain: float
    ece: float
    adaptive_ece: float
    mce: float
    classwise_ece: float
    overconfidence_gap: float
    mean_confidence: float
    temperature: float
    temperature_at_bound: bool
    recalibrated_loss: float
    recalibrated_loss_crossfit: float
    n_clipped: int

    @property
    def calibration_loss(self) -> float:
        """The part of the loss that temperature scaling removes: L - L(T*)."""
        return self.loss - self.recalibrated_loss

    @property
    def fit_usable(self) -> bool:
        """Is T* a usable recalibration? Not without scores, and not at a search bound (e.g. every
        sample correct: the loss keeps falling as T -> 0, so no finite T is the fit)."""
        return math.isfinite(self.recalibrated_loss) and not self.temperature_at_bound


def with_recalibration(stats: SampleStats, recal: Recalibrated) -> SampleStats:
    """``stats`` with the per-sample loss and confidence at T*: the fitted ones, or the scores as
    given when the fit does worse (probabilities whose rows are off 1 by rounding are renormalised
    by any temperature, T = 1 included, and that can cost more than the fit gains)."""
    given = float(recal.loss.mean()) > float(stats.loss.mean())
    if given:
        recal = as_given(stats.loss, stats.confidence)
    return dataclasses.replace(
        stats, recal_loss=recal.loss, recal_confidence=recal.confidence,
        recal_crossfit_loss=recal.crossfit_loss, recal_as_given=given,
    )


def summary_from_parts(
    *,
    epoch: int,
    labels: np.ndarray,
    n_classes: int,
    stats: SampleStats,
    classwise_ece: float,
    fit: TemperatureFit | None,
    prior: np.ndarray | None = None,
) -> EpochSummary:
    """The summary from per-sample vectors plus the two numbers that need the score matrix.

    ``classwise_ece`` and the temperature ``fit`` (None for the compact form) come from the scores;
    the streaming reduction computes them block by block, :func:`summarize_epoch` from the matrix.
    """
    loss = stats.loss
    prior = class_prior(labels, n_classes) if prior is None else prior
    base = chance_baseline(prior)
    accuracy = float(stats.correct.mean())
    mean_loss = float(loss.mean())
    ordered = np.sort(loss)  # the quantiles and the top 1%'s share
    q50, q90, q99 = sorted_quantiles(ordered, [0.5, 0.9, 0.99])
    width, mass = stats.reliability()
    mean_conf = float(stats.confidence.mean())
    if fit is None:
        fit = TemperatureFit(float("nan"), mean_loss, float("nan"), False)
    recalibrated = fit.recalibrated_loss
    crossfit = float("nan")
    temperature, at_bound = fit.temperature, fit.at_bound
    if stats.recal_loss is not None:  # the per-sample losses at T* average to L(T*)
        recalibrated = float(stats.recal_loss.mean())
        crossfit = stats.recal_crossfit_loss
        if stats.recal_as_given:  # the fit did worse than the scores as they are: T = 1
            temperature, at_bound = 1.0, False
    return EpochSummary(
        epoch=epoch,
        n_samples=int(labels.shape[0]),
        n_classes=n_classes,
        loss=mean_loss,
        accuracy=accuracy,
        loss_p50=float(q50),
        loss_p90=float(q90),
        loss_p99=float(q99),
        loss_max=float(loss.max()),
        top1pct_share=top_share(loss, ordered=ordered),
        baseline_loss=base.loss,
        chance_accuracy=base.accuracy,
        information_gain=1.0 - mean_loss / base.loss if base.loss > 0 else float("nan"),
        ece=width.ece(),
        adaptive_ece=mass.ece(),
        mce=width.mce(),
        classwise_ece=classwise_ece,
        overconfidence_gap=mean_conf - accuracy,
        mean_confidence=mean_conf,
        temperature=temperature,
        temperature_at_bound=at_bound,
        recalibrated_loss=recalibrated,
        recalibrated_loss_crossfit=crossfit,
        n_clipped=stats.n_clipped,
    )
