"""`outliers` -> rich renderables (its JSON body: :mod:`.bodies`)."""

from __future__ import annotations

import math

from rich.console import Group
from rich.text import Text

from lossacc_cli.analysis.outliers import OutlierReport
from lossacc_cli.render.style import class_label, nats, new_table, num, pct, plural, prob


def bar(fraction: float, width: int, *, plain: bool) -> str:
    """A horizontal bar of ``fraction`` of ``width`` cells (eighths in a terminal, '#' when plain)."""
    fraction = min(max(fraction, 0.0), 1.0)
    if plain:
        return "#" * round(fraction * width)
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    return "█" * full + ("" if part == 0 else " ▏▎▍▌▋▊▉"[part])


def histogram_table(rep: OutlierReport, *, plain: bool):
    t = new_table(f"Per-sample loss at epoch {rep.epoch} (nats)", plain=plain)
    for col in ("loss range", "samples", "", "share of total loss"):
        t.add_column(col, justify="left" if col in ("", "loss range") else "right")
    peak = max((b.count for b in rep.histogram), default=1) or 1
    for b in rep.histogram:
        upper = "inf" if math.isinf(b.upper) else f"{b.upper:g}"
        t.add_row(f"[{b.lower:g}, {upper})", str(b.count), bar(b.count / peak, 30, plain=plain), pct(b.loss_share))
    return t


def outliers_renderable(rep: OutlierReport, names, *, plain: bool):
    q = rep.quantiles
    head = Text(
        f"Epoch {rep.epoch}: {rep.n_samples} samples, mean loss {nats(rep.loss)} nats; "
        f"p50 {nats(q['p50'])}, p90 {nats(q['p90'])}, p99 {nats(q['p99'])}, max {nats(q['max'])}\n"
        f"Top 1% of samples carry {pct(rep.top1pct_share)} of the total loss; the top 10 carry "
        f"{pct(rep.top10_share)}\n"
    )
    t = new_table(
        f"Outlying samples: the fewest highest-loss samples that carry half of the total loss: "
        f"{rep.n_outliers} of {rep.n_samples} ({pct(rep.n_outliers / rep.n_samples)}), "
        f"carrying {pct(rep.outliers_loss_share)}",
        plain=plain,
    )
    for col in ("id", "label", "predicted", "p[label]", "confidence", "loss"):
        t.add_column(col, justify="left" if col == "id" else "right")
    for s in rep.outliers:
        t.add_row(str(s.id), class_label(s.label, names), class_label(s.pred, names),
                  prob(s.true_prob), num(s.confidence, 4), nats(s.loss))
    tail = Text(
        f"Mean loss without the {plural(rep.n_outliers, 'outlying sample')}: {nats(rep.loss_without)} nats "
        f"(with them: {nats(rep.loss)})\n"
        if rep.n_outliers
        else "No outlying samples by this rule.\n"
    )
    return Group(head, histogram_table(rep, plain=plain), t, tail)
