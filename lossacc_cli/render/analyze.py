"""`analyze` results -> rich renderables and the JSON body."""

from __future__ import annotations

import math

from rich.console import Group
from rich.text import Text

from lossacc_cli.analysis.overview import Overview
from lossacc_cli.analysis.run import Run
from lossacc_cli.render.charts import curves
from lossacc_cli.render.diagnosis import verdict_lines
from lossacc_cli.render.attribution import classes_table, comparison_text, groups_table, samples_table, suspects_table
from lossacc_cli.render.style import nats, new_table, num, pct


def epoch_table(run: Run, ov: Overview, *, plain: bool):
    t = new_table("Per-epoch metrics (losses in nats)", plain=plain)
    for name in ("epoch", "loss", "acc", "p50 loss", "p99 loss", "ECE", "T*", "recal. loss", "note"):
        t.add_column(name, justify="left" if name == "note" else "right")
    diverging = set(ov.diverging)
    for s in run.summaries:
        notes = []
        if s.epoch == ov.best_loss_epoch:
            notes.append("min loss")
        if s.epoch in diverging:
            notes.append("loss up, acc held")
        if s.loss > s.baseline_loss:
            notes.append("WORSE THAN PRIOR")
        temp = num(s.temperature) + ("!" if s.temperature_at_bound else "")
        style = "yellow" if s.epoch in diverging and not plain else None
        t.add_row(
            str(s.epoch),
            nats(s.loss),
            pct(s.accuracy),
            nats(s.loss_p50),
            nats(s.loss_p99),
            num(s.ece, 4),
            temp,
            nats(s.recalibrated_loss),
            "; ".join(notes),
            style=style,
        )
    return t


def _ranges(epochs: tuple[int, ...], all_epochs: list[int]) -> str:
    """Compress consecutive (in the run's epoch list) epochs into ranges: 12-20, 25."""
    pos = {e: i for i, e in enumerate(all_epochs)}
    parts, start, prev = [], None, None
    for e in epochs:
        if start is None:
            start = prev = e
        elif pos[e] == pos[prev] + 1:
            prev = e
        else:
            parts.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = e
    if start is not None:
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ", ".join(parts)


def summary_lines(run: Run, ov: Overview, *, plain: bool) -> Text:
    by_epoch = {s.epoch: s for s in run.summaries}
    best = by_epoch[ov.best_loss_epoch]
    acc = by_epoch[ov.best_accuracy_epoch]
    last = run.summaries[-1]
    lines = Text()
    lines.append(
        f"Lowest loss:        epoch {best.epoch}: {nats(best.loss)} nats, accuracy {pct(best.accuracy)}\n"
    )
    lines.append(
        f"Highest accuracy:   epoch {acc.epoch}: {pct(acc.accuracy)}, loss {nats(acc.loss)} nats\n"
    )
    if ov.best_recalibrated_epoch is not None:
        rec = by_epoch[ov.best_recalibrated_epoch]
        lines.append(
            f"Lowest recalibrated loss: epoch {rec.epoch}: {nats(rec.recalibrated_loss)} nats "
            f"at T* = {num(rec.temperature)}\n"
        )
    lines.append(
        f"Last epoch:         epoch {last.epoch}: {nats(last.loss)} nats, accuracy {pct(last.accuracy)}\n"
    )
    lines.append(
        f"Chance baseline:    H(prior) = {nats(last.baseline_loss)} nats "
        f"(ln K = {nats(math.log(last.n_classes))}), chance accuracy {pct(last.chance_accuracy)}\n"
    )
    if ov.diverging:
        lines.append(
            f"Loss above its minimum while accuracy is at or above its value there: "
            f"epochs {_ranges(ov.diverging, run.epochs)} ({len(ov.diverging)} of {len(run.records)})\n",
            style=None if plain else "yellow",
        )
    else:
        lines.append("No epoch has a higher loss than the minimum with accuracy at or above it.\n")
    if ov.above_baseline:
        lines.append(
            f"WARNING: mean loss is above the chance baseline at epochs "
            f"{_ranges(ov.above_baseline, run.epochs)}: on average the model is worse than "
            "always predicting the class prior, whatever its accuracy.\n",
            style=None if plain else "bold red",
        )
    return lines


def analyze_renderable(run: Run, ov: Overview, dx, comparison, suspects, *, top: int, plain: bool):
    """Verdicts first, then the evidence (curves, who is responsible), then the per-epoch table."""
    header = Text(
        f"{run.path}: {len(run.records)} epochs, {len(run.ids)} samples, {run.n_classes} classes\n"
    )
    parts = [header, verdict_lines(dx, plain=plain), summary_lines(run, ov, plain=plain)]
    if len(run.records) > 1:
        marks = [s.epoch in set(ov.diverging) for s in run.summaries]
        parts.append(curves(run.epochs, [s.loss for s in run.summaries], [s.accuracy for s in run.summaries],
                            marks, plain=plain))
    if comparison is not None:
        parts += [
            Text("Who is responsible", style="" if plain else "bold"),
            comparison_text(comparison),
            groups_table(comparison, plain=plain),
            samples_table(comparison, run.class_names, plain=plain),
            classes_table(comparison, run.class_names, top=min(top, 5), plain=plain),
        ]
    if suspects:
        parts.append(suspects_table(suspects, run.class_names, top=top, plain=plain))
    parts.append(epoch_table(run, ov, plain=plain))
    return Group(*parts)


def analyze_json(run: Run, ov: Overview) -> dict:
    diverging = set(ov.diverging)
    epochs = []
    for s in run.summaries:
        row = {
            "epoch": s.epoch,
            "n_samples": s.n_samples,
            "loss": s.loss,
            "accuracy": s.accuracy,
            "loss_p50": s.loss_p50,
            "loss_p90": s.loss_p90,
            "loss_p99": s.loss_p99,
            "loss_max": s.loss_max,
            "top1pct_share": s.top1pct_share,
            "baseline_loss": s.baseline_loss,
            "chance_accuracy": s.chance_accuracy,
            "information_gain": s.information_gain,
            "ece": s.ece,
            "adaptive_ece": s.adaptive_ece,
            "mce": s.mce,
            "classwise_ece": s.classwise_ece,
            "mean_confidence": s.mean_confidence,
            "overconfidence_gap": s.overconfidence_gap,
            "temperature": s.temperature,
            "temperature_at_bound": s.temperature_at_bound,
            "recalibrated_loss": s.recalibrated_loss,
            "n_clipped": s.n_clipped,
            "diverging": s.epoch in diverging,
            "above_baseline": s.loss > s.baseline_loss,
        }
        epochs.append(row)
    return {
        "path": run.path,
        "n_epochs": len(run.records),
        "n_samples": len(run.ids),
        "n_classes": run.n_classes,
        "class_names": list(run.class_names) if run.class_names else None,
        "epochs": epochs,
        "summary": {
            "best_loss_epoch": ov.best_loss_epoch,
            "best_accuracy_epoch": ov.best_accuracy_epoch,
            "best_recalibrated_epoch": ov.best_recalibrated_epoch,
            "diverging_epochs": list(ov.diverging),
            "above_baseline_epochs": list(ov.above_baseline),
        },
        "warnings": list(run.notes),
    }
