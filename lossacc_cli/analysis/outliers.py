"""One epoch's per-sample loss distribution and its outlying samples."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lossacc_cli.analysis.run import Run
from lossacc_cli.metrics.summary import top_share

HISTOGRAM_EDGES = (0.0, 1e-3, 1e-2, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, math.inf)
"""Loss bins in nats, roughly log-spaced; fixed so histograms of different epochs line up."""

OUTLIER_Z = 3.5
"""Robust z-score cut on log-loss (Iglewicz & Hoaglin's modified z-score threshold)."""

LOSS_FLOOR = 1e-6
"""Losses below this (nats) are treated as equal before taking logs: smaller differences mean nothing."""


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

    A sample is outlying when its modified z-score on the log scale,
    ``(ln l - median(ln l)) / (1.4826 * MAD(ln l))`` with l floored at 1e-6 nats, exceeds 3.5, and its
    loss is above ln 2 (p[label] < 1/2). ``loss_without`` is the mean loss over the other samples.
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


def outlier_mask(loss: np.ndarray) -> np.ndarray:
    """Boolean mask of outlying losses (rule in OutlierReport's docstring)."""
    log_loss = np.log(np.maximum(loss, LOSS_FLOOR))
    center = np.median(log_loss)
    spread = 1.4826 * np.median(np.abs(log_loss - center))
    if spread == 0:  # more than half the losses tie: fall back to the mean absolute deviation
        spread = 1.2533 * np.mean(np.abs(log_loss - center))
    if spread == 0:
        return np.zeros(loss.shape, dtype=bool)
    return ((log_loss - center) / spread > OUTLIER_Z) & (loss > math.log(2))


def histogram(loss: np.ndarray) -> tuple[HistogramBin, ...]:
    edges = np.array(HISTOGRAM_EDGES)
    bins = np.clip(np.searchsorted(edges, loss, side="right") - 1, 0, len(edges) - 2)
    counts = np.bincount(bins, minlength=len(edges) - 1)
    sums = np.bincount(bins, weights=loss, minlength=len(edges) - 1)
    total = loss.sum()
    return tuple(
        HistogramBin(float(edges[b]), float(edges[b + 1]), int(counts[b]), float(sums[b] / total) if total > 0 else 0.0)
        for b in range(len(edges) - 1)
    )


def outlier_report(run: Run, epoch: int, *, top: int = 10) -> OutlierReport:
    r = run.record(epoch)
    s = r.stats
    loss = s.loss
    n = loss.shape[0]
    mask = outlier_mask(loss)
    idx = np.flatnonzero(mask)
    idx = idx[np.argsort(-loss[idx], kind="stable")]
    total = float(loss.sum())
    k = min(10, n)
    top10 = float(np.partition(loss, n - k)[n - k :].sum()) / total if total > 0 else float("nan")
    rest = n - idx.shape[0]
    return OutlierReport(
        epoch=r.epoch,
        n_samples=n,
        loss=float(loss.mean()),
        quantiles={
            "p50": float(np.quantile(loss, 0.5)),
            "p90": float(np.quantile(loss, 0.9)),
            "p99": float(np.quantile(loss, 0.99)),
            "max": float(loss.max()),
        },
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
