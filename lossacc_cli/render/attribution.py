"""`compare`, `outliers` and the responsibility section of `analyze` -> renderables / JSON bodies."""

from __future__ import annotations

import math

from rich.console import Group
from rich.text import Text

from lossacc_cli.analysis.compare import Comparison
from lossacc_cli.analysis.dynamics import Suspect
from lossacc_cli.analysis.outliers import OutlierReport
from lossacc_cli.render.style import nats, new_table, num, pct, plural, prob


def class_name(k: int, names) -> str:
    return f"{k}:{names[k]}" if names and 0 <= k < len(names) else str(k)


def _share(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:+.1f}%"


def bar(fraction: float, width: int, *, plain: bool) -> str:
    """A horizontal bar of ``fraction`` of ``width`` cells (eighths in a terminal, '#' when plain)."""
    fraction = min(max(fraction, 0.0), 1.0)
    if plain:
        return "#" * round(fraction * width)
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    return "█" * full + ("" if part == 0 else " ▏▎▍▌▋▊▉"[part])


def groups_table(c: Comparison, *, plain: bool):
    t = new_table(
        f"Mean loss change epoch {c.epoch_a} -> {c.epoch_b}: {c.mean_change:+.4f} nats, by outcome group",
        plain=plain,
    )
    for col in ("group", "samples", "contribution (nats)", "share"):
        t.add_column(col, justify="left" if col == "group" else "right")
    for g in c.groups:
        t.add_row(g.group, str(g.count), f"{g.contribution:+.4f}", _share(g.share))
    return t


def samples_table(c: Comparison, names, *, plain: bool, title: str | None = None):
    t = new_table(title or f"Samples most responsible (largest loss increase {c.epoch_a} -> {c.epoch_b})", plain=plain)
    for col in ("id", "label", f"pred@{c.epoch_b}", f"p[label]@{c.epoch_a}", f"p[label]@{c.epoch_b}",
                f"loss@{c.epoch_a}", f"loss@{c.epoch_b}", "change", "group"):
        t.add_column(col, justify="left" if col in ("id", "group") else "right")
    for s in c.top:
        t.add_row(
            str(s.id), class_name(s.label, names), class_name(s.pred_b, names),
            prob(s.true_prob_a), prob(s.true_prob_b), nats(s.loss_a), nats(s.loss_b),
            f"{s.change:+.4f}", s.group,
        )
    return t


def classes_table(c: Comparison, names, *, top: int, plain: bool):
    t = new_table(f"Classes by contribution to the mean change {c.epoch_a} -> {c.epoch_b}", plain=plain)
    for col in ("class", "n", f"loss@{c.epoch_a}", f"loss@{c.epoch_b}", f"acc@{c.epoch_a}",
                f"acc@{c.epoch_b}", f"ECE@{c.epoch_a}", f"ECE@{c.epoch_b}", "contribution", "share"):
        t.add_column(col, justify="left" if col == "class" else "right")
    for k in c.classes[:top]:
        t.add_row(
            class_name(k.label, names), str(k.count), nats(k.loss_a), nats(k.loss_b),
            pct(k.accuracy_a), pct(k.accuracy_b), num(k.ece_a, 4), num(k.ece_b, 4),
            f"{k.contribution:+.4f}", _share(k.share),
        )
    return t


def comparison_text(c: Comparison) -> Text:
    lines = Text()
    lines.append(
        f"Epoch {c.epoch_a} -> {c.epoch_b} over {c.n_common} samples present at both: mean loss "
        f"{nats(c.loss_a)} -> {nats(c.loss_b)} nats ({c.mean_change:+.4f}); median loss "
        f"{nats(c.median_loss_a)} -> {nats(c.median_loss_b)} ({c.median_change:+.4f}); accuracy "
        f"{pct(c.accuracy_a)} -> {pct(c.accuracy_b)}\n"
    )
    if c.n_only_a or c.n_only_b:
        lines.append(f"Excluded: {c.n_only_a} ids only at epoch {c.epoch_a}, {c.n_only_b} only at {c.epoch_b}\n")
    for k in c.concentration:
        if k.count:
            lines.append(
                f"{int(k.fraction * 100)}% of the summed per-sample loss increases comes from "
                f"{plural(k.count, 'sample')} ({pct(k.share_of_samples)}); "
                f"mean loss at {c.epoch_b} without them: {nats(k.loss_b_without)} nats\n"
            )
    return lines


def suspects_table(suspects: tuple[Suspect, ...], names, *, top: int, plain: bool):
    t = new_table(
        f"Suspected label errors: {len(suspects)} samples predicted as one other class, confidently, "
        "in most epochs (lowest mean p[label] first)",
        plain=plain,
    )
    for col in ("id", "label", "predicted as", "epochs", "mean conf.", "mean p[label]"):
        t.add_column(col, justify="left" if col == "id" else "right")
    for s in suspects[:top]:
        t.add_row(str(s.id), class_name(s.label, names), class_name(s.predicted_as, names),
                  pct(s.epoch_fraction), num(s.mean_confidence, 3), prob(s.mean_true_prob))
    return t


def compare_renderable(c: Comparison, names, *, top: int, plain: bool):
    return Group(comparison_text(c), groups_table(c, plain=plain), samples_table(c, names, plain=plain),
                 classes_table(c, names, top=top, plain=plain))


def comparison_json(c: Comparison) -> dict:
    return {
        "from_epoch": c.epoch_a,
        "to_epoch": c.epoch_b,
        "n_common": c.n_common,
        "n_only_from": c.n_only_a,
        "n_only_to": c.n_only_b,
        "loss_from": c.loss_a,
        "loss_to": c.loss_b,
        "mean_change": c.mean_change,
        "median_loss_from": c.median_loss_a,
        "median_loss_to": c.median_loss_b,
        "median_change": c.median_change,
        "accuracy_from": c.accuracy_a,
        "accuracy_to": c.accuracy_b,
        "groups": list(c.groups),
        "concentration": list(c.concentration),
        "top_samples": list(c.top),
        "classes": list(c.classes),
    }


def suspects_json(suspects: tuple[Suspect, ...], top: int) -> dict:
    return {"count": len(suspects), "samples": list(suspects[:top])}


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
        t.add_row(str(s.id), class_name(s.label, names), class_name(s.pred, names),
                  prob(s.true_prob), num(s.confidence, 4), nats(s.loss))
    tail = Text(
        f"Mean loss without the {plural(rep.n_outliers, 'outlying sample')}: {nats(rep.loss_without)} nats "
        f"(with them: {nats(rep.loss)})\n"
        if rep.n_outliers
        else "No outlying samples by this rule.\n"
    )
    return Group(head, histogram_table(rep, plain=plain), t, tail)


def outliers_json(rep: OutlierReport) -> dict:
    return {
        "epoch": rep.epoch,
        "n_samples": rep.n_samples,
        "loss": rep.loss,
        "quantiles": rep.quantiles,
        "top1pct_share": rep.top1pct_share,
        "top10_share": rep.top10_share,
        "histogram": list(rep.histogram),
        "n_outliers": rep.n_outliers,
        "outliers_loss_share": rep.outliers_loss_share,
        "loss_without_outliers": rep.loss_without,
        "outliers": list(rep.outliers),
    }
