"""Shared invariance tests over a registry of per-epoch metrics (sklearn's test_common idea):
sample order does not matter, per-sample losses average to the reported loss, values stay in bounds."""

from __future__ import annotations

import numpy as np
import pytest

from lossacc_cli.metrics.per_sample import sample_stats
from lossacc_cli.metrics.summary import summarize_epoch
from tests.helpers import epoch

# name -> (lower bound, upper bound); None = unbounded on that side
REGISTRY = {
    "loss": (0.0, None),
    "accuracy": (0.0, 1.0),
    "loss_p50": (0.0, None),
    "loss_p90": (0.0, None),
    "loss_p99": (0.0, None),
    "loss_max": (0.0, None),
    "top1pct_share": (0.0, 1.0),
    "baseline_loss": (0.0, None),
    "chance_accuracy": (0.0, 1.0),
    "ece": (0.0, 1.0),
    "adaptive_ece": (0.0, 1.0),
    "mce": (0.0, 1.0),
    "classwise_ece": (0.0, 1.0),
    "mean_confidence": (0.0, 1.0),
    "overconfidence_gap": (-1.0, 1.0),
    "temperature": (0.0, None),
    "recalibrated_loss": (0.0, None),
}

LAYOUTS = ["logits", "probs", "logit", "prob"]


def _data(kind, seed, n=300, k=6):
    rng = np.random.default_rng(seed)
    if kind in ("logit", "prob"):
        s = rng.normal(size=n) * 3
        y = rng.integers(0, 2, n)
        return (s if kind == "logit" else 1 / (1 + np.exp(-s))), y
    z = rng.normal(size=(n, k)) * 3
    y = rng.integers(0, k, n)
    if kind == "probs":
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True), y
    return z, y


def _summary(scores, labels, kind):
    e = epoch(scores, labels, kind=kind)
    return summarize_epoch(e, sample_stats(e)), sample_stats(e)


@pytest.mark.parametrize("kind", LAYOUTS)
def test_sample_order_does_not_matter(kind):
    scores, labels = _data(kind, 1)
    perm = np.random.default_rng(2).permutation(len(labels))
    a, _ = _summary(scores, labels, kind)
    b, _ = _summary(scores[perm], labels[perm], kind)
    for name in REGISTRY:
        # equal-mass bins split ties by sample order; everything else is order-free to rounding
        assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-9, abs=1e-12), name


@pytest.mark.parametrize("kind", LAYOUTS)
def test_per_sample_losses_average_to_the_reported_loss(kind):
    scores, labels = _data(kind, 3)
    s, stats = _summary(scores, labels, kind)
    assert s.loss == pytest.approx(stats.loss.mean(), rel=1e-15)
    assert s.accuracy == pytest.approx(stats.correct.mean())
    assert s.loss_max == stats.loss.max()


@pytest.mark.parametrize("kind", LAYOUTS)
@pytest.mark.parametrize("seed", range(4))
def test_values_stay_in_bounds(kind, seed):
    scores, labels = _data(kind, seed)
    s, _ = _summary(scores, labels, kind)
    for name, (lo, hi) in REGISTRY.items():
        v = getattr(s, name)
        assert np.isfinite(v), name
        assert lo is None or v >= lo - 1e-12, name
        assert hi is None or v <= hi + 1e-12, name
    assert s.recalibrated_loss <= s.loss + 1e-12
    assert s.loss_p50 <= s.loss_p90 <= s.loss_p99 <= s.loss_max
