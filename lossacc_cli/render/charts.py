"""Small charts drawn with text: column charts over epochs (eighth-blocks in a terminal, '#' when plain)."""

from __future__ import annotations

import math

from rich.text import Text

_EIGHTHS = " ▁▂▃▄▅▆▇█"
MAX_COLUMNS = 100


def _resample(values: list[float], width: int) -> list[float]:
    if len(values) <= width:
        return values
    edges = [round(i * len(values) / width) for i in range(width + 1)]
    return [sum(values[a:b]) / (b - a) for a, b in zip(edges[:-1], edges[1:])]


def column_chart(title: str, values: list[float], marks: list[bool], *, height: int = 6, plain: bool,
                 fmt=lambda v: f"{v:.4f}") -> Text:
    """A column per epoch scaled between the series' min and max; '^' under marked epochs."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return Text(f"{title}: no values\n")
    lo, hi = min(finite), max(finite)
    span = hi - lo or 1.0
    width = min(len(values), MAX_COLUMNS)
    vals = _resample(values, width)
    mk = _resample([1.0 if m else 0.0 for m in marks], width)
    levels = [0 if not math.isfinite(v) else 1 + round((v - lo) / span * (height * 8 - 1)) for v in vals]
    out = Text()
    out.append(f"{title}\n", style="" if plain else "bold")
    label_w = max(len(fmt(hi)), len(fmt(lo)))
    for row in range(height, 0, -1):
        label = fmt(hi) if row == height else fmt(lo) if row == 1 else ""
        out.append(f"{label:>{label_w}} |")
        line = []
        for lev in levels:
            full = lev - (row - 1) * 8
            if plain:
                line.append("#" if full >= 4 else " ")
            else:
                line.append(_EIGHTHS[max(0, min(8, full))])
        out.append("".join(line) + "\n", style="" if plain else "cyan")
    out.append(" " * label_w + " +" + "-" * width + "\n")
    if any(m > 0 for m in mk):
        out.append(" " * label_w + "  " + "".join("^" if m > 0 else " " for m in mk) + "\n",
                   style="" if plain else "yellow")
    return out


def curves(epochs: list[int], loss: list[float], accuracy: list[float], marks: list[bool], *, plain: bool) -> Text:
    """Loss and accuracy over epochs, one above the other; '^' marks loss-up/accuracy-held epochs."""
    text = Text()
    span = f"epochs {epochs[0]}..{epochs[-1]}" + (f", {len(epochs)} resampled to {MAX_COLUMNS} columns"
                                                  if len(epochs) > MAX_COLUMNS else "")
    text.append_text(column_chart(f"Mean loss (nats), {span}; ^ = loss above its minimum, accuracy held",
                                  loss, marks, plain=plain))
    text.append_text(column_chart("Accuracy", accuracy, marks, plain=plain, fmt=lambda v: f"{100 * v:.2f}%"))
    return text
