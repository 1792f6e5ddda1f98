"""Diagnosis -> the verdicts-first block of `analyze`, and its JSON."""

from __future__ import annotations

import math

from rich.text import Text

from lossacc_cli.analysis.diagnosis import Diagnosis


def verdict_lines(dx: Diagnosis, *, plain: bool) -> Text:
    out = Text()
    out.append(
        f"Diagnosis, epoch {dx.epoch_from} -> {dx.epoch_to}: loss {dx.loss_from:.4f} -> {dx.loss_to:.4f} nats "
        f"({dx.rise:+.4f}), accuracy {100 * dx.accuracy_from:.2f}% -> {100 * dx.accuracy_to:.2f}%\n",
        style="" if plain else "bold",
    )
    for i, v in enumerate(dx.verdicts, start=1):
        share = "" if math.isnan(v.explained) else f" (explains {100 * v.explained:.0f}% of the rise)"
        out.append(f"  {i}. {v.name.upper()}{share}: ", style="" if plain else "bold magenta")
        out.append(f"{v.summary}\n")
    out.append(f"Checkpoint: {dx.checkpoint.summary}\n")
    return out


def diagnosis_json(dx: Diagnosis) -> dict:
    return {
        "from_epoch": dx.epoch_from,
        "to_epoch": dx.epoch_to,
        "loss_from": dx.loss_from,
        "loss_to": dx.loss_to,
        "loss_change": dx.rise,
        "accuracy_from": dx.accuracy_from,
        "accuracy_to": dx.accuracy_to,
        "verdicts": [
            {"verdict": v.name, "explained_share": v.explained, "summary": v.summary, "evidence": v.evidence}
            for v in dx.verdicts
        ],
        "checkpoint": dx.checkpoint,
    }
