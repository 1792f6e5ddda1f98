"""Between two epochs a -> b: who made the mean loss change (SPEC §2 "between two epochs")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossacc_cli.analysis.align import common_rows
from lossacc_cli.analysis.run import Run
from lossacc_cli.errors import InputError
from lossacc_cli.metrics.calibration import equal_width_bins

GROUPS = ("correct at both", "fixed", "broken", "wrong at both")
"""Outcome groups: fixed = wrong at a, correct at b; broken = correct at a, wrong at b."""


@dataclass(frozen=True)
class GroupChange:
    """One outcome group's part of the mean change D = mean_i d_i (nats).

    ``contribution`` = sum_{i in group} d_i / N, so contributions sum to D exactly; ``share`` =
    contribution / D (NaN when D = 0; a negative share means the group moved against D).
    """

    group: str
    count: int
    contribution: float
    share: float


@dataclass(frozen=True)
class SampleChange:
    """A sample ranked by its loss change d = loss_b - loss_a (nats; higher = got worse)."""

    id: object
    label: int
    pred_a: int
    pred_b: int
    loss_a: float
    loss_b: float
    true_prob_a: float
    true_prob_b: float
    change: float
    group: str


@dataclass(frozen=True)
class Concentration:
    """The fewest samples whose positive changes make up a fraction of the positive total.

    ``count`` samples (the largest d_i first) carry ``fraction`` of sum(max(d_i, 0));
    ``loss_b_without`` is the mean loss at b over the other samples.
    """

    fraction: float
    count: int
    share_of_samples: float
    loss_b_without: float


@dataclass(frozen=True)
class ClassChange:
    """One class (by true label): its samples' loss, accuracy and top-label ECE at a and b, and its
    contribution sum_{y_i = k} d_i / N to the mean change (share = contribution / D)."""

    label: int
    count: int
    loss_a: float
    loss_b: float
    accuracy_a: float
    accuracy_b: float
    ece_a: float
    ece_b: float
    contribution: float
    share: float


@dataclass(frozen=True)
class Comparison:
    """Everything `compare` reports for epochs a -> b over the ids present at both."""

    epoch_a: int
    epoch_b: int
    n_common: int
    n_only_a: int
    n_only_b: int
    loss_a: float
    loss_b: float
    mean_change: float
    median_loss_a: float
    median_loss_b: float
    accuracy_a: float
    accuracy_b: float
    groups: tuple[GroupChange, ...]
    concentration: tuple[Concentration, ...]
    top: tuple[SampleChange, ...]
    classes: tuple[ClassChange, ...]
    positive_total: float

    @property
    def median_change(self) -> float:
        return self.median_loss_b - self.median_loss_a


def _share(part: float, whole: float) -> float:
    return part / whole if whole != 0 else float("nan")


def concentration(change: np.ndarray, loss_b: np.ndarray, fractions=(0.5, 0.8)) -> tuple[Concentration, ...]:
    """Minimal sets of largest positive changes reaching each fraction of the positive total."""
    n = change.shape[0]
    order = np.argsort(-change, kind="stable")
    positive = np.maximum(change[order], 0.0)
    total = float(positive.sum())
    cumulative = np.cumsum(positive)
    loss_total = float(loss_b.sum())
    out = []
    for fraction in fractions:
        if total <= 0:
            out.append(Concentration(fraction, 0, 0.0, loss_total / n))
            continue
        # the smallest k with cumulative[k-1] >= fraction * total (a hair of slack for float sums)
        k = int(np.searchsorted(cumulative, fraction * total * (1 - 1e-12), side="left")) + 1
        k = min(k, n)
        rest = n - k
        without = (loss_total - float(loss_b[order[:k]].sum())) / rest if rest else float("nan")
        out.append(Concentration(fraction, k, k / n, without))
    return tuple(out)


def _class_ece(confidence, correct, labels, n_classes: int, n_bins: int = 15) -> np.ndarray:
    """Top-label ECE of each class's samples (grouped by true label); NaN for absent classes."""
    cell = labels * n_bins + equal_width_bins(confidence, n_bins)
    size = n_classes * n_bins
    gap = np.abs(
        np.bincount(cell, weights=confidence, minlength=size)
        - np.bincount(cell, weights=correct.astype(np.float64), minlength=size)
    )
    per_class_n = np.bincount(labels, minlength=n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return gap.reshape(n_classes, n_bins).sum(axis=1) / per_class_n


def _per_class(labels, n_classes, d, sa, sb, ia, ib, mean_change) -> tuple[ClassChange, ...]:
    n = labels.shape[0]
    count = np.bincount(labels, minlength=n_classes)
    present = np.flatnonzero(count)

    def mean_by_class(values):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.bincount(labels, weights=values.astype(np.float64), minlength=n_classes) / count

    loss_a, loss_b = mean_by_class(sa.loss[ia]), mean_by_class(sb.loss[ib])
    acc_a, acc_b = mean_by_class(sa.correct[ia]), mean_by_class(sb.correct[ib])
    ece_a = _class_ece(sa.confidence[ia], sa.correct[ia], labels, n_classes)
    ece_b = _class_ece(sb.confidence[ib], sb.correct[ib], labels, n_classes)
    contribution = np.bincount(labels, weights=d, minlength=n_classes) / n
    rows = [
        ClassChange(
            label=int(k),
            count=int(count[k]),
            loss_a=float(loss_a[k]),
            loss_b=float(loss_b[k]),
            accuracy_a=float(acc_a[k]),
            accuracy_b=float(acc_b[k]),
            ece_a=float(ece_a[k]),
            ece_b=float(ece_b[k]),
            contribution=float(contribution[k]),
            share=_share(float(contribution[k]), mean_change),
        )
        for k in present
    ]
    rows.sort(key=lambda c: (-c.contribution, c.label))
    return tuple(rows)


def compare_epochs(run: Run, epoch_a: int, epoch_b: int, *, top: int = 10) -> Comparison:
    """Decompose the mean loss change between two epochs over the ids present at both."""
    ra, rb = run.record(epoch_a), run.record(epoch_b)
    ids_rows, ia, ib = common_rows(ra, rb, len(run.ids))
    n = ids_rows.shape[0]
    if n == 0:
        raise InputError(
            f"{run.path}: field 'sample_id': epochs {ra.epoch} and {rb.epoch} have no sample id in common "
            f"({ra.rows.shape[0]} and {rb.rows.shape[0]} samples); they cannot be compared"
        )
    sa, sb = ra.stats, rb.stats
    labels = ra.labels[ia]
    d = sb.loss[ib] - sa.loss[ia]
    mean_change = float(d.mean())
    ca, cb = sa.correct[ia], sb.correct[ib]
    group_index = np.where(ca, np.where(cb, 0, 2), np.where(cb, 1, 3))
    sums = np.bincount(group_index, weights=d, minlength=4)
    counts = np.bincount(group_index, minlength=4)
    groups = tuple(
        GroupChange(name, int(counts[g]), float(sums[g] / n), _share(float(sums[g] / n), mean_change))
        for g, name in enumerate(GROUPS)
    )
    order = np.argsort(-d, kind="stable")[:top]
    top_rows = tuple(
        SampleChange(
            id=run.ids[ids_rows[i]],
            label=int(labels[i]),
            pred_a=int(sa.pred[ia[i]]),
            pred_b=int(sb.pred[ib[i]]),
            loss_a=float(sa.loss[ia[i]]),
            loss_b=float(sb.loss[ib[i]]),
            true_prob_a=float(sa.true_prob[ia[i]]),
            true_prob_b=float(sb.true_prob[ib[i]]),
            change=float(d[i]),
            group=GROUPS[group_index[i]],
        )
        for i in order
    )
    return Comparison(
        epoch_a=ra.epoch,
        epoch_b=rb.epoch,
        n_common=n,
        n_only_a=ra.rows.shape[0] - n,
        n_only_b=rb.rows.shape[0] - n,
        loss_a=float(sa.loss[ia].mean()),
        loss_b=float(sb.loss[ib].mean()),
        mean_change=mean_change,
        median_loss_a=float(np.median(sa.loss[ia])),
        median_loss_b=float(np.median(sb.loss[ib])),
        accuracy_a=float(ca.mean()),
        accuracy_b=float(cb.mean()),
        groups=groups,
        concentration=concentration(d, sb.loss[ib]),
        top=top_rows,
        classes=_per_class(labels, run.n_classes, d, sa, sb, ia, ib, mean_change),
        positive_total=float(np.maximum(d, 0).sum()),
    )
