"""The largest values first, sorting only as many as are asked for.

Every ranking of samples is ``np.argsort(-values, kind="stable")`` (largest first, ties in sample
order); a report shows a few rows of it, or the prefix carrying a share of a sum. Sorting all N
values for that cost 0.1-0.2 s per ranking at N = 1,000,000; a partition finds the candidates in
O(N) and only they are sorted, with the same result element for element.
"""

from __future__ import annotations

import numpy as np

FULL_SORT_SHARE = 0.25
"""Beyond this share of the values a full sort is as cheap as partitioning first."""


def largest_first(values: np.ndarray, k: int | None = None) -> np.ndarray:
    """``np.argsort(-values, kind="stable")[:k]``: positions of the ``k`` largest values, largest
    first, ties in position order (all of them when ``k`` is None)."""
    n = values.shape[0]
    k = n if k is None else max(0, min(int(k), n))
    if k == 0:
        return np.zeros(0, dtype=np.intp)
    if k > FULL_SORT_SHARE * n or np.isnan(values).any():
        return np.argsort(-values, kind="stable")[:k]
    threshold = np.partition(values, n - k)[n - k]  # the k-th largest value
    candidates = np.flatnonzero(values >= threshold)  # in position order: ties stay in order
    return candidates[np.argsort(-values[candidates], kind="stable")][:k]


def shortest_prefix(values: np.ndarray, target: float) -> np.ndarray:
    """The positions of the fewest largest values (``largest_first`` order) whose running sum
    reaches ``target``: the first k of the ranking with ``cumsum[k - 1] >= target`` (all of them
    when none does). The running sum is the one over the whole ranking, bit for bit.

    The first try ranks as many values as every 64th value, ranked, says are needed (with a
    margin); a try whose running sum falls short ranks four times as many."""
    n = values.shape[0]
    m = _prefix_guess(values, target)
    while True:
        order = largest_first(values, m)
        cumulative = np.cumsum(values[order])
        if m == n or (cumulative.shape[0] and cumulative[-1] >= target):
            k = min(int(np.searchsorted(cumulative, target, side="left")) + 1, n)
            return order[:k]
        m = min(n, 4 * m)


GUESS_STRIDE = 64
"""Every this many values are ranked to guess how long a prefix is (only a guess: the prefix
itself is always checked on the whole ranking)."""


def _prefix_guess(values: np.ndarray, target: float) -> int:
    n = values.shape[0]
    least = min(n, max(1024, n // GUESS_STRIDE))
    if n < 16 * least:
        return least
    sample = np.sort(values[::GUESS_STRIDE])[::-1]  # NaN first: largest_first sorts them all anyway
    if np.isnan(sample[0]):
        return n
    reached = np.cumsum(sample) * (n / sample.shape[0])
    needed = (int(np.searchsorted(reached, target, side="left")) + 1) * GUESS_STRIDE
    return min(n, max(least, int(1.25 * needed) + 1024))
