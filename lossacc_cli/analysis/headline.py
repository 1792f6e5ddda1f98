"""The one plain sentence that opens `analyze`: the cause, then the next step."""

from __future__ import annotations

import numpy as np

from lossacc_cli.analysis.causes import (
    BROAD_OVERFITTING,
    CLASS_SPECIFIC,
    INCONCLUSIVE,
    LABEL_NOISE,
    NO_DIVERGENCE,
    NO_PARADOX,
    NO_SIGNIFICANT_RISE,
    OVERCONFIDENCE,
    TAIL_DRIVEN,
    UNDER_CONFIDENCE,
    Verdict,
)
from lossacc_cli.analysis.checkpoint import Checkpoint
from lossacc_cli.analysis.diagnosis import Diagnosis

IDS_IN_HEADLINE = 3


def _samples(k: int) -> str:
    return f"{k} sample" if k == 1 else f"{k} samples"


def keep(ck: Checkpoint) -> str:
    """The next step for the checkpoint."""
    if not ck.rescale:
        return f"Keep epoch {ck.epoch}."
    what = "its logits" if ck.logits else "the log of its probabilities (then renormalise)"
    sharpen = " (T < 1 sharpens them)" if ck.temperature < 1 else ""
    return f"Keep epoch {ck.epoch} and divide {what} by {ck.temperature:.2f}{sharpen}."


def _ids(dx: Diagnosis, v: Verdict, ids: np.ndarray) -> str:
    positions = v.samples[:IDS_IN_HEADLINE]
    shown = ", ".join(str(i) for i in ids[dx.rise.rows[positions]])
    more = v.samples.shape[0] - positions.shape[0]
    return shown + (f" and {more} more" if more > 0 else "")


def _class(k: int, names) -> str:
    return f"class {k} ({names[k]})" if names and 0 <= k < len(names) else f"class {k}"


def _wrong_count(dx: Diagnosis, v: Verdict) -> int:
    return int((dx.rise.group[v.samples] >= 2).sum())


def cause_phrase(dx: Diagnosis, v: Verdict, ids: np.ndarray, names) -> str:
    """What the cause is, as the subject of a sentence (no next step)."""
    n = dx.rise.n if dx.rise is not None else 0
    if v.name == OVERCONFIDENCE:
        k = v.samples.shape[0]
        where = f", mostly on {_samples(k)} it gets wrong" if 0 < k <= 0.05 * n and _wrong_count(dx, v) == k else ""
        if v.classes:
            where += f", in {' and '.join(_class(c, names) for c in v.classes)}"
        return f"the rise is overconfidence: the model grew more confident than it is right{where}"
    if v.name == UNDER_CONFIDENCE:
        return ("the rise is under-confidence: the model grew less confident than it is right "
                f"(T* = {v.evidence['temperature_to']:.2f} < 1)")
    if v.name == TAIL_DRIVEN:
        k = v.samples.shape[0]
        return (f"the rise comes from a few samples the model gets more and more wrong while the typical "
                f"sample's loss held or fell: {_samples(k)} {'carries' if k == 1 else 'carry'} 80% of the "
                f"per-sample increases (ids {_ids(dx, v, ids)})")
    if v.name == BROAD_OVERFITTING:
        return "the rise is overfitting: the typical sample's loss rises too, and recalibration does not bring it back"
    if v.name == CLASS_SPECIFIC:
        classes = " and ".join(_class(k, names) for k in v.classes)
        share = sum(v.evidence["shares_of_samples"])
        return f"the rise comes from {classes}: {v.share:.0%} of it from {share:.0%} of the samples"
    if v.name == LABEL_NOISE:
        k = v.samples.shape[0]
        return (f"the rise comes from {_samples(k)} whose labels look wrong ({v.share:.0%} of the per-sample "
                f"increases): the model confidently predicts another class for them (ids {_ids(dx, v, ids)})")
    return v.summary


def _next_step(dx: Diagnosis, v: Verdict, ck: Checkpoint) -> str:
    if v.name == LABEL_NOISE:
        return "Check their labels; " + keep(ck)[0].lower() + keep(ck)[1:]
    if v.name == TAIL_DRIVEN:
        return "Inspect them (mislabeled or atypical); " + keep(ck)[0].lower() + keep(ck)[1:]
    if v.name == CLASS_SPECIFIC:
        return "Look at those classes' samples and labels; " + keep(ck)[0].lower() + keep(ck)[1:]
    return keep(ck)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def headline(dx: Diagnosis, ck: Checkpoint, ids: np.ndarray, names=None, n_epochs: int = 2) -> str:
    """One plain sentence naming the cause, then the next step."""
    first = dx.first
    causes = [v for v in dx.verdicts + dx.if_real if v.name not in (NO_SIGNIFICANT_RISE, NO_PARADOX)]
    cause = causes[0] if causes else None
    if first.name == NO_DIVERGENCE:
        if n_epochs == 1:
            return f"One epoch only: there is no rise to explain across epochs. {keep(ck)}"
        if dx.from_epoch >= dx.to_epoch:
            if not dx.picked:
                return f"Nothing to compare: the two epochs given are the same (epoch {dx.to_epoch}). {keep(ck)}"
            return (f"No divergence: the loss is lowest at epoch {dx.to_epoch}, the later epoch compared. "
                    f"{keep(ck)}")
        return f"No divergence: the loss does not rise after epoch {dx.from_epoch}. {keep(ck)}"
    if first.name == INCONCLUSIVE:
        if first.samples.shape[0]:
            return (f"Inconclusive: {first.summary}. Inspect them (ids {_ids(dx, first, ids)}); "
                    f"{keep(ck)[0].lower() + keep(ck)[1:]}")
        return f"Inconclusive: {first.summary}. {keep(ck)}"
    if first.name == NO_SIGNIFICANT_RISE:
        sig = dx.significance
        text = (f"No significant rise: the loss at epoch {dx.to_epoch} is {sig.rise:+.4f} nats from epoch "
                f"{dx.from_epoch}'s, within the noise ({sig.level:.0%} interval {sig.low:+.4f} to {sig.high:+.4f} nats)")
        if cause is not None and cause.name != INCONCLUSIVE:
            text += f"; if it were real, {cause_phrase(dx, cause, ids, names)}"
        return f"{text}. {keep(ck)}"
    if first.name == NO_PARADOX:
        text = (f"No paradox: accuracy falls too ({100 * dx.rise.accuracy_from:.1f}% -> "
                f"{100 * dx.rise.accuracy_to:.1f}%), so this is ordinary overfitting")
        if cause is not None and cause.name != INCONCLUSIVE:
            text += f"; {cause_phrase(dx, cause, ids, names)}"
        return f"{text}. {keep(ck)}"
    if first.name == INCONCLUSIVE or cause is None:
        return f"Inconclusive: {first.summary}. {keep(ck)}"
    text = _capital(cause_phrase(dx, cause, ids, names))
    if dx.significance is not None and dx.significance.significant is None:
        text += " (whether the rise is real cannot be measured: too few epochs and too few samples carry it)"
    return f"{text}. {_next_step(dx, cause, ck)}"
