"""Name the cause of a loss rise (SPEC §5): verdicts with evidence and the share of the rise each explains.

Pure functions over the per-epoch summaries, the per-sample changes between two epochs and the
training dynamics. Every threshold is a field of :class:`Thresholds` (documented in the README).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lossacc_cli.analysis.align import common_rows
from lossacc_cli.analysis.compare import concentration
from lossacc_cli.analysis.dynamics import Dynamics, suspect_mask
from lossacc_cli.analysis.run import Run

TAIL_DRIVEN = "tail-driven"
OVERCONFIDENCE = "overconfidence"
BROAD_OVERFITTING = "broad overfitting"
LABEL_NOISE = "suspected label noise"
CLASS_SPECIFIC = "class-specific"
NO_DIVERGENCE = "no divergence"
NO_PARADOX = "no paradox: accuracy falls too"
INCONCLUSIVE = "inconclusive"

VERDICTS = (TAIL_DRIVEN, OVERCONFIDENCE, BROAD_OVERFITTING, LABEL_NOISE, CLASS_SPECIFIC, NO_DIVERGENCE,
            NO_PARADOX, INCONCLUSIVE)

# Causes that name samples or classes to act on come first when two explain about as much.
_PRIORITY = {CLASS_SPECIFIC: 0, LABEL_NOISE: 1, TAIL_DRIVEN: 2, OVERCONFIDENCE: 3, BROAD_OVERFITTING: 4}


@dataclass(frozen=True)
class Thresholds:
    """Named thresholds of the diagnosis; each can be overridden.

    min_rise_nats, min_rise_relative
        The loss counts as rising when last - best >= max(min_rise_nats, min_rise_relative * best).
    accuracy_tolerance
        Accuracy "holds" when it falls by at most this (fraction, 0.005 = half a point).
    tail_max_samples
        tail-driven: the fewest samples carrying 80% of the positive loss change are at most this
        fraction of the samples ...
    tail_max_median_share
        ... while the median loss rises by at most this fraction of the mean rise.
    overconfidence_min_explained
        overconfidence: temperature scaling at the later epoch removes at least this fraction of the
        rise, and ECE and the confidence gap grow.
    broad_min_median_share
        broad overfitting: the median loss rises by at least this fraction of the mean rise, and the
        recalibrated loss rises (temperature does not recover it).
    label_noise_min_explained
        suspected label noise: suspected label errors carry at least this fraction of the rise.
    class_min_explained, class_min_classes
        class-specific: one or two classes carry at least this fraction of the rise, in a task with at
        least ``class_min_classes`` classes.
    min_explained
        A verdict explaining less than this fraction of the rise is not given.
    tie_band
        Verdicts whose explained shares are within this band are ordered by specificity
        (class-specific, label noise, tail-driven, overconfidence, broad overfitting).
    """

    min_rise_nats: float = 0.005
    min_rise_relative: float = 0.02
    accuracy_tolerance: float = 0.005
    tail_max_samples: float = 0.05
    tail_max_median_share: float = 0.1
    overconfidence_min_explained: float = 0.5
    broad_min_median_share: float = 0.25
    label_noise_min_explained: float = 0.3
    class_min_explained: float = 0.6
    class_min_classes: int = 4
    min_explained: float = 0.2
    tie_band: float = 0.1


@dataclass(frozen=True)
class Verdict:
    """One cause. ``explained`` is the share of the loss rise it accounts for, in [0, 1] (NaN for the
    verdicts that are not causes); ``evidence`` maps a named quantity to its value (nats, fractions
    or epochs, as the name says)."""

    name: str
    explained: float
    summary: str
    evidence: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Checkpoint:
    """Which epoch to keep: refine-then-calibrate picks the lowest recalibrated loss, then its T*."""

    best_loss_epoch: int
    best_accuracy_epoch: int
    best_recalibrated_epoch: int | None
    recommended_epoch: int
    recommended_temperature: float
    loss_gain_nats: float
    accuracy_gain: float
    summary: str


@dataclass(frozen=True)
class Diagnosis:
    epoch_from: int
    epoch_to: int
    loss_from: float
    loss_to: float
    accuracy_from: float
    accuracy_to: float
    rise: float
    verdicts: tuple[Verdict, ...]
    checkpoint: Checkpoint


def _cap(x: float) -> float:
    return float(min(1.0, max(0.0, x))) if math.isfinite(x) else float("nan")


def checkpoint_advice(run: Run) -> Checkpoint:
    s = run.summaries
    best = min(s, key=lambda e: (e.loss, e.epoch))
    best_acc = min(s, key=lambda e: (-e.accuracy, e.epoch))
    recal = [e for e in s if not math.isnan(e.recalibrated_loss)]
    if not recal:
        return Checkpoint(best.epoch, best_acc.epoch, None, best.epoch, float("nan"), 0.0, 0.0,
                          f"keep epoch {best.epoch} (lowest loss); no scores to recalibrate")
    rec = min(recal, key=lambda e: (e.recalibrated_loss, e.epoch))
    gain = best.loss - rec.recalibrated_loss
    acc_gain = rec.accuracy - best.accuracy
    text = (
        f"keep epoch {rec.epoch} and divide its logits by T* = {rec.temperature:.3f}: loss "
        f"{rec.recalibrated_loss:.4f} nats, {gain:.4f} nats below epoch {best.epoch}'s {best.loss:.4f} "
        f"(the lowest raw loss), accuracy {100 * acc_gain:+.2f} points"
    )
    return Checkpoint(best.epoch, best_acc.epoch, rec.epoch, rec.epoch, rec.temperature, gain, acc_gain, text)


def diagnose(
    run: Run,
    dynamics: Dynamics,
    epoch_from: int,
    epoch_to: int,
    thresholds: Thresholds = Thresholds(),
) -> Diagnosis:
    """Verdicts for the loss change ``epoch_from -> epoch_to`` (normally lowest-loss epoch -> last)."""
    th = thresholds
    ra, rb = run.record(epoch_from), run.record(epoch_to)
    sa, sb = ra.summary, rb.summary
    advice = checkpoint_advice(run)
    rows, ia, ib = common_rows(ra, rb, len(run.ids))
    la, lb = ra.stats.loss[ia], rb.stats.loss[ib]
    n = rows.shape[0]
    d = lb - la
    rise = float(d.mean()) if n else 0.0
    acc_a, acc_b = float(ra.stats.correct[ia].mean()), float(rb.stats.correct[ib].mean())
    base = dict(epoch_from=ra.epoch, epoch_to=rb.epoch, loss_from=float(la.mean()), loss_to=float(lb.mean()),
                accuracy_from=acc_a, accuracy_to=acc_b, rise=rise, checkpoint=advice)
    if ra.epoch >= rb.epoch or rise < max(th.min_rise_nats, th.min_rise_relative * float(la.mean())):
        v = Verdict(NO_DIVERGENCE, float("nan"),
                    f"no loss rise to explain from epoch {ra.epoch} to {rb.epoch} "
                    f"({rise:+.4f} nats, accuracy {100 * (acc_b - acc_a):+.2f} points)",
                    {"loss_change_nats": rise, "accuracy_change": acc_b - acc_a})
        return Diagnosis(verdicts=(v,), **base)

    causes: list[Verdict] = []
    median_change = float(np.median(lb) - np.median(la))
    median_share = median_change / rise

    # tail-driven
    conc = concentration(d, lb, fractions=(0.5, 0.8))
    order = np.argsort(-d, kind="stable")
    tail = order[: conc[1].count]
    tail_explained = _cap(float(d[tail].sum()) / n / rise)
    tail_ok = conc[1].count <= th.tail_max_samples * n and median_share <= th.tail_max_median_share
    if tail_ok:
        causes.append(Verdict(
            TAIL_DRIVEN, tail_explained,
            f"{conc[1].count} samples ({100 * conc[1].count / n:.2f}%) carry 80% of the loss increase while the "
            f"median loss changes by {median_change:+.4f} nats",
            {"samples_50pct": conc[0].count, "samples_80pct": conc[1].count, "samples_share_80pct": conc[1].count / n,
             "median_loss_from": float(np.median(la)), "median_loss_to": float(np.median(lb)),
             "loss_to_without_80pct_set": conc[1].loss_b_without},
        ))

    # overconfidence
    if not math.isnan(sb.recalibrated_loss):
        removed = sb.loss - sb.recalibrated_loss
        oc_explained = _cap(removed / rise)
        grows = sb.ece > sa.ece and sb.overconfidence_gap > sa.overconfidence_gap and sb.temperature > 1
        if grows and oc_explained >= th.overconfidence_min_explained:
            recovers = sb.recalibrated_loss <= sa.loss
            causes.append(Verdict(
                OVERCONFIDENCE, oc_explained,
                f"temperature scaling at epoch {rb.epoch} (T* = {sb.temperature:.3f}) brings the loss from "
                f"{sb.loss:.4f} to {sb.recalibrated_loss:.4f} nats"
                + (f", at or below epoch {ra.epoch}'s {sa.loss:.4f}" if recovers else f" (epoch {ra.epoch}: {sa.loss:.4f})")
                + f"; ECE {sa.ece:.4f} -> {sb.ece:.4f}, confidence gap {sa.overconfidence_gap:+.4f} -> "
                f"{sb.overconfidence_gap:+.4f}",
                {"temperature_to": sb.temperature, "recalibrated_loss_to": sb.recalibrated_loss,
                 "loss_from": sa.loss, "recovers_best_loss": recovers, "ece_from": sa.ece, "ece_to": sb.ece,
                 "gap_from": sa.overconfidence_gap, "gap_to": sb.overconfidence_gap},
            ))

    # broad overfitting
    if not math.isnan(sb.recalibrated_loss) and not math.isnan(sa.recalibrated_loss):
        refinement_rise = sb.recalibrated_loss - sa.recalibrated_loss
        if median_share >= th.broad_min_median_share and refinement_rise > 0:
            causes.append(Verdict(
                BROAD_OVERFITTING, _cap(refinement_rise / rise),
                f"the median loss rises too ({median_change:+.4f} nats) and the recalibrated loss rises "
                f"{sa.recalibrated_loss:.4f} -> {sb.recalibrated_loss:.4f} nats: temperature does not recover it",
                {"median_loss_change": median_change, "recalibrated_loss_from": sa.recalibrated_loss,
                 "recalibrated_loss_to": sb.recalibrated_loss},
            ))
    elif median_share >= th.broad_min_median_share:
        causes.append(Verdict(
            BROAD_OVERFITTING, _cap(median_share),
            f"the median loss rises too ({median_change:+.4f} nats); no scores to test recalibration",
            {"median_loss_change": median_change},
        ))

    # suspected label noise
    suspects = suspect_mask(dynamics)[rows]
    if suspects.any():
        ln_explained = _cap(float(d[suspects].sum()) / n / rise)
        in_tail = int(suspects[tail].sum())
        if ln_explained >= th.label_noise_min_explained:
            causes.append(Verdict(
                LABEL_NOISE, ln_explained,
                f"{int(suspects.sum())} samples are predicted as one other class, confidently, in most epochs; "
                f"they carry {100 * ln_explained:.0f}% of the rise ({in_tail} of the {tail.shape[0]} samples "
                "making 80% of the increase)",
                {"suspects": int(suspects.sum()), "suspects_in_80pct_set": in_tail},
            ))

    # class-specific
    labels = ra.labels[ia]
    present = np.unique(labels)
    if present.shape[0] >= th.class_min_classes:
        contribution = np.bincount(labels, weights=d, minlength=run.n_classes) / n / rise
        top2 = np.argsort(-contribution, kind="stable")[:2]
        one, two = float(contribution[top2[0]]), float(contribution[top2].sum())
        chosen = top2[:1] if one >= th.class_min_explained else top2 if two >= th.class_min_explained else None
        if chosen is not None:
            share = _cap(float(contribution[chosen].sum()))
            names = ", ".join(_class_label(int(k), run.class_names) for k in chosen)
            causes.append(Verdict(
                CLASS_SPECIFIC, share,
                f"class{'es' if len(chosen) > 1 else ''} {names} carr{'y' if len(chosen) > 1 else 'ies'} "
                f"{100 * share:.0f}% of the rise",
                {"classes": [int(k) for k in chosen], "shares": [float(contribution[k]) for k in chosen]},
            ))

    causes = [c for c in causes if c.explained >= th.min_explained]
    causes.sort(key=lambda c: (-c.explained, _PRIORITY[c.name]))
    causes = _order_within_band(causes, th.tie_band)
    verdicts: list[Verdict] = []
    if acc_b < acc_a - th.accuracy_tolerance:
        verdicts.append(Verdict(
            NO_PARADOX, float("nan"),
            f"accuracy falls too ({100 * acc_a:.2f}% -> {100 * acc_b:.2f}%): ordinary overfitting, not the "
            "loss-up/accuracy-up puzzle",
            {"accuracy_from": acc_a, "accuracy_to": acc_b},
        ))
    if not causes:
        verdicts.append(Verdict(
            INCONCLUSIVE, float("nan"),
            f"the loss rises {rise:+.4f} nats but no single cause explains {100 * th.min_explained:.0f}% of it",
            {"loss_change_nats": rise, "median_loss_change": median_change},
        ))
    return Diagnosis(verdicts=tuple(verdicts + causes), **base)


def _order_within_band(causes: list[Verdict], band: float) -> list[Verdict]:
    """Stable reorder: a more specific cause moves ahead of a more general one explaining at most
    ``band`` more of the rise."""
    out = list(causes)
    changed = True
    while changed:
        changed = False
        for i in range(len(out) - 1):
            a, b = out[i], out[i + 1]
            if _PRIORITY[b.name] < _PRIORITY[a.name] and a.explained - b.explained <= band:
                out[i], out[i + 1] = b, a
                changed = True
    return out


def _class_label(k: int, names) -> str:
    return f"{k} ({names[k]})" if names and 0 <= k < len(names) else str(k)
