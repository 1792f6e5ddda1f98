"""The rise between two epochs, decomposed once and exactly (SPEC §5).

Over the samples present at both epochs (the population), with T* fitted on each whole epoch (an
epoch whose fit is not usable, T* at a search bound, counts with T = 1)::

    rise = L_to - L_from = C + R
    C = (L_to - L_to(T*_to)) - (L_from - L_from(T*_from))    calibration part
    R = L_to(T*_to) - L_from(T*_from)                          refinement part

Each part is a mean of per-sample parts (``d_i = l_i(to) - l_i(from)``, ``r_i`` the same after each
epoch's temperature, ``c_i = d_i - r_i``), so every part is located exactly: by outcome group, by
class (beside the class's share of the samples) and by sample (concentration). Shares that
partition a part sum to 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossacc_cli.analysis.align import common_rows
from lossacc_cli.analysis.run import Run
from lossacc_cli.metrics.epoch_summary import median
from lossacc_cli.metrics.ranking import largest_first, shortest_prefix

GROUPS = ("correct at both", "fixed", "broken", "wrong at both")
"""Outcome groups: fixed = wrong at the from epoch, correct at the to epoch; broken = the reverse."""

PART_NAMES = ("rise", "calibration part", "refinement part")


@dataclass(frozen=True)
class GroupPart:
    """One outcome group's part of a quantity: ``contribution = sum_{i in group} x_i / N`` (nats),
    ``share = contribution / total`` (NaN when the total is 0)."""

    group: str
    count: int
    contribution: float
    share: float


@dataclass(frozen=True)
class ClassPart:
    """One class (by label) in a quantity: its contribution ``sum_{y_i = k} x_i / N`` (nats), its
    share of the total, its share of the samples, and its samples' mean ``x_i`` (nats per sample).

    ``ratio`` = share / sample_share = the class's mean per-sample change over the population's:
    1 for a class that changes like the average sample, 2 for twice as much per sample.
    """

    label: int
    count: int
    contribution: float
    share: float
    sample_share: float
    per_sample: float
    ratio: float


@dataclass(frozen=True)
class Concentration:
    """The fewest samples whose positive per-sample values make up ``fraction`` of their sum.

    ``count`` samples (largest first) carry ``fraction`` of ``sum(max(x_i, 0))`` (the "summed
    per-sample increases" of the quantity); ``share_of_samples`` = count / N;
    ``loss_to_without`` is the mean loss at the to epoch over the other samples (nats; NaN when
    not computed or no sample is left).
    """

    fraction: float
    count: int
    share_of_samples: float
    loss_to_without: float = float("nan")


@dataclass(frozen=True, eq=False)
class Part:
    """A quantity (the rise or one of its parts) and where it sits.

    ``value`` = mean of ``per_sample`` (nats). ``increase`` = sum of its positive per-sample values
    / N (nats): the gross growth, of which ``concentration`` counts the carriers.
    """

    name: str
    value: float
    per_sample: np.ndarray
    increase: float
    groups: tuple[GroupPart, ...]
    classes: tuple[ClassPart, ...]
    concentration: tuple[Concentration, ...]

    def carriers(self, fraction: float = 0.8) -> np.ndarray:
        """Positions (in the population) of the fewest samples carrying ``fraction`` of the
        summed increases, largest first."""
        k = next((c.count for c in self.concentration if c.fraction == fraction), None)
        if k is None:
            k = concentration(self.per_sample, (fraction,))[0].count
        return largest_first(self.per_sample, k)


@dataclass(frozen=True, eq=False)
class Rise:
    """The decomposed rise from epoch ``from_epoch`` to ``to_epoch`` over ``n`` samples.

    ``rows`` are the population's rows in the run's id table; ``index_from``/``index_to`` their
    rows in each epoch's file (``in_order``: all three are 0..n-1; :meth:`at_from`/:meth:`at_to`
    then gather nothing). ``calibration``/``refinement`` are None when the epochs have no
    scores to rescale (compact form): then only ``total`` is located.
    """

    from_epoch: int
    to_epoch: int
    n: int
    n_only_from: int
    n_only_to: int
    rows: np.ndarray
    index_from: np.ndarray
    index_to: np.ndarray
    labels: np.ndarray
    group: np.ndarray
    loss_from: float
    loss_to: float
    recalibrated_from: float
    recalibrated_to: float
    median_from: float
    median_to: float
    accuracy_from: float
    accuracy_to: float
    total: Part
    calibration: Part | None
    refinement: Part | None
    in_order: bool = False

    def at_from(self, values: np.ndarray) -> np.ndarray:
        """The population's entries of a per-sample vector of the from epoch (in its file's
        order): ``values[index_from]``, or ``values`` itself, read-only, when in order."""
        return _population(values, self.index_from, self.in_order)

    def at_to(self, values: np.ndarray) -> np.ndarray:
        """The same for a vector of the to epoch."""
        return _population(values, self.index_to, self.in_order)

    @property
    def value(self) -> float:
        return self.total.value

    @property
    def median_change(self) -> float:
        return self.median_to - self.median_from

    def parts(self) -> tuple[Part, ...]:
        return tuple(p for p in (self.total, self.calibration, self.refinement) if p is not None)

    def largest_changes(self, k: int) -> np.ndarray:
        """Positions (in the population) of the ``k`` samples whose loss changed most, largest
        first; ties keep the population's order. Every table of "samples most responsible" uses it."""
        return largest_first(self.total.per_sample, k)


def _population(values: np.ndarray, index: np.ndarray, in_order: bool) -> np.ndarray:
    if not in_order:
        return values[index]
    view = values.view()
    view.flags.writeable = False  # shared with the epoch's record: never written through
    return view


def share(part: float, whole: float) -> float:
    return part / whole if whole != 0 else float("nan")


def concentration(values: np.ndarray, fractions=(0.5, 0.8), loss_to: np.ndarray | None = None
                  ) -> tuple[Concentration, ...]:
    """Minimal sets of the largest positive values reaching each fraction of their sum (ties in
    sample order); with ``loss_to``, the mean of it over the samples outside each set."""
    n = values.shape[0]
    if np.isnan(values).any():
        order = np.argsort(-values, kind="stable")
        cumulative = np.cumsum(np.maximum(values[order], 0.0))
        total = float(cumulative[-1]) if cumulative.shape[0] else 0.0
    else:
        # only the prefix of the ranking that reaches the largest fraction is ranked
        # (shortest_prefix: its running sum is the full ranking's, bit for bit); the sum of all
        # positive values is taken in sample order
        positive = np.flatnonzero(values > 0)
        increases = values[positive]
        total = float(np.sum(increases))
        prefix = shortest_prefix(increases, max(fractions) * total * (1 - 1e-12)) if total > 0 else positive[:0]
        order = positive[prefix]
        cumulative = np.cumsum(increases[prefix])
    out = []
    for fraction in fractions:
        if total <= 0:
            out.append(Concentration(fraction, 0, 0.0, _mean_without(loss_to, order[:0])))
            continue
        # the smallest k with cumulative[k-1] >= fraction * total (a hair of slack for float sums)
        k = min(int(np.searchsorted(cumulative, fraction * total * (1 - 1e-12), side="left")) + 1, n)
        out.append(Concentration(fraction, k, k / n, _mean_without(loss_to, order[:k])))
    return tuple(out)


def _mean_without(loss_to: np.ndarray | None, taken: np.ndarray) -> float:
    if loss_to is None or taken.shape[0] >= loss_to.shape[0]:
        return float("nan")
    return float((loss_to.sum() - loss_to[taken].sum()) / (loss_to.shape[0] - taken.shape[0]))


def _groups(group: np.ndarray, x: np.ndarray, total: float, counts: np.ndarray) -> tuple[GroupPart, ...]:
    n = x.shape[0]
    sums = np.bincount(group, weights=x, minlength=4)
    return tuple(
        GroupPart(name, int(counts[g]), float(sums[g] / n), share(float(sums[g] / n), total))
        for g, name in enumerate(GROUPS)
    )


def _classes(labels: np.ndarray, x: np.ndarray, total: float, counts: np.ndarray) -> tuple[ClassPart, ...]:
    n = x.shape[0]
    sums = np.bincount(labels, weights=x, minlength=counts.shape[0])
    mean_all = total
    rows = []
    for k in np.flatnonzero(counts):
        contribution = float(sums[k] / n)
        per_sample = float(sums[k] / counts[k])
        rows.append(ClassPart(
            label=int(k),
            count=int(counts[k]),
            contribution=contribution,
            share=share(contribution, total),
            sample_share=float(counts[k] / n),
            per_sample=per_sample,
            ratio=share(per_sample, mean_all),
        ))
    rows.sort(key=lambda c: (-c.contribution, c.label))
    return tuple(rows)


@dataclass(frozen=True, eq=False)
class _Population:
    """What every part of one rise is located by: each sample's label and outcome group, the
    counts of both, and the loss at the to epoch."""

    labels: np.ndarray
    group: np.ndarray
    class_counts: np.ndarray
    group_counts: np.ndarray
    loss_to: np.ndarray


def _part(name: str, x: np.ndarray, pop: _Population) -> Part:
    n = x.shape[0]
    value = float(x.mean())
    return Part(
        name=name,
        value=value,
        per_sample=x,
        increase=float(np.maximum(x, 0.0).sum() / n),
        groups=_groups(pop.group, x, value, pop.group_counts),
        classes=_classes(pop.labels, x, value, pop.class_counts),
        concentration=concentration(x, loss_to=pop.loss_to),
    )


def decompose(run: Run, from_epoch: int, to_epoch: int) -> Rise | None:
    """The rise ``from_epoch -> to_epoch`` over the ids present at both; None when they share none."""
    ra, rb = run.record(from_epoch), run.record(to_epoch)
    rows, ia, ib, in_order = common_rows(ra, rb, len(run.ids))
    n = rows.shape[0]
    if n == 0:
        return None
    sa, sb = ra.stats, rb.stats

    def at_a(values):
        return _population(values, ia, in_order)

    def at_b(values):
        return _population(values, ib, in_order)

    la, lb = at_a(sa.loss), at_b(sb.loss)
    ca, cb = at_a(sa.correct), at_b(sb.correct)
    labels = at_a(ra.labels)
    group = 2 * ~cb + ~ca  # 0 correct at both, 1 fixed, 2 broken, 3 wrong at both (GROUPS)
    pop = _Population(labels, group, np.bincount(labels, minlength=run.n_classes),
                      np.bincount(group, minlength=4), lb)
    d = lb - la
    total = _part(PART_NAMES[0], d, pop)
    calibration = refinement = None
    recal_a = recal_b = float("nan")
    if sa.recal_loss is not None and sb.recal_loss is not None:
        # an epoch whose fit is not usable (T* at a search bound) keeps its scores as they are
        ta = at_a(sa.recal_loss if ra.summary.fit_usable else sa.loss)
        tb = at_b(sb.recal_loss if rb.summary.fit_usable else sb.loss)
        r = tb - ta
        refinement = _part(PART_NAMES[2], r, pop)
        calibration = _part(PART_NAMES[1], d - r, pop)
        recal_a, recal_b = float(ta.mean()), float(tb.mean())
    median_from = median(la)
    return Rise(
        from_epoch=ra.epoch,
        to_epoch=rb.epoch,
        n=n,
        n_only_from=ra.rows.shape[0] - n,
        n_only_to=rb.rows.shape[0] - n,
        rows=rows,
        index_from=ia,
        index_to=ib,
        labels=labels,
        group=group,
        loss_from=float(la.mean()),
        loss_to=float(lb.mean()),
        recalibrated_from=recal_a,
        recalibrated_to=recal_b,
        median_from=median_from,
        median_to=median_from if ra is rb else median(lb),
        accuracy_from=float(ca.mean()),
        accuracy_to=float(cb.mean()),
        total=total,
        calibration=calibration,
        refinement=refinement,
        in_order=in_order,
    )
