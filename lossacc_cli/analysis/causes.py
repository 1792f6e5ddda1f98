"""The causes of a rise: one small function each, ``(RiseContext) -> Verdict | None``.

Each reads the one decomposition (:mod:`.rise`) and says whether its cause holds, with the numbers
that support it. Which verdicts are shown and in what order is decided in :mod:`.diagnosis`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from lossacc_cli.analysis.rise import Part, Rise, concentration
from lossacc_cli.analysis.significance import Significance
from lossacc_cli.analysis.thresholds import Thresholds
from lossacc_cli.metrics.summary import EpochSummary

OVERCONFIDENCE = "overconfidence"
UNDER_CONFIDENCE = "under-confidence"
TAIL_DRIVEN = "tail-driven"
BROAD_OVERFITTING = "broad overfitting"
LABEL_NOISE = "suspected label noise"
CLASS_SPECIFIC = "class-specific"
NO_DIVERGENCE = "no divergence"
NO_PARADOX = "no paradox: accuracy falls too"
NO_SIGNIFICANT_RISE = "no significant rise"
INCONCLUSIVE = "inconclusive"

VERDICTS = (OVERCONFIDENCE, UNDER_CONFIDENCE, TAIL_DRIVEN, BROAD_OVERFITTING, LABEL_NOISE, CLASS_SPECIFIC,
            NO_DIVERGENCE, NO_PARADOX, NO_SIGNIFICANT_RISE, INCONCLUSIVE)


@dataclass(frozen=True, eq=False)
class Verdict:
    """One finding. ``share`` is a share of the quantity named by ``share_of`` (NaN for the
    findings that are not causes); ``evidence`` maps a named number to its value (nats, fractions
    or epochs, as the name says); ``samples`` are positions in the rise's population (largest
    change first) and ``classes`` labels, where the finding is located."""

    name: str
    share: float
    share_of: str
    summary: str
    evidence: dict = field(default_factory=dict)
    samples: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    classes: tuple[int, ...] = ()


@dataclass(frozen=True, eq=False)
class RiseContext:
    """What every cause reads: the decomposed rise, the two epochs' summaries, how sure we are,
    and the label-quality flags over the rise's population."""

    rise: Rise
    summary_from: EpochSummary
    summary_to: EpochSummary
    significance: Significance
    flagged: np.ndarray
    label_noise_evidence: bool
    n_classes: int
    thresholds: Thresholds
    label_evidence: dict = field(default_factory=dict)
    logits: bool = True


def _scores(ctx: RiseContext) -> str:
    return "logits" if ctx.logits else "log-probabilities"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _p(value: float) -> str:
    return "p < 1e-300" if value < 1e-300 else f"p = {value:.1e}"


def _samples(k: int) -> str:
    return f"{k} sample" if k == 1 else f"{k} samples"


def _wrong_at_to(rise: Rise, positions: np.ndarray) -> int:
    """How many of these samples are wrong at the to epoch (wrong at both, or broken)."""
    return int((rise.group[positions] >= 2).sum())


def location(ctx: RiseContext, part: Part) -> str:
    """Where a part sits: a few samples (how many wrong), or spread over many."""
    c80 = part.concentration[-1]
    if c80.count == 0:
        return "no sample's value grows"
    carriers = part.carriers(0.8)
    if c80.count <= max(1.0, ctx.thresholds.tail_max_samples * ctx.rise.n):
        wrong = _wrong_at_to(ctx.rise, carriers)
        return (f"80% of its per-sample increases come from {_samples(c80.count)} "
                f"({wrong} wrong at epoch {ctx.rise.to_epoch})")
    return f"spread: 80% of its per-sample increases come from {_samples(c80.count)} ({_pct(c80.share_of_samples)})"


def overconfidence(ctx: RiseContext) -> Verdict | None:
    """The calibration part carries the rise and recalibrating the to epoch reaches the from
    epoch's loss (SPEC §5); where it shows is its location, not a rival cause."""
    rise, sb, th = ctx.rise, ctx.summary_to, ctx.thresholds
    cal = rise.calibration
    if cal is None or not sb.fit_usable or sb.temperature <= 1.0:
        return None
    share = cal.value / rise.value
    recovers = rise.recalibrated_to <= rise.loss_from
    if share < th.carries or not recovers:
        return None
    text = (f"the calibration part carries the rise: dividing epoch {rise.to_epoch}'s {_scores(ctx)} by "
            f"T* = {sb.temperature:.3f} brings its loss from {rise.loss_to:.4f} to {rise.recalibrated_to:.4f} nats, "
            f"at or below epoch {rise.from_epoch}'s {rise.loss_from:.4f}; {location(ctx, cal)}")
    return Verdict(OVERCONFIDENCE, share, "rise", text, {
        "calibration_part_nats": cal.value, "refinement_part_nats": _value(rise.refinement),
        "temperature_to": sb.temperature, "temperature_from": ctx.summary_from.temperature,
        "recalibrated_loss_to": rise.recalibrated_to, "loss_from": rise.loss_from,
        "samples_80pct_of_calibration_increases": cal.concentration[-1].count,
    }, samples=cal.carriers(0.8))


def under_confidence(ctx: RiseContext) -> Verdict | None:
    """T* < 1 at the to epoch (sharpening lowers the loss) and the calibration part grows."""
    rise, sb = ctx.rise, ctx.summary_to
    cal = rise.calibration
    if cal is None or not sb.fit_usable or sb.temperature >= 1.0 or cal.value <= 0:
        return None
    share = cal.value / rise.value
    text = (f"T* = {sb.temperature:.3f} < 1 at epoch {rise.to_epoch}: the model is less confident than it is "
            f"right, and sharpening its {_scores(ctx)} (dividing by T*) lowers the loss from {rise.loss_to:.4f} to "
            f"{rise.recalibrated_to:.4f} nats; the calibration part (growing under-confidence) is {_pct(share)} "
            "of the rise")
    return Verdict(UNDER_CONFIDENCE, share, "rise", text, {
        "calibration_part_nats": cal.value, "temperature_to": sb.temperature,
        "temperature_from": ctx.summary_from.temperature, "recalibrated_loss_to": rise.recalibrated_to,
    }, samples=cal.carriers(0.8))


def _remaining(rise: Rise) -> Part:
    """The rise that recalibration leaves: the refinement part (the whole rise without scores)."""
    return rise.refinement if rise.refinement is not None else rise.total


def _value(part: Part | None) -> float:
    return float("nan") if part is None else part.value


def tail_driven(ctx: RiseContext) -> Verdict | None:
    """A few samples carry the rise, recalibration leaves it, and the median loss holds.

    The carriers are counted on the per-sample change itself: the refinement part of each sample
    also moves with the two epochs' temperatures, which spreads it over every sample.
    """
    rise, th = ctx.rise, ctx.thresholds
    part = _remaining(rise)
    k_all = rise.total.concentration[-1].count
    if part.value < th.refinement_min_share * rise.value or k_all == 0 or k_all > max(1.0, th.tail_max_samples * rise.n):
        return None
    if rise.median_change > th.tail_max_median_share * rise.value:
        return None
    share = part.value / rise.value
    carriers = rise.total.carriers(0.8)
    wrong = _wrong_at_to(rise, carriers)
    text = (f"{_samples(k_all)} ({wrong} wrong at epoch {rise.to_epoch}) {'carries' if k_all == 1 else 'carry'} "
            "80% of the summed per-sample "
            f"increases while the median loss changes by {rise.median_change:+.4f} nats")
    if rise.refinement is not None:
        text += f"; the refinement part (what recalibration leaves) is {_pct(share)} of the rise"
        text += (f" (recalibrated, epoch {rise.to_epoch} is at {rise.recalibrated_to:.4f} nats against epoch "
                 f"{rise.from_epoch}'s {rise.loss_from:.4f})")
    return Verdict(TAIL_DRIVEN, share, "rise", text, {
        "samples_80pct_of_increases": k_all,
        "median_loss_from": rise.median_from, "median_loss_to": rise.median_to,
        "refinement_part_nats": _value(rise.refinement), "calibration_part_nats": _value(rise.calibration),
    }, samples=carriers)


def broad_overfitting(ctx: RiseContext) -> Verdict | None:
    """The median loss rises too and recalibration does not bring the loss back."""
    rise, th = ctx.rise, ctx.thresholds
    part = _remaining(rise)
    if part.value < th.refinement_min_share * rise.value or rise.median_change < th.broad_min_median_share * rise.value:
        return None
    share = part.value / rise.value
    text = (f"the median loss rises too ({rise.median_from:.4f} -> {rise.median_to:.4f} nats) and "
            + (f"the refinement part (what recalibration leaves) is {_pct(share)} of the rise"
               if rise.refinement is not None else "there are no scores to test recalibration")
            + f"; {location(ctx, part)}")
    return Verdict(BROAD_OVERFITTING, share, "rise", text, {
        "median_loss_from": rise.median_from, "median_loss_to": rise.median_to,
        "refinement_part_nats": _value(rise.refinement), "calibration_part_nats": _value(rise.calibration),
    }, samples=part.carriers(0.8))


def _spread(rise: Rise, label: int) -> tuple[int, float]:
    """Carriers of 80% of one class's per-sample increases, and their share of the class."""
    mask = rise.labels == label
    count = concentration(rise.total.per_sample[mask], (0.8,))[0].count
    return count, count / max(int(mask.sum()), 1)


def class_specific(ctx: RiseContext) -> Verdict | None:
    """One or two classes grow far more per sample than the rest, spread over their samples."""
    rise, th = ctx.rise, ctx.thresholds
    if ctx.n_classes < th.class_min_classes:
        return None
    named = []
    for c in rise.total.classes:
        if len(named) == th.class_max_named or c.contribution <= 0:
            break
        carriers, spread = _spread(rise, c.label)
        if c.ratio >= th.class_min_ratio and spread >= th.class_min_spread and carriers >= 3:
            named.append((c, carriers))
    share = sum(c.share for c, _ in named)
    if not named or share < th.class_min_share:
        return None
    parts = "; ".join(
        f"class {c.label}: {_pct(c.share)} of the rise from {_pct(c.sample_share)} of the samples "
        f"({c.ratio:.1f}x the average per-sample change, spread over {k} of its {c.count} samples)"
        for c, k in named)
    return Verdict(CLASS_SPECIFIC, share, "rise", parts, {
        "classes": [c.label for c, _ in named], "shares_of_rise": [c.share for c, _ in named],
        "shares_of_samples": [c.sample_share for c, _ in named],
        "per_sample_change_nats": [c.per_sample for c, _ in named],
    }, classes=tuple(c.label for c, _ in named))


def label_noise(ctx: RiseContext) -> Verdict | None:
    """The samples carrying the rise look mislabeled, by evidence beyond what clean labels with
    an overconfident model produce (the label-quality evidence test)."""
    rise, th = ctx.rise, ctx.thresholds
    if not ctx.label_noise_evidence or not ctx.flagged.any():
        return None
    increases = np.maximum(rise.total.per_sample, 0.0)
    total = float(increases.sum())
    share = float(increases[ctx.flagged].sum()) / total if total > 0 else 0.0
    if share < th.label_noise_min_share:
        return None
    flagged = np.flatnonzero(ctx.flagged)
    flagged = flagged[np.argsort(-rise.total.per_sample[flagged], kind="stable")]
    k = int(flagged.shape[0])
    ev = ctx.label_evidence
    text = (f"{_samples(k)} whose labels look wrong (the model gives another class more probability than "
            f"their label) {'carries' if k == 1 else 'carry'} {_pct(share)} of the summed per-sample increases")
    if ev.get("tested"):
        text += (f"; at epoch {ev['epoch']}, the least overfitted, about {ev['count']:.0f} labels look replaced by "
                 f"another class, more than clean labels produce (likelihood-ratio test, {_p(ev['p_value'])})")
    return Verdict(LABEL_NOISE, share, "summed per-sample increases", text, {
        "flagged_in_population": k, "test_epoch": ev.get("epoch"), "estimated_wrong_labels": ev.get("count"),
        "p_value": ev.get("p_value"),
    }, samples=flagged)


Cause = Callable[[RiseContext], "Verdict | None"]

CAUSES: dict[str, Cause] = {
    CLASS_SPECIFIC: class_specific,
    LABEL_NOISE: label_noise,
    OVERCONFIDENCE: overconfidence,
    UNDER_CONFIDENCE: under_confidence,
    TAIL_DRIVEN: tail_driven,
    BROAD_OVERFITTING: broad_overfitting,
}
"""The registry, in the order the verdicts are shown (see :func:`~.diagnosis.diagnose`)."""
