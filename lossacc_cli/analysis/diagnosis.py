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
    class_min_explained, class_second_min, class_min_classes
        class-specific: one or two classes carry at least ``class_min_explained`` of the growth of the
        classes whose loss grew (the second class is named when it carries at least
        ``class_second_min``, and when two is at most ``class_max_fraction`` of the classes), in a task
        with at least ``class_min_classes`` classes.
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
    class_second_min: float = 0.15
    class_min_classes: int = 4
    class_max_fraction: float = 0.25
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
    """Refine-then-calibrate: keep the epoch whose loss after its own temperature is lowest.

    An epoch's effective loss is L(T*) when its temperature fit is usable, else L at T = 1 (no
    scores, or T* at a search bound: e.g. every sample correct, where the loss falls without limit
    as T -> 0). So the advice is never worse than the lowest raw loss.
    """
    s = run.summaries
    best = min(s, key=lambda e: (e.loss, e.epoch))
    best_acc = min(s, key=lambda e: (-e.accuracy, e.epoch))
    usable = [e for e in s if not math.isnan(e.recalibrated_loss) and not e.temperature_at_bound]
    best_recal = min(usable, key=lambda e: (e.recalibrated_loss, e.epoch)).epoch if usable else None

    def effective(e) -> tuple[float, float]:
        ok = not math.isnan(e.recalibrated_loss) and not e.temperature_at_bound
        return (e.recalibrated_loss, e.temperature) if ok else (e.loss, 1.0)

    rec = min(s, key=lambda e: (effective(e)[0], e.epoch))
    loss, temperature = effective(rec)
    gain = best.loss - loss
    acc_gain = rec.accuracy - best.accuracy
    how = f"divide its logits by T* = {temperature:.3f}" if temperature != 1.0 else "use it as it is (T = 1)"
    text = (
        f"keep epoch {rec.epoch} and {how}: loss {loss:.4f} nats, {gain:.4f} nats below epoch "
        f"{best.epoch}'s {best.loss:.4f} (the lowest raw loss), accuracy {100 * acc_gain:+.2f} points"
    )
    return Checkpoint(best.epoch, best_acc.epoch, best_recal, rec.epoch, temperature, gain, acc_gain, text)


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
    if n == 0:
        v = Verdict(INCONCLUSIVE, float("nan"),
                    f"epochs {ra.epoch} and {rb.epoch} have no sample id in common: nothing to compare", {})
        return Diagnosis(ra.epoch, rb.epoch, sa.loss, sb.loss, sa.accuracy, sb.accuracy,
                         sb.loss - sa.loss, (v,), advice)
    d = lb - la
    rise = float(d.mean()) if n else 0.0
    acc_a, acc_b = float(ra.stats.correct[ia].mean()), float(rb.stats.correct[ib].mean())
    base = dict(epoch_from=ra.epoch, epoch_to=rb.epoch, loss_from=float(la.mean()), loss_to=float(lb.mean()),
                accuracy_from=acc_a, accuracy_to=acc_b, rise=rise, checkpoint=advice)
    if ra.epoch >= rb.epoch or rise < max(th.min_rise_nats, th.min_rise_relative * float(la.mean())):
        text = (
            f"the loss is lowest at epoch {rb.epoch}, the epoch compared: loss and accuracy move together"
            if ra.epoch >= rb.epoch
            else f"no loss rise to explain from epoch {ra.epoch} to {rb.epoch} "
            f"({rise:+.4f} nats, accuracy {100 * (acc_b - acc_a):+.2f} points)"
        )
        v = Verdict(NO_DIVERGENCE, float("nan"), text,
                    {"loss_change_nats": rise, "accuracy_change": acc_b - acc_a})
        return Diagnosis(verdicts=(v,), **base)

    causes: list[Verdict] = []
    median_change = float(np.median(lb) - np.median(la))
    median_share = median_change / rise
    # Sample-level causes are measured against the gross increase (the sum of the positive per-sample
    # changes): the net rise is what is left after other samples improved, so a handful of samples
    # can "explain" several times the net rise, and shares of it would all be capped at 100%.
    gross = np.maximum(d, 0.0)
    gross_total = float(gross.sum())
    order = np.argsort(-d, kind="stable")
    conc = concentration(d, lb, fractions=(0.5, 0.8))

    # tail-driven
    tail = order[: max(1, int(th.tail_max_samples * n))]
    tail_explained = _cap(float(gross[tail].sum()) / gross_total) if gross_total > 0 else 0.0
    if conc[1].count <= th.tail_max_samples * n and median_share <= th.tail_max_median_share:
        causes.append(Verdict(
            TAIL_DRIVEN, tail_explained,
            f"{_samples(conc[1].count)} ({100 * conc[1].count / n:.2f}%) carry 80% of the summed per-sample loss "
            f"increases while the median loss changes by {median_change:+.4f} nats; mean loss at epoch {rb.epoch} "
            f"without them: {conc[1].loss_b_without:.4f} nats",
            {"samples_50pct": conc[0].count, "samples_80pct": conc[1].count, "samples_share_80pct": conc[1].count / n,
             "median_loss_from": float(np.median(la)), "median_loss_to": float(np.median(lb)),
             "loss_to_without_80pct_set": conc[1].loss_b_without},
        ))

    # overconfidence: the part of the rise that temperature scaling removes
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

    # broad overfitting: the median rises and temperature does not bring the loss back
    if median_share >= th.broad_min_median_share:
        if not math.isnan(sb.recalibrated_loss) and not math.isnan(sa.recalibrated_loss):
            refinement_rise = sb.recalibrated_loss - sa.recalibrated_loss
            if refinement_rise > 0:
                causes.append(Verdict(
                    BROAD_OVERFITTING, _cap(refinement_rise / rise),
                    f"the median loss rises too ({median_change:+.4f} nats) and the recalibrated loss rises "
                    f"{sa.recalibrated_loss:.4f} -> {sb.recalibrated_loss:.4f} nats: temperature does not recover it",
                    {"median_loss_change": median_change, "recalibrated_loss_from": sa.recalibrated_loss,
                     "recalibrated_loss_to": sb.recalibrated_loss},
                ))
        else:
            causes.append(Verdict(
                BROAD_OVERFITTING, _cap(median_share),
                f"the median loss rises too ({median_change:+.4f} nats); no scores to test recalibration",
                {"median_loss_change": median_change},
            ))

    # suspected label noise
    suspects = suspect_mask(dynamics)[rows]
    if suspects.any() and gross_total > 0:
        ln_explained = _cap(float(gross[suspects].sum()) / gross_total)
        top_set = order[: conc[1].count]
        in_tail = int(suspects[top_set].sum())
        if ln_explained >= th.label_noise_min_explained:
            causes.append(Verdict(
                LABEL_NOISE, ln_explained,
                f"{_samples(int(suspects.sum()))} predicted as one other class, confidently, in most epochs while "
                f"their label gets <= 10% probability; they carry {100 * ln_explained:.0f}% of the summed loss "
                f"increases ({in_tail} of the {top_set.shape[0]} samples making 80% of it)",
                {"suspects": int(suspects.sum()), "suspects_in_80pct_set": in_tail},
            ))

    # class-specific: one or two classes carry most of the growth (net per class, positive part)
    labels = ra.labels[ia]
    present = np.unique(labels)
    if present.shape[0] >= th.class_min_classes:
        net = np.bincount(labels, weights=d, minlength=run.n_classes)
        positive = np.maximum(net, 0.0)
        share = positive / positive.sum() if positive.sum() > 0 else positive
        top2 = np.argsort(-share, kind="stable")[:2]
        two = float(share[top2].sum())
        # Name the second class too when it carries a real part of the growth (a swap hits two classes).
        most = max(1, int(th.class_max_fraction * present.shape[0]))
        if two >= th.class_min_explained:
            chosen = top2 if float(share[top2[1]]) >= th.class_second_min and most >= 2 else top2[:1]
            if float(share[chosen].sum()) < th.class_min_explained:
                chosen = None
        else:
            chosen = None
        if chosen is not None:
            explained = _cap(float(share[chosen].sum()))
            names = ", ".join(_class_label(int(k), run.class_names) for k in chosen)
            causes.append(Verdict(
                CLASS_SPECIFIC, explained,
                f"class{'es' if len(chosen) > 1 else ''} {names} carr{'y' if len(chosen) > 1 else 'ies'} "
                f"{100 * explained:.0f}% of the loss growth of the classes whose loss grew",
                {"classes": [int(k) for k in chosen], "shares": [float(share[k]) for k in chosen],
                 "contributions_nats": [float(net[k] / n) for k in chosen]},
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


def _samples(count: int) -> str:
    return "1 sample" if count == 1 else f"{count} samples"


def _class_label(k: int, names) -> str:
    return f"{k} ({names[k]})" if names and 0 <= k < len(names) else str(k)
