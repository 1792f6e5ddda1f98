"""Small charts drawn with text: column charts over epochs (eighth-blocks in a terminal, '#' when plain)."""

from __future__ import annotations

import math

from rich.text import Text

_EIGHTHS = " ▁▂▃▄▅▆▇█"
MAX_COLUMNS = 60
"""At most this many columns (epochs are averaged into columns beyond it): fits 80 columns."""


def _resample(values: list[float], width: int) -> list[float]:
    if len(values) <= width:
        return values
    edges = [round(i * len(values) / width) for i in range(width + 1)]
    return [sum(values[a:b]) / (b - a) for a, b in zip(edges[:-1], edges[1:])]


def column_chart(title: str, values: list[float], marks: list[bool], *, height: int = 6, plain: bool,
                 fmt=lambda v: f"{v:.4f}", lo: float | None = None, hi: float | None = None) -> Text:
    """A column per epoch scaled between ``lo`` and ``hi`` (default: the series' min and max);
    values above ``hi`` are drawn full height. '^' under marked epochs."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return Text(f"{title}: no values\n")
    lo = min(finite) if lo is None else lo
    hi = max(finite) if hi is None else hi
    span = hi - lo or 1.0
    width = min(len(values), MAX_COLUMNS)
    vals = _resample(values, width)
    mk = _resample([1.0 if m else 0.0 for m in marks], width)
    cells = height * 8
    levels = [0 if not math.isfinite(v) else 1 + round(min(max((v - lo) / span, 0.0), 1.0) * (cells - 1))
              for v in vals]
    out = Text()
    out.append(f"{title}\n", style="" if plain else "bold")
    label_w = max(len(fmt(hi)), len(fmt(lo)))
    for row in range(height, 0, -1):
        label = fmt(hi) if row == height else fmt(lo) if row == 1 else ""
        out.append(f"{label:>{label_w}} |")
        line = []
        for lev in levels:
            full = lev - (row - 1) * 8
            line.append(("#" if full >= 4 else " ") if plain else _EIGHTHS[max(0, min(8, full))])
        out.append("".join(line).rstrip() + "\n", style="" if plain else "cyan")
    out.append(" " * label_w + " +" + "-" * width + "\n")
    if any(m > 0 for m in mk):
        out.append((" " * label_w + "  " + "".join("^" if m > 0 else " " for m in mk)).rstrip() + "\n",
                   style="" if plain else "yellow")
    return out


def curves(report, *, plain: bool) -> Text:
    """Loss and accuracy over epochs, one above the other, scaled to show the rise: the loss axis
    spans the losses from just before the compared from epoch on (earlier, higher losses of the
    descent are drawn full height), so a late rise of a few hundredths is visible."""
    epochs = [s.epoch for s in report.epochs]
    loss = [s.loss for s in report.epochs]
    accuracy = [s.accuracy for s in report.epochs]
    diverging = set(report.overview.diverging)
    marks = [e in diverging for e in epochs]
    start = max(0, epochs.index(report.from_epoch) - 2)
    focus = [v for v in loss[start:] if math.isfinite(v)]
    clipped = start > 0 and max(loss[:start]) > max(focus)
    span = f"epochs {epochs[0]}..{epochs[-1]}" + (f", {len(epochs)} averaged into {MAX_COLUMNS} columns"
                                                  if len(epochs) > MAX_COLUMNS else "")
    text = Text()
    title = f"Mean loss (nats), {span}; ^ = loss above its minimum, accuracy held"
    if clipped:
        title += "; earlier epochs above the scale drawn full"
    text.append_text(column_chart(title, loss, marks, plain=plain, lo=min(focus), hi=max(focus)))
    text.append_text(column_chart("Accuracy", accuracy, marks, plain=plain, fmt=lambda v: f"{100 * v:.2f}%"))
    return text
