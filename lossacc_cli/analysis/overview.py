"""The across-epoch overview of `analyze`: which epochs diverge, which are best by each measure."""

from __future__ import annotations

from dataclasses import dataclass

from lossacc_cli.metrics.summary import EpochSummary

LOSS_TOLERANCE = 1e-9
"""Loss differences below this (nats) are ties, not rises: float noise must not mark an epoch."""


@dataclass(frozen=True)
class Overview:
    """Epoch-level facts, each an epoch number (or a tuple of them).

    ``diverging`` are the epochs after the lowest-loss epoch whose mean loss is above that minimum
    while accuracy is at or above its value there: the loss-up/accuracy-up puzzle. (Earlier epochs
    with a higher loss are the loss coming down, not rising, so they are not marked.) ``above_baseline`` are
    the epochs whose mean loss exceeds the chance baseline H(prior). ``best_recalibrated_epoch`` ignores
    epochs whose T* lies at the search bound (None when every epoch does or there are no scores).
    """

    best_loss_epoch: int
    best_accuracy_epoch: int
    best_recalibrated_epoch: int | None
    diverging: tuple[int, ...]
    above_baseline: tuple[int, ...]


def _argbest(summaries: list[EpochSummary], key, *, maximize: bool = False) -> EpochSummary:
    # First epoch wins ties, so the answer does not depend on float noise in later epochs.
    sign = -1.0 if maximize else 1.0
    return min(summaries, key=lambda s: (sign * key(s), s.epoch))


def overview(summaries: list[EpochSummary]) -> Overview:
    """Compute the overview; ``summaries`` sorted by epoch, at least one."""
    best = _argbest(summaries, lambda s: s.loss)
    best_acc = _argbest(summaries, lambda s: s.accuracy, maximize=True)
    # A fit at the search bound (e.g. every sample correct: the loss keeps falling as T -> 0) is not a
    # usable recalibration, so it cannot be the best recalibrated epoch.
    recal = [s for s in summaries if s.fit_usable]
    best_recal = _argbest(recal, lambda s: s.recalibrated_loss).epoch if recal else None
    diverging = tuple(
        s.epoch
        for s in summaries
        if s.epoch > best.epoch
        and s.loss > best.loss + LOSS_TOLERANCE
        and s.accuracy >= best.accuracy
    )
    above = tuple(s.epoch for s in summaries if s.loss > s.baseline_loss)
    return Overview(
        best_loss_epoch=best.epoch,
        best_accuracy_epoch=best_acc.epoch,
        best_recalibrated_epoch=best_recal,
        diverging=diverging,
        above_baseline=above,
    )
