"""Two epochs compared: the decomposed rise and, per class, loss, accuracy and top-label ECE at
both epochs (SPEC §2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossacc_cli.analysis.rise import Rise
from lossacc_cli.analysis.rise import decompose
from lossacc_cli.analysis.run import Run
from lossacc_cli.errors import InputError
from lossacc_cli.metrics.calibration import equal_width_bins


@dataclass(frozen=True)
class ClassStats:
    """One class (by true label) over the rise's population: mean loss (nats), accuracy and the
    15-bin top-label ECE of its samples at the from and to epochs."""

    label: int
    count: int
    loss_from: float
    loss_to: float
    accuracy_from: float
    accuracy_to: float
    ece_from: float
    ece_to: float


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


def class_stats(run: Run, rise: Rise) -> tuple[ClassStats, ...]:
    """Per class, in the order of the classes' contributions to the rise."""
    sa, sb = run.record(rise.from_epoch).stats, run.record(rise.to_epoch).stats
    labels, k = rise.labels, run.n_classes
    count = np.bincount(labels, minlength=k)

    def mean_by_class(values):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.bincount(labels, weights=values.astype(np.float64), minlength=k) / count

    def per_class(stats, at):
        correct = at(stats.correct)
        return (mean_by_class(at(stats.loss)), mean_by_class(correct),
                _class_ece(at(stats.confidence), correct, labels, k))

    loss_from, acc_from, ece_from = per_class(sa, rise.at_from)
    same = rise.from_epoch == rise.to_epoch
    loss_to, acc_to, ece_to = (loss_from, acc_from, ece_from) if same else per_class(sb, rise.at_to)
    return tuple(
        ClassStats(int(c), int(count[c]), float(loss_from[c]), float(loss_to[c]), float(acc_from[c]),
                   float(acc_to[c]), float(ece_from[c]), float(ece_to[c]))
        for c in (p.label for p in rise.total.classes)
    )


@dataclass(frozen=True, eq=False)
class Comparison:
    """What `compare` (and the rise section of `analyze`) shows: the rise and its classes."""

    rise: Rise
    classes: tuple[ClassStats, ...]


def sample_columns(run: Run, rise: Rise, positions: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per population sample (all of them, or those at ``positions``): label, prediction, p[label]
    and loss at both epochs, the loss change and, with scores, its calibration and refinement parts,
    and the outcome group (an index into ``GROUPS``)."""
    at = slice(None) if positions is None else positions
    sa, sb = run.record(rise.from_epoch).stats, run.record(rise.to_epoch).stats
    ia, ib = rise.index_from[at], rise.index_to[at]
    columns = {
        "label": rise.labels[at],
        "pred_from": sa.pred[ia],
        "pred_to": sb.pred[ib],
        "p_label_from": sa.true_prob[ia],
        "p_label_to": sb.true_prob[ib],
        "loss_from": sa.loss[ia],
        "loss_to": sb.loss[ib],
        "change": rise.total.per_sample[at],
    }
    if rise.calibration is not None:
        columns["calibration_part"] = rise.calibration.per_sample[at]
        columns["refinement_part"] = rise.refinement.per_sample[at]
    columns["group"] = rise.group[at]
    return columns


def comparison(run: Run, rise: Rise) -> Comparison:
    return Comparison(rise, class_stats(run, rise))


def compare_epochs(run: Run, epoch_from: int, epoch_to: int) -> Comparison:
    """The two epochs compared over the ids present at both.

    Raises
    ------
    InputError
        The two epochs share no sample id.
    """
    rise = decompose(run, epoch_from, epoch_to)
    if rise is None:
        ra, rb = run.record(epoch_from), run.record(epoch_to)
        raise InputError(
            f"{run.path}: field 'sample_id': epochs {epoch_from} and {epoch_to} have no sample id in common "
            f"({ra.rows.shape[0]} and {rb.rows.shape[0]} samples); they cannot be compared"
        )
    return comparison(run, rise)
