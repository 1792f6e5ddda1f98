"""AnalyzeReport -> the terminal view of `analyze` (a rich renderable; nothing is printed here).

Order: the headline, the rise and how sure we are, the findings with their evidence, the
checkpoint; then the pictures and tables behind them; the headline again at the end, so it is on
screen when the output stops. ``brief`` keeps the first part only.
"""

from __future__ import annotations

import math

from rich.console import Group
from rich.text import Text

from lossacc_cli.render.charts import curves
from lossacc_cli.render.rise import rise_lines, rise_section
from lossacc_cli.render.style import class_label, gap, nats, new_table, num, paragraph, pct, plural, prob, share

MAX_EPOCH_ROWS = 40
"""A longer run shows its first, last and most telling epochs in the terminal (JSON has all)."""


def header(report) -> Text:
    return Text(f"{report.path}: {plural(report.n_epochs, 'epoch')}, {plural(report.n_samples, 'sample')}, "
                f"{plural(report.n_classes, 'class')}")


def headline_text(report, *, plain: bool):
    return paragraph(report.headline, style="" if plain else "bold")


def _finding_lines(verdicts, *, plain: bool) -> list:
    items = []
    for i, v in enumerate(verdicts, start=1):
        of = f" ({share(v.share)} of the {v.share_of})" if v.share_of and math.isfinite(v.share) else ""
        line = Text()
        line.append(f"{i}. {v.name.upper()}{of}: ", style="" if plain else "bold magenta")
        line.append(v.summary)
        items.append(paragraph(line, 2))
    return items


def findings(report, *, plain: bool) -> Group:
    dx = report.diagnosis
    items = [Text("Findings", style="" if plain else "bold"), *_finding_lines(dx.verdicts, plain=plain)]
    if dx.if_real:
        items += [Text("If the rise were real (hypotheses, not findings)", style="" if plain else "bold"),
                  *_finding_lines(dx.if_real, plain=plain)]
    return Group(*items)


def checkpoint_text(report):
    ck = report.checkpoint
    what = "its logits" if ck.logits else "the log of its probabilities"
    how = f"divide {what} by T* = {ck.temperature:.3f}" if ck.rescale else "use it as it is (T = 1)"
    text = (f"Checkpoint: keep epoch {ck.epoch} and {how}: loss {nats(ck.loss)} nats, "
            f"{ck.gain:.4f} below epoch {ck.best_loss_epoch}'s {nats(ck.best_loss)} (the lowest raw loss), "
            f"accuracy {100 * ck.accuracy_gain:+.2f} points. The epoch and T* are chosen on this evaluation set")
    if math.isfinite(ck.loss_crossfit):
        text += f"; with T* fitted on one half of it and the loss measured on the other: {nats(ck.loss_crossfit)} nats"
    return paragraph(text + ".")


def _epoch_rows(report) -> list[int]:
    """Which epochs the terminal table shows (all of them, up to MAX_EPOCH_ROWS)."""
    epochs = [s.epoch for s in report.epochs]
    if len(epochs) <= MAX_EPOCH_ROWS:
        return epochs
    keep = set(epochs[:3]) | set(epochs[-6:])
    for e in (report.overview.best_loss_epoch, report.checkpoint.epoch, report.from_epoch, report.to_epoch):
        i = epochs.index(e)
        keep |= set(epochs[max(0, i - 2): i + 3])
    step = max(1, len(epochs) // (MAX_EPOCH_ROWS - len(keep))) if len(keep) < MAX_EPOCH_ROWS else len(epochs)
    keep |= set(epochs[::step])
    return sorted(keep)


def epoch_table(report, *, plain: bool):
    shown = _epoch_rows(report)
    hidden = report.n_epochs - len(shown)
    title = "Per epoch (losses in nats)" + (f"; {hidden} epochs not shown, --format json has all" if hidden else "")
    t = new_table(title, plain=plain)
    for name in ("epoch", "loss", "acc", "p50", "p99", "ECE", "T*", "L(T*)", "note"):
        t.add_column(name, justify="left" if name == "note" else "right", no_wrap=True)
    diverging = set(report.overview.diverging)
    show = set(shown)
    for s in report.epochs:
        if s.epoch not in show:
            continue
        notes = []
        if s.epoch == report.overview.best_loss_epoch:
            notes.append("min")
        if s.epoch in diverging:
            notes.append("*")
        if s.epoch == report.checkpoint.epoch:
            notes.append("keep")
        if s.loss > s.baseline_loss:
            notes.append("!prior")
        t.add_row(str(s.epoch), nats(s.loss), pct(s.accuracy), nats(s.loss_p50), nats(s.loss_p99), num(s.ece, 4),
                  num(s.temperature, 2) + ("!" if s.temperature_at_bound else ""), nats(s.recalibrated_loss),
                  " ".join(notes), style="yellow" if s.epoch in diverging and not plain else None)
    return t


def epoch_legend(report):
    last = report.epochs[-1]
    return paragraph(
        f"p50/p99: median/99th-percentile loss; T*: fitted temperature (! at the search bound); L(T*): loss "
        f"after dividing by T*; min: lowest loss; *: loss above its minimum with accuracy held or up; keep: the "
        f"checkpoint; !prior: loss above the chance baseline H(prior) = {nats(last.baseline_loss)} nats "
        f"(ln K = {nats(math.log(last.n_classes))}; chance accuracy {pct(last.chance_accuracy)})", 2, style="dim")


def baseline_warning(report, *, plain: bool):
    above = report.overview.above_baseline
    if not above:
        return None
    return paragraph(f"WARNING: the mean loss is above the chance baseline at {len(above)} epoch(s) (first: "
                f"{above[0]}): on average the model is worse than always predicting the class prior, whatever "
                "its accuracy.", style="" if plain else "bold red")


def label_issues_table(report, *, top: int, plain: bool):
    lq = report.labels
    rows = lq.flagged_rows()
    if rows.shape[0] == 0:
        return None
    names = report.class_names
    if lq.noise:
        ev = lq.evidence
        what = (f"Suspected label errors: {rows.shape[0]} samples; at epoch {ev.epoch} about {ev.count:.0f} "
                f"labels look replaced, more than clean labels produce (p = {ev.p_value:.1e})")
    else:
        what = (f"Confidently wrong, mislabeled or atypical (inspect these ids): {rows.shape[0]} samples the "
                "model gives more probability to another class than to their label")
    more = f"; {rows.shape[0] - top} more in --format json" if rows.shape[0] > top else ""
    t = new_table(f"{what}; lowest label score first{more}", plain=plain)
    for col in ("id", "label", "likely", "p[label]", "p[likely]", "score"):
        t.add_column(col, justify="left" if col == "id" else "right", overflow="fold", no_wrap=col != "id")
    for i in rows[:top]:
        t.add_row(str(report.ids[i]), class_label(int(lq.labels[i]), names), class_label(int(lq.likely_class[i]), names),
                  prob(float(lq.p_label[i])), prob(float(lq.p_other[i])), num(float(lq.score[i]), 4))
    return t


def render(report, *, top: int = 10, plain: bool, brief: bool = False) -> Group:
    """The terminal view of ``report``; ``plain`` for pipes and files (no colour, no boxes)."""
    dx = report.diagnosis
    parts = [header(report), gap(), headline_text(report, plain=plain), gap()]
    compared = dx.rise is not None and dx.from_epoch != dx.to_epoch
    if compared:
        parts += [rise_lines(dx.rise, dx.significance, picked=dx.picked), gap()]
    parts += [findings(report, plain=plain), gap(), checkpoint_text(report)]
    warning = baseline_warning(report, plain=plain)
    if warning is not None:
        parts += [gap(), warning]
    if brief:
        return Group(*parts)
    if report.n_epochs > 1:
        chart = curves(report, plain=plain)
        chart.rstrip()
        parts += [gap(), chart]
    if compared:
        parts.append(rise_section(report.run, report.comparison, top=top, plain=plain))
    issues = label_issues_table(report, top=top, plain=plain)
    if issues is not None:
        parts += [gap(), issues]
    parts += [gap(), epoch_table(report, plain=plain), epoch_legend(report), gap(), headline_text(report, plain=plain)]
    return Group(*parts)


def live_view(report, *, status: str) -> Group:
    """What ``analyze --watch`` keeps on screen: the headline, the curves and the table, under a
    status line (the run, when it was analysed, how to stop)."""
    parts = [Text(status, style="dim"), header(report), gap(), headline_text(report, plain=False)]
    if report.n_epochs > 1:
        chart = curves(report, plain=False)
        chart.rstrip()
        parts += [gap(), chart]
    parts += [gap(), epoch_table(report, plain=False), epoch_legend(report)]
    return Group(*parts)


def watch_record(report) -> str:
    """One line for each new analysis when ``--watch`` output is piped."""
    last = report.run.summaries[-1]
    return (f"{plural(report.n_epochs, 'epoch')}, last {last.epoch}: loss {last.loss:.4f} nats, "
            f"accuracy {last.accuracy:.4f}; {report.headline}")
