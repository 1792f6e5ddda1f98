"""Rankings from a partition are the full stable sort's, element for element."""

from __future__ import annotations

import numpy as np
import pytest

from lossacc_cli.metrics.ranking import largest_first, shortest_prefix


def _values(rng, n, kind):
    if kind == "ties":
        return rng.integers(0, 5, n).astype(float)
    if kind == "signed":
        return rng.normal(size=n) * np.where(rng.random(n) < 0.3, 0.0, 1.0)
    if kind == "nan":
        x = rng.exponential(size=n)
        x[rng.random(n) < 0.01] = np.nan
        return x
    return rng.exponential(size=n) ** 3  # a heavy tail, like losses


@pytest.mark.parametrize("kind", ["tail", "ties", "signed", "nan"])
@pytest.mark.parametrize("n", [0, 1, 7, 5000, 100_003])
def test_as_the_full_stable_sort(kind, n):
    rng = np.random.default_rng(n)
    x = _values(rng, n, kind)
    full = np.argsort(-x, kind="stable")
    for k in (0, 1, 3, 10, n // 100, n // 5, n // 2, n, None):
        assert np.array_equal(largest_first(x, k), full if k is None else full[:k])


@pytest.mark.parametrize("share", [0.0, 0.01, 0.5, 0.99, 1.0, 2.0])
@pytest.mark.parametrize("kind", ["tail", "ties", "nan"])
def test_shortest_prefix_as_the_cumulative_sum_over_the_full_sort(share, kind):
    x = np.abs(_values(np.random.default_rng(3), 200_001, kind))
    order = np.argsort(-x, kind="stable")
    cumulative = np.cumsum(x[order])
    target = share * float(np.nansum(x))
    k = min(int(np.searchsorted(cumulative, target, side="left")) + 1, x.shape[0])
    assert np.array_equal(shortest_prefix(x, target), order[:k])


@pytest.mark.parametrize("every", [64, 63])
def test_shortest_prefix_when_every_64th_value_misleads_the_guess(every):
    # the values the first try is sized from are the large ones: it ranks too few, and the next
    # tries rank more until the running sum over the full ranking reaches the target
    x = np.random.default_rng(every).exponential(size=300_000) * 1e-3
    x[::every] += 1.0
    order = np.argsort(-x, kind="stable")
    cumulative = np.cumsum(x[order])
    for share in (0.5, 0.99, 0.9999):
        target = share * float(x.sum())
        k = min(int(np.searchsorted(cumulative, target, side="left")) + 1, x.shape[0])
        assert np.array_equal(shortest_prefix(x, target), order[:k])
