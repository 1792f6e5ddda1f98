"""One epoch's per-sample loss distribution and its outlying samples."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lossacc_cli.metrics.calibration import clipped_bins
from lossacc_cli.metrics.ranking import shortest_prefix

from lossacc_cli.analysis.run import EpochRecord, Run
from lossacc_cli.metrics.summary import top_share

HISTOGRAM_EDGES = (0.0, 1e-3, 1e-2, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, math.inf)
"""Loss bins in nats, roughly log-spaced; fixed so histograms of different epochs line up."""

OUTLIER_LOSS_SHARE = 0.5
"""Outlying samples are the fewest highest-loss samples that together carry this share of the total loss."""


@dataclass(frozen=True)
class HistogramBin:
    lower: float
    upper: float
    count: int
    loss_share: float


@dataclass(frozen=True)
class OutlierSample:
    id: object
    label: int
    pred: int
    true_prob: float
    confidence: float
    loss: float


@dataclass(frozen=True)
class OutlierReport:
    """Distribution of per-sample loss at one epoch and the samples far above the rest.

    Outlying samples are the fewest highest-loss samples that together carry half of the epoch's
    total loss (ties broken by row order). The rule needs no tuning and scales with how concentrated
    the loss is: one sample when a single sample carries half of it, many when the loss is spread
    out (``n_outliers / n_samples`` says which). ``loss_without`` is the mean loss over the others.
    """

    epoch: int
    n_samples: int
    loss: float
    quantiles: dict
    top1pct_share: float
    top10_share: float
    histogram: tuple[HistogramBin, ...]
    n_outliers: int
    outliers_loss_share: float
    loss_without: float
    outliers: tuple[OutlierSample, ...]


def ranked_outliers(loss: np.ndarray, share: float = OUTLIER_LOSS_SHARE) -> np.ndarray:
    """Positions of the outlying losses (rule in OutlierReport's docstring), largest first, ties
    in position order; none when all losses are 0."""
    total = float(loss.sum())
    if total <= 0:
        return np.zeros(0, dtype=np.intp)
    return shortest_prefix(loss, share * total * (1 - 1e-12))


def histogram(loss: np.ndarray) -> tuple[HistogramBin, ...]:
    edges = np.array(HISTOGRAM_EDGES)
    bins = clipped_bins(loss, edges)
    counts = np.bincount(bins, minlength=len(edges) - 1)
    sums = np.bincount(bins, weights=loss, minlength=len(edges) - 1)
    total = loss.sum()
    return tuple(
        HistogramBin(float(edges[b]), float(edges[b + 1]), int(counts[b]), float(sums[b] / total) if total > 0 else 0.0)
        for b in range(len(edges) - 1)
    )


LOG_BINS = 40
"""Log-spaced bins of a loss distribution (for charts): from 1e-6 nats to the largest loss."""


@dataclass(frozen=True, eq=False)
class LossDistribution:
    """One epoch's per-sample losses summarised for a chart: ``edges`` (LOG_BINS + 1 log-spaced
    edges in nats, the first bin also holding every loss below 1e-6), ``counts`` per bin, the
    quantiles, and the outlying samples (positions in the epoch's file, largest loss first)."""

    epoch: int
    n_samples: int
    edges: np.ndarray
    counts: np.ndarray
    quantiles: dict
    outliers: np.ndarray
    outlier_losses: np.ndarray


def loss_quantiles(r: EpochRecord) -> dict:
    """The epoch's loss quantiles in nats: p50, p90, p99 as its summary computed them (NumPy's
    linear interpolation) and the largest loss."""
    s = r.summary
    return {"p50": s.loss_p50, "p90": s.loss_p90, "p99": s.loss_p99, "max": s.loss_max}


def loss_distribution(run: Run, epoch: int, *, top: int = 50) -> LossDistribution:
    """The loss distribution of ``epoch``; ``top`` outlying samples at most."""
    r = run.record(epoch)
    loss = r.stats.loss
    high = max(float(loss.max()), 1e-5)
    edges = np.geomspace(1e-6, high * (1 + 1e-12), LOG_BINS + 1)
    counts = np.bincount(clipped_bins(loss, edges), minlength=LOG_BINS)
    idx = ranked_outliers(loss)[:top]
    return LossDistribution(
        epoch=r.epoch,
        n_samples=int(loss.shape[0]),
        edges=edges,
        counts=counts,
        quantiles=loss_quantiles(r),
        outliers=idx,
        outlier_losses=loss[idx],
    )


def outlier_report(run: Run, epoch: int, *, top: int = 10) -> OutlierReport:
    r = run.record(epoch)
    s = r.stats
    loss = s.loss
    n = loss.shape[0]
    idx = ranked_outliers(loss)
    mask = np.zeros(n, dtype=bool)
    mask[idx] = True
    total = float(loss.sum())
    k = min(10, n)
    top10 = float(np.partition(loss, n - k)[n - k :].sum()) / total if total > 0 else float("nan")
    rest = n - idx.shape[0]
    return OutlierReport(
        epoch=r.epoch,
        n_samples=n,
        loss=float(loss.mean()),
        quantiles=loss_quantiles(r),
        top1pct_share=top_share(loss),
        top10_share=top10,
        histogram=histogram(loss),
        n_outliers=int(idx.shape[0]),
        outliers_loss_share=float(loss[idx].sum()) / total if total > 0 else 0.0,
        loss_without=float(loss[~mask].mean()) if rest else float("nan"),
        outliers=tuple(
            OutlierSample(
                id=run.ids[r.rows[i]],
                label=int(r.labels[i]),
                pred=int(s.pred[i]),
                true_prob=float(s.true_prob[i]),
                confidence=float(s.confidence[i]),
                loss=float(loss[i]),
            )
            for i in idx[:top]
        ),
    )
