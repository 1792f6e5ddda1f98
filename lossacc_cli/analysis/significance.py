"""Is the rise real? An interval for it that is not fooled by noise or by picking the minimum.

The rise is ``T = L_to - min_e L_e``: the loss at the later epoch over the lowest loss up to it
(or over the epoch the user chose with ``--from``; then nothing is picked). What makes a per-epoch
validation loss noisy is the model moving from epoch to epoch (SGD noise) while the evaluation
set stays fixed: the curve wobbles around its trend. Picking the lowest of several wobbling epochs
biases the minimum low (the winner's curse), so "the loss rose since its minimum" overstates every
rise.

* **Jitter**: the size ``sigma`` of the wobble comes from the curve itself, as the root mean
  square of its third differences over sqrt(20): a trend that is locally quadratic (a smooth
  descent, a V around the minimum, a steady rise) leaves them near zero, independent noise of sd s
  gives them sd s sqrt(20). Measured on the epochs before the to epoch (a jump at the to epoch is
  what is judged, not noise): from three epochs before the from epoch on when that leaves at least
  three differences, else over all of them; it needs six epochs before the to epoch. The estimate's
  own uncertainty (few epochs, few differences) is carried into the interval: each draw divides
  it by a draw of its error on white noise of the same length.
* **The pick-the-minimum procedure is simulated**: the epochs not significantly above the minimum
  (within 1.645 sqrt(2) sigma of it, at most 24) are taken as tied at its level, the least
  favourable case, and the to epoch as the rise above it. Then the observed rise minus the true one
  is distributed like ``e_to - min_j e_j`` with every ``e`` N(0, sigma^2); 4,000 seeded draws of it
  give the corrected rise (T minus their mean) and the interval ``[T - q_hi, T - q_lo]``. The rise
  is significant when the interval's lower end is above zero: on simulated flat plateaus of 30
  epochs that happens in 3% of runs. (Bootstrapping around the observed curve instead
  under-corrects: its epochs are spread by the very noise, so fewer of them compete for the minimum
  than in truth; it called 19% of those plateaus a rise, and 10% without the estimate's own
  uncertainty.)
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
from lossacc_cli.metrics.epoch_summary import sorted_quantiles

MAX_CANDIDATES = 24
"""At most this many epochs (the lowest) compete for the minimum in the draws."""

TIE_BAND = 1.645 * math.sqrt(2.0)
"""... and only epochs not significantly above the minimum: within 1.645 sqrt(2) noise units of
it (a one-sided 95% test of the difference of two epochs)."""

MIN_EPOCHS_FOR_JITTER = 6
"""The jitter needs at least 3 third differences: 6 epochs."""

MAX_DIFFERENCES = 256
"""The jitter is measured on at most the last 256 third differences of the compared stretch."""

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
        The rise corrected for picking the minimum (T minus the mean of the simulated pick).
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
    def significant(self) -> bool | None:
        """True: the interval is above zero; False: it reaches zero; None: not measurable."""
        return None if not self.assessable else bool(self.low > 0)


def _third_differences(losses: np.ndarray, start: int, stop: int | None) -> np.ndarray:
    third = np.diff(losses, 3)
    stop = losses.shape[0] - 1 if stop is None else stop
    window = third[max(start, 0): max(stop - 2, 0)]
    used = window if window.shape[0] >= 3 else third
    return used[-MAX_DIFFERENCES:]


def _rms(third: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean(third * third, axis=-1) / 20.0)


def epoch_jitter(losses: np.ndarray, start: int = 0, stop: int | None = None) -> float:
    """Epoch-to-epoch noise of a loss curve (nats; NaN below 6 epochs).

    The root mean square of the third differences whose epochs lie in positions ``[start, stop]``
    when there are at least three (at most the last 256), else of all of them, over sqrt(20): for
    a locally quadratic trend plus independent noise of sd s, each third difference has sd
    s sqrt(20). What curvature remains only makes the estimate larger, the test more cautious.
    """
    if losses.shape[0] < MIN_EPOCHS_FOR_JITTER:
        return float("nan")
    return float(_rms(_third_differences(losses, start, stop)))


def jitter_ratio_draws(n_differences: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Draws of (estimated jitter / true jitter) for white noise with ``n_differences`` third
    differences: the estimate's own uncertainty, which the interval carries."""
    return _rms(np.diff(rng.normal(size=(draws, n_differences + 3)), 3, axis=1))


def _positions(run: Run, rise: Rise, epoch: int) -> np.ndarray:
    """Each population sample's row in ``epoch``'s file, -1 where it is absent."""
    r = run.record(epoch)
    pos = np.full(len(run.ids), -1, dtype=np.int64)
    pos[r.rows] = np.arange(r.rows.shape[0])
    return pos[rise.rows]


def population_curve(run: Run, rise: Rise, upto: int) -> np.ndarray:
    """The mean loss of each epoch up to position ``upto`` over the population's samples present
    at it (one population for the whole curve: an epoch holding other ids is not compared with a
    mean over different samples)."""
    n_ids = len(run.ids)
    whole = rise.n == n_ids
    out = np.empty(upto + 1)
    for j, r in enumerate(run.records[: upto + 1]):
        if whole and r.rows.shape[0] == n_ids:
            out[j] = r.summary.loss  # the epoch holds exactly the population
            continue
        at = _positions(run, rise, r.epoch)
        at = at[at >= 0]
        out[j] = float(r.stats.loss[at].mean()) if at.shape[0] else float("nan")
    return out


def curve_interval(curve: np.ndarray, from_pos: int, to_pos: int, *, picked: bool, level: float = 0.95,
                   seed: int = SEED) -> tuple[float, list[int], float, float, float]:
    """The jitter-based interval of the rise on a loss curve (the core of :func:`rise_significance`).

    Returns ``(jitter, candidate positions, corrected rise, low, high)``; the jitter is NaN (and
    the rest meaningless) below 6 epochs before ``to_pos``.
    """
    before = curve[:to_pos]
    jitter = epoch_jitter(before, from_pos - 3)
    if not math.isfinite(jitter):
        return jitter, [from_pos], float("nan"), float("nan"), float("nan")
    n_differences = _third_differences(before, from_pos - 3, None).shape[0]
    candidates = [from_pos]
    if picked:
        near = sorted((float(curve[j]), j) for j in range(to_pos) if j != from_pos
                      and math.isfinite(curve[j]) and curve[j] - curve[from_pos] <= TIE_BAND * jitter)
        candidates += [j for _, j in near[: MAX_CANDIDATES - 1]]
    means = curve[candidates + [to_pos]]
    corrected, low, high = pick_min_bootstrap(means, jitter=jitter, n_differences=n_differences, level=level,
                                              seed=seed)
    return jitter, candidates, corrected, low, high


def rise_significance(run: Run, rise: Rise, *, picked: bool, level: float = 0.95,
                      carriers_max: int = 3) -> Significance:
    """The interval of the rise ``rise.from_epoch -> rise.to_epoch`` (see the module docstring).

    ``picked``: the from epoch was chosen as the lowest-loss epoch (the minimum is re-picked in
    each draw among the epochs up to the to epoch that could win).
    """
    n = rise.n
    epochs = run.epochs
    from_pos, to_pos = epochs.index(rise.from_epoch), epochs.index(rise.to_epoch)
    d = rise.total.per_sample
    se_pair = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    z = _z(level)
    samples_low, samples_high = rise.value - z * se_pair, rise.value + z * se_pair
    few = rise.total.concentration[-1].count <= carriers_max
    curve = population_curve(run, rise, to_pos)
    jitter, candidates, corrected, low, high = curve_interval(curve, from_pos, to_pos, picked=picked, level=level)
    if math.isfinite(jitter):
        # the curve is over the population's samples present at each epoch; at the two compared
        # epochs that is the population itself, so the rise it measures is the rise
        return Significance(rise.value, corrected, low, high, samples_low, samples_high, jitter, picked,
                            len(candidates), few, True, level, "epoch jitter")
    if few or not math.isfinite(se_pair):
        return Significance(rise.value, rise.value, rise.value, rise.value, samples_low, samples_high,
                            jitter, picked, 1, few, False, level, "none")
    # fewer than 6 epochs before the to epoch: the sampling noise of the candidate epochs' means
    # (paired: the same samples), with the epochs that hold the whole population
    columns = [rise.from_epoch]
    if picked:
        near = sorted((float(curve[j]), epochs[j]) for j in range(to_pos) if j != from_pos
                      and curve[j] - curve[from_pos] <= TIE_BAND * se_pair)
        columns += [e for _, e in near[: MAX_CANDIDATES - 1]]
    columns.append(rise.to_epoch)
    positions = [_positions(run, rise, e) for e in columns]
    kept = [(e, at) for e, at in zip(columns, positions) if (at >= 0).all()]
    losses = np.column_stack([run.record(e).stats.loss[at] for e, at in kept])
    means = losses.mean(axis=0)
    centred = losses - means
    cov = centred.T @ centred / (n * (n - 1))
    corrected, low, high = pick_min_bootstrap(means, jitter=0.0, cov=cov, level=level)
    return Significance(rise.value, corrected, low, high, samples_low, samples_high, jitter, picked,
                        len(kept) - 1, few, True, level, "samples")


def pick_min_bootstrap(means: np.ndarray, *, jitter: float, cov: np.ndarray | None = None,
                       n_differences: int | None = None, level: float = 0.95, seed: int = SEED,
                       draws: int = N_DRAWS) -> tuple[float, float, float]:
    """Corrected rise and interval of ``T = means[-1] - min(means[:-1])`` (the to epoch last).

    The candidates for the minimum are taken as tied at the minimum's level (the least favourable
    case among epochs not significantly higher than it) and the to epoch as ``theta`` above it, so
    ``T - theta`` is distributed like ``e_to - min_j e_j`` with each ``e`` drawn as N(0, s^2), where
    ``s`` is the jitter divided by a draw of its own estimation error (``n_differences`` third
    differences; None: the jitter is known), plus, with ``cov``, the joint normal sampling noise
    of the means. Seeded draws give the corrected rise ``T - mean`` and ``[T - q_hi, T - q_lo]``.
    """
    rng = np.random.default_rng(seed)
    m = means.shape[0]
    noise = np.zeros((draws, m))
    if jitter > 0:
        scale = jitter if n_differences is None else jitter / jitter_ratio_draws(n_differences, draws, rng)
        noise += rng.normal(size=(draws, m)) * np.reshape(scale, (-1, 1))
    if cov is not None:
        noise += rng.multivariate_normal(np.zeros(m), cov, size=draws, method="eigh")
    observed = float(means[-1] - means[:-1].min())
    pivot = noise[:, -1] - noise[:, :-1].min(axis=1)
    lo_q, hi_q = sorted_quantiles(np.sort(pivot), [(1 - level) / 2, (1 + level) / 2])
    return float(observed - pivot.mean()), float(observed - hi_q), float(observed - lo_q)


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
