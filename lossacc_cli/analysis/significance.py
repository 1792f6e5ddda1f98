"""Is the rise real? An interval for it that is not fooled by noise or by picking the minimum.

The rise is ``T = L_to - min_e L_e``: the loss at the later epoch over the lowest loss up to it
(or over the epoch the user chose with ``--from``; then nothing is picked). What makes a per-epoch
validation loss noisy is the model moving from epoch to epoch (SGD noise) while the evaluation
set stays fixed: the curve wobbles around its trend. Picking the lowest of several wobbling epochs
biases the minimum low (the winner's curse), so "the loss rose since its minimum" overstates every
rise.

* **Jitter**: the size ``sigma`` of the wobble comes from the curve itself, as the robust spread
  of its third differences (MAD / 0.6745 / sqrt(20)): a trend that is locally quadratic (a smooth
  descent, a V around the minimum, a steady rise) leaves them near zero, independent noise of sd s
  gives them sd s sqrt(20). Measured over the compared stretch (from three epochs before the from
  epoch to the to epoch) when it has at least three, else over the whole curve.
* **The whole procedure is bootstrapped**: each of 4,000 seeded draws adds N(0, sigma^2) to the
  losses of the epochs that could be the minimum (those within 6 sigma of it, at most 24) and of
  the to epoch, picks the minimum again and measures the rise again. The draws' spread around the
  observed rise gives a bias-corrected rise (2T - mean) and the basic bootstrap interval
  ``[2T - q_hi, 2T - q_lo]``. The rise is significant when the interval's lower end is above zero.
* **Samples**: the paired interval of ``L_to - L_from`` over the samples (normal, from the
  per-sample changes) says what another evaluation set of the same size would give. It is
  reported beside, and it decides only when the curve is too short to measure its jitter (fewer
  than 6 epochs). A rise carried by at most 3 samples cannot be judged that way: a resample leaves
  all k carriers out with probability e^-k >= 2.5%, so such an interval always reaches zero; it is
  then not assessable (and not called insignificant).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lossacc_cli.analysis.rise import Rise
from lossacc_cli.analysis.run import Run

MAX_CANDIDATES = 24
"""At most this many epochs (the lowest) compete for the minimum in the draws."""

CANDIDATE_BAND = 6.0
"""... and only epochs within this many noise units of the minimum (farther ones never win)."""

MIN_EPOCHS_FOR_JITTER = 6
"""The jitter needs at least 3 third differences: 6 epochs."""

SEED = 20261
N_DRAWS = 4000


@dataclass(frozen=True)
class Significance:
    """How sure we are that the loss rose (nats).

    Attributes
    ----------
    rise : float
        The observed rise ``L_to - L_from`` over the population.
    corrected_rise : float
        The rise corrected for picking the minimum (2 T - mean of the draws).
    low, high : float
        The bias-corrected ``level`` interval of the rise (see ``basis``); ``significant`` when
        ``low > 0``.
    samples_low, samples_high : float
        The paired interval of ``L_to - L_from`` from the samples alone (normal, no picking):
        what another evaluation set of the same size would give.
    jitter : float
        Epoch-to-epoch noise of the mean-loss curve (nats; NaN with fewer than 6 epochs).
    basis : str
        What the interval counts: "epoch jitter" or (fewer than 6 epochs) "samples".
    picked : bool
        The from epoch was picked as the minimum (not given with ``--from``).
    candidates : int
        Epochs that competed for the minimum in the draws.
    few_carriers : bool
        At most 3 samples carry 80% of the increases (an interval from samples cannot judge it).
    assessable : bool
        False when no noise can be measured (fewer than 6 epochs and at most 3 carriers).
    level : float
    """

    rise: float
    corrected_rise: float
    low: float
    high: float
    samples_low: float
    samples_high: float
    jitter: float
    picked: bool
    candidates: int
    few_carriers: bool
    assessable: bool
    level: float
    basis: str = "epoch jitter"

    @property
    def significant(self) -> bool:
        return not self.assessable or self.low > 0


def epoch_jitter(losses: np.ndarray, start: int = 0, stop: int | None = None) -> float:
    """Robust epoch-to-epoch noise of a loss curve (nats; NaN below 6 epochs).

    From the third differences whose epochs lie in positions ``[start, stop]`` when there are at
    least three of them, else from all of them. For a locally quadratic trend plus independent
    noise of sd s, each third difference has sd s sqrt(20); the median absolute value is 0.6745 of
    that. What curvature remains only makes the estimate larger, i.e. the test more cautious.
    """
    if losses.shape[0] < MIN_EPOCHS_FOR_JITTER:
        return float("nan")
    third = np.diff(losses, 3)
    stop = losses.shape[0] - 1 if stop is None else stop
    window = third[max(start, 0): max(stop - 2, 0)]
    used = window if window.shape[0] >= 3 else third
    return float(np.median(np.abs(used)) / (0.6745 * math.sqrt(20.0)))


def _population_losses(run: Run, rise: Rise, epochs: list[int]) -> np.ndarray | None:
    """(n, len(epochs)) per-sample losses of the population at each epoch, or None when an epoch
    lacks some of the population's ids."""
    n_ids = len(run.ids)
    out = np.empty((rise.n, len(epochs)))
    for j, e in enumerate(epochs):
        r = run.record(e)
        pos = np.full(n_ids, -1, dtype=np.int64)
        pos[r.rows] = np.arange(r.rows.shape[0])
        at = pos[rise.rows]
        if (at < 0).any():
            return None
        out[:, j] = r.stats.loss[at]
    return out


def rise_significance(run: Run, rise: Rise, *, picked: bool, level: float = 0.95,
                      carriers_max: int = 3) -> Significance:
    """The interval of the rise ``rise.from_epoch -> rise.to_epoch`` (see the module docstring).

    ``picked``: the from epoch was chosen as the lowest-loss epoch (the minimum is re-picked in
    each draw among the epochs up to the to epoch that could win).
    """
    n = rise.n
    epochs = run.epochs
    curve = np.array([s.loss for s in run.summaries])
    from_pos, to_pos = epochs.index(rise.from_epoch), epochs.index(rise.to_epoch)
    jitter = epoch_jitter(curve, from_pos - 3, to_pos)
    d = rise.total.per_sample
    se_pair = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    z = _z(level)
    samples_low, samples_high = rise.value - z * se_pair, rise.value + z * se_pair
    carriers = rise.total.concentration[-1].count
    few = carriers <= carriers_max
    use_jitter = math.isfinite(jitter)
    use_samples = not use_jitter and not few and n > 1 and math.isfinite(se_pair)
    if not (use_samples or use_jitter):
        return Significance(rise.value, rise.value, rise.value, rise.value, samples_low, samples_high,
                            jitter, picked, 1, few, False, level, "none")
    # the epochs that could be the minimum in a draw
    scale = max(jitter if use_jitter else 0.0, se_pair if use_samples else 0.0)
    candidates = [rise.from_epoch]
    if picked:
        level_from = rise.loss_from
        near = [(s.loss, s.epoch) for s in run.summaries[: to_pos + 1]
                if s.epoch not in (rise.from_epoch, rise.to_epoch)
                and s.loss - level_from <= CANDIDATE_BAND * scale]
        candidates += [e for _, e in sorted(near)[: MAX_CANDIDATES - 1]]
    columns = candidates + [rise.to_epoch]
    losses = _population_losses(run, rise, columns)
    if losses is None:  # some epoch lacks ids of the population: compare the two epochs alone
        columns = [rise.from_epoch, rise.to_epoch]
        losses = np.column_stack([run.record(rise.from_epoch).stats.loss[rise.index_from],
                                  run.record(rise.to_epoch).stats.loss[rise.index_to]])
    means = losses.mean(axis=0)
    rng = np.random.default_rng(SEED)
    m = len(columns)
    noise = np.zeros((N_DRAWS, m))
    if use_samples:
        centred = losses - means
        cov = centred.T @ centred / (n * (n - 1))
        noise += rng.multivariate_normal(np.zeros(m), cov, size=N_DRAWS, method="eigh")
    if use_jitter:
        noise += rng.normal(0.0, jitter, size=(N_DRAWS, m))
    draws = means + noise
    observed = means[-1] - means[:-1].min()
    replicate = draws[:, -1] - draws[:, :-1].min(axis=1)
    lo_q, hi_q = np.quantile(replicate, [(1 - level) / 2, (1 + level) / 2])
    return Significance(
        rise=rise.value,
        corrected_rise=float(2 * observed - replicate.mean()),
        low=float(2 * observed - hi_q),
        high=float(2 * observed - lo_q),
        samples_low=samples_low,
        samples_high=samples_high,
        jitter=jitter,
        picked=picked,
        candidates=len(columns) - 1,
        few_carriers=few,
        assessable=True,
        level=level,
        basis="epoch jitter" if use_jitter else "samples",
    )


def _z(level: float) -> float:
    """The two-sided normal quantile (Acklam-free: bisection on erf, exact enough for a level)."""
    target = (1 + level) / 2
    lo, hi = 0.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2
