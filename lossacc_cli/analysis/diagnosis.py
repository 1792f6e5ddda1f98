"""Name the cause of a rise (SPEC §5): one decomposition, how sure we are, then the causes.

The order of the findings is fixed, and says how to read them:

1. whether there is a rise to explain at all: **inconclusive** (no sample in common), **no
   divergence** (the loss does not rise), **no significant rise** (within noise: the causes below
   are then kept apart, as what the rise would mean if it were real), **no paradox** (accuracy
   falls too: ordinary overfitting);
2. where the rise sits: **class-specific** (a class grows far more per sample than the rest), and
   who: **suspected label noise** (the samples carrying it look mislabeled beyond what clean
   labels produce);
3. the mechanism: **overconfidence** or **under-confidence** (the calibration part carries the
   rise), else what the refinement part does: **tail-driven** (a few samples) or **broad
   overfitting** (the typical sample too). When the calibration part is the mechanism, the few
   samples or the class it shows on are its location, not rival causes (SPEC §5): they are named in
   its text, not given as verdicts of their own.

When the rise is real but no cause holds, the last finding is **inconclusive** rather than a guess.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from lossacc_cli.analysis.causes import (
    CAUSES,
    CLASS_SPECIFIC,
    INCONCLUSIVE,
    NO_DIVERGENCE,
    NO_PARADOX,
    NO_SIGNIFICANT_RISE,
    OVERCONFIDENCE,
    TAIL_DRIVEN,
    UNDER_CONFIDENCE,
    RiseContext,
    Verdict,
)
from lossacc_cli.analysis.rise import Rise, decompose
from lossacc_cli.analysis.run import Run
from lossacc_cli.analysis.significance import Significance, rise_significance
from lossacc_cli.analysis.thresholds import Thresholds

NAN = float("nan")


@dataclass(frozen=True, eq=False)
class Diagnosis:
    """The findings for the rise ``from_epoch -> to_epoch``, most important first.

    ``picked`` says the from epoch was chosen as the lowest-loss epoch (not given by the user).
    When the rise is not significant, ``verdicts`` holds only what is established (no significant
    rise, and no paradox if accuracy falls) and ``if_real`` the causes it would have if it were
    real: hypotheses, not findings.
    """

    from_epoch: int
    to_epoch: int
    picked: bool
    rise: Rise | None
    significance: Significance | None
    verdicts: tuple[Verdict, ...]
    if_real: tuple[Verdict, ...] = ()

    @property
    def conditional(self) -> bool:
        return bool(self.if_real)

    @property
    def first(self) -> Verdict:
        return self.verdicts[0]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.verdicts)


def _gate(name: str, text: str, **evidence) -> Verdict:
    return Verdict(name, NAN, "", text, evidence)


def _with_location(mechanism: Verdict, where: Verdict | None) -> Verdict:
    """The calibration mechanism named with the class it shows in (SPEC §5: its location)."""
    if where is None:
        return mechanism
    return dataclasses.replace(mechanism, classes=where.classes,
                               summary=f"{mechanism.summary}; it shows in {where.summary}")


def _order(causes: list[Verdict], rise_labels: np.ndarray, th: Thresholds) -> list[Verdict]:
    """Registry order; a calibration mechanism absorbs its locations (a class, a tail); a class
    absorbs a tail that lies in it; a minor under-confidence follows the refinement mechanism."""
    names = {v.name for v in causes}
    calibration_mechanism = OVERCONFIDENCE in names or any(
        v.name == UNDER_CONFIDENCE and v.share >= th.carries for v in causes)
    if calibration_mechanism:
        absorbed = {v.name: v for v in causes if v.name in (CLASS_SPECIFIC, TAIL_DRIVEN)}
        causes = [_with_location(v, absorbed.get(CLASS_SPECIFIC)) if v.name in (OVERCONFIDENCE, UNDER_CONFIDENCE)
                  else v for v in causes if v.name not in absorbed]
    by_name = {v.name: v for v in causes}
    if CLASS_SPECIFIC in by_name and TAIL_DRIVEN in by_name:
        # the same samples seen twice: when the tail lies in the named classes, name the class
        tail, named = by_name[TAIL_DRIVEN], by_name[CLASS_SPECIFIC].classes
        if np.isin(rise_labels[tail.samples], named).mean() >= th.carries:
            causes = [v for v in causes if v is not tail]
    minor = [v for v in causes if v.name == UNDER_CONFIDENCE and v.share < th.carries]
    return [v for v in causes if v not in minor] + minor


def diagnose(
    run: Run,
    from_epoch: int,
    to_epoch: int,
    *,
    picked: bool,
    flagged_ids: np.ndarray,
    label_noise_evidence: bool,
    label_evidence: dict | None = None,
    thresholds: Thresholds = Thresholds(),
    logits: bool = True,
) -> Diagnosis:
    """The findings for the loss change ``from_epoch -> to_epoch``.

    ``flagged_ids`` is a boolean mask over the run's id table (the label-quality flags);
    ``label_noise_evidence`` whether they exceed what clean labels produce, and
    ``label_evidence`` the numbers of that test (quoted in the text).
    """
    th = thresholds
    rise = decompose(run, from_epoch, to_epoch)

    def done(verdicts, significance=None, if_real=()) -> Diagnosis:
        return Diagnosis(from_epoch, to_epoch, picked, rise, significance, tuple(verdicts), tuple(if_real))

    if rise is None:
        return done([_gate(INCONCLUSIVE, f"epochs {from_epoch} and {to_epoch} have no sample id in common: "
                                         "nothing to compare")])
    accuracy_change = rise.accuracy_to - rise.accuracy_from
    if from_epoch >= to_epoch or rise.value < max(th.min_rise_nats, th.min_rise_relative * rise.loss_from):
        text = ((f"the loss is lowest at epoch {to_epoch}, the epoch compared: loss and accuracy move together"
                 if picked else f"the two compared epochs are the same (epoch {to_epoch})")
                if from_epoch >= to_epoch else
                f"the loss does not rise from epoch {from_epoch} to {to_epoch} ({rise.value:+.4f} nats); accuracy "
                f"{100 * accuracy_change:+.2f} points")
        return done([_gate(NO_DIVERGENCE, text, loss_change_nats=rise.value, accuracy_change=accuracy_change)])
    sig = rise_significance(run, rise, picked=picked, level=th.significance_level,
                            carriers_max=th.significance_max_carriers)
    ctx = RiseContext(
        rise=rise,
        summary_from=run.record(from_epoch).summary,
        summary_to=run.record(to_epoch).summary,
        significance=sig,
        flagged=flagged_ids[rise.rows],
        label_noise_evidence=label_noise_evidence,
        n_classes=run.n_classes,
        thresholds=th,
        label_evidence=label_evidence or {},
        logits=logits,
    )
    causes = _order([v for fn in CAUSES.values() if (v := fn(ctx)) is not None], rise.labels, th)
    gates = []
    if sig.significant is False:
        gates.append(_gate(NO_SIGNIFICANT_RISE, _not_significant_text(rise, sig),
                           rise_nats=sig.rise, corrected_rise_nats=sig.corrected_rise,
                           interval_nats=[sig.low, sig.high], jitter_nats=sig.jitter))
    if accuracy_change < -th.accuracy_tolerance:
        gates.append(_gate(NO_PARADOX, f"accuracy falls too ({100 * rise.accuracy_from:.2f}% -> "
                                       f"{100 * rise.accuracy_to:.2f}%): ordinary overfitting, not the "
                                       "loss-up/accuracy-up puzzle",
                           accuracy_from=rise.accuracy_from, accuracy_to=rise.accuracy_to))
    if not causes:
        wrong = _confidently_wrong_carriers(rise, ctx.flagged, th)
        causes = [dataclasses.replace(_gate(INCONCLUSIVE, _inconclusive_text(rise, wrong.shape[0])), samples=wrong)]
    if sig.significant is False:
        return done(gates, sig, if_real=[v for v in causes if v.name != INCONCLUSIVE])
    return done(gates + causes, sig)


def _not_significant_text(rise: Rise, sig: Significance) -> str:
    parts = [f"the loss at epoch {rise.to_epoch} is {sig.rise:+.4f} nats from epoch {rise.from_epoch}'s",
             f"{sig.level:.0%} interval [{sig.low:+.4f}, {sig.high:+.4f}] nats"]
    if sig.picked and sig.candidates > 1:
        parts.append(f"corrected for picking the lowest of {sig.candidates} close epochs: {sig.corrected_rise:+.4f}")
    if sig.jitter == sig.jitter:
        parts.append(f"the curve moves by about {sig.jitter:.4f} nats from epoch to epoch")
    return "; ".join(parts)


def _confidently_wrong_carriers(rise: Rise, flagged: np.ndarray, th: Thresholds) -> np.ndarray:
    """Positions of the flagged samples (another class gets more probability than the label)
    among the few that carry 80% of the rise, largest change first; none when many carry it.
    Without evidence of label noise they are "confidently wrong: mislabeled or atypical" (SPEC §5)."""
    c80 = rise.total.concentration[-1]
    if c80.count == 0 or c80.share_of_samples > th.tail_max_samples:
        return np.zeros(0, dtype=np.int64)
    carriers = rise.total.carriers(c80.fraction)
    return carriers[flagged[carriers]]


def _inconclusive_text(rise: Rise, n_wrong: int = 0) -> str:
    c80 = rise.total.concentration[-1]
    verb = "carries" if c80.count == 1 else "carry"
    where = (f"; {c80.count} of {rise.n} samples ({c80.share_of_samples:.0%}) {verb} 80% of its per-sample "
             "increases" if c80.count else "")
    if n_wrong:
        who = ("that sample is" if c80.count == 1 else "all of them are" if n_wrong == c80.count
               else f"{n_wrong} of them are")
        where += (f", {who} confidently wrong (another "
                  "class gets more probability than the label): mislabeled or atypical, without evidence of more "
                  "wrong labels than clean labels produce")
    if rise.calibration is None:
        return (f"the loss rises {rise.value:+.4f} nats but no cause accounts for it (no scores: the "
                f"calibration and refinement parts cannot be separated){where}")
    return (f"the loss rises {rise.value:+.4f} nats: calibration part {rise.calibration.value:+.4f}, refinement "
            f"part {rise.refinement.value:+.4f}, and recalibrated, epoch {rise.to_epoch} is at "
            f"{rise.recalibrated_to:.4f} nats against epoch {rise.from_epoch}'s {rise.loss_from:.4f}; no cause "
            f"accounts for it clearly{where}")
