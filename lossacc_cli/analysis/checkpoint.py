"""Which checkpoint to keep: refine, then calibrate (choose by the loss after each epoch's T*)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from lossacc_cli.analysis.overview import Overview
from lossacc_cli.metrics.summary import EpochSummary

TIE = 1e-9
"""Effective losses within this (relative) are ties: the earliest epoch is kept."""


@dataclass(frozen=True)
class Checkpoint:
    """The epoch to keep and the temperature to divide its logits by.

    ``loss`` is that epoch's loss after ``temperature`` (L(T*), or L when its fit is not usable,
    then ``temperature`` is 1). The epoch and T* are both chosen on the evaluation set itself, so
    ``loss`` is optimistic; ``loss_crossfit`` measures each half of the samples at the T* fitted on
    the other half (NaN below 200 samples or without scores). ``gain`` is how far ``loss`` is below
    the lowest raw loss (epoch ``best_loss_epoch``), in nats; ``accuracy_gain`` in fractions.
    ``logits``: the scores are logits (else probabilities: divide their log by T, renormalise).
    """

    epoch: int
    temperature: float
    loss: float
    loss_crossfit: float
    accuracy: float
    best_loss_epoch: int
    best_loss: float
    gain: float
    accuracy_gain: float
    logits: bool = True

    @property
    def rescale(self) -> bool:
        return self.temperature != 1.0


def _effective(s: EpochSummary) -> tuple[float, float]:
    return (s.recalibrated_loss, s.temperature) if s.fit_usable else (s.loss, 1.0)


def checkpoint_advice(summaries: list[EpochSummary], ov: Overview, *, logits: bool = True) -> Checkpoint:
    """Keep the epoch whose loss after its own temperature is lowest (first epoch on ties).

    An epoch whose fit is not usable counts with its raw loss at T = 1, so the advice is never
    worse than the lowest raw loss.
    """
    by_epoch = {s.epoch: s for s in summaries}
    best = by_epoch[ov.best_loss_epoch]
    # ties (within float noise: a rescaled model has the same L(T*) at every scale) go to the earliest
    lowest = min(_effective(s)[0] for s in summaries)
    chosen = next(s for s in summaries if _effective(s)[0] <= lowest + TIE * max(1.0, abs(lowest)))
    loss, temperature = _effective(chosen)
    crossfit = chosen.recalibrated_loss_crossfit if chosen.fit_usable else float("nan")
    return Checkpoint(
        epoch=chosen.epoch,
        temperature=float(temperature),
        loss=float(loss),
        loss_crossfit=float(crossfit) if math.isfinite(crossfit) else float("nan"),
        accuracy=chosen.accuracy,
        best_loss_epoch=best.epoch,
        best_loss=best.loss,
        gain=float(best.loss - loss),
        accuracy_gain=float(chosen.accuracy - best.accuracy),
        logits=logits,
    )
