"""The decomposed rise -> rich renderables (shared by `analyze` and `compare`).

Tables are built to fit 80 columns: short headers (explained in a legend line once), numbers that
are never cut, ids and class names that fold instead of being truncated.
"""

from __future__ import annotations

import numpy as np
from rich.console import Group

from lossacc_cli.analysis.compare import class_stats
from lossacc_cli.analysis.rise import GROUPS, Rise
from lossacc_cli.analysis.rise import share as ratio
from lossacc_cli.analysis.run import Run
from lossacc_cli.analysis.significance import Significance
from lossacc_cli.metrics.ranking import largest_first
from lossacc_cli.render.style import (
    class_label,
    gap,
    nats,
    new_table,
    paragraph,
    pct,
    plural,
    prob,
    share,
    signed,
)

GROUP_SHORT = {"correct at both": "right both", "fixed": "fixed", "broken": "broken", "wrong at both": "wrong both"}


def rise_lines(rise: Rise, sig: Significance | None, *, picked: bool) -> Group:
    """The rise in numbers: loss and accuracy at both epochs, how sure we are, its two parts."""
    how = " (the lowest loss up to the later epoch)" if picked else ""
    lines = [paragraph(f"Rise from epoch {rise.from_epoch}{how} to epoch {rise.to_epoch}, over "
                       f"{plural(rise.n, 'sample')} present at both:"),
             paragraph(f"loss {nats(rise.loss_from)} -> {nats(rise.loss_to)} nats ({signed(rise.value)}); median "
                       f"{nats(rise.median_from)} -> {nats(rise.median_to)}; accuracy {pct(rise.accuracy_from)} -> "
                       f"{pct(rise.accuracy_to)}", 2)]
    if rise.n_only_from or rise.n_only_to:
        lines.append(paragraph(f"left out: {rise.n_only_from} ids only at epoch {rise.from_epoch}, "
                               f"{rise.n_only_to} only at epoch {rise.to_epoch}", 2))
    if sig is not None:
        lines.append(paragraph(significance_text(sig), 2))
    if rise.calibration is not None:
        c, r = rise.calibration.value, rise.refinement.value
        lines.append(paragraph(
            f"= calibration part {signed(c)} ({share(ratio(c, rise.value))}) + refinement part {signed(r)} "
            f"({share(ratio(r, rise.value))}); the refinement part is what is left after each epoch's own "
            f"temperature: {nats(rise.recalibrated_from)} -> {nats(rise.recalibrated_to)} nats", 2))
    return Group(*lines)


def significance_text(sig: Significance) -> str:
    if not sig.assessable:
        return ("Is it real? not measurable: too few epochs for their jitter, too few samples carrying the "
                f"rise for a sample interval (samples: {signed(sig.samples_low)} to {signed(sig.samples_high)})")
    verdict = "yes" if sig.significant else "not significantly"
    basis = (f"epoch-to-epoch jitter {nats(sig.jitter)} nats" if sig.basis == "epoch jitter"
             else "from the samples (too few epochs to measure their jitter)")
    picked = (f"; corrected for picking the lowest of {sig.candidates} close epochs: {signed(sig.corrected_rise)}"
              if sig.picked and sig.candidates > 1 else "")
    samples = f"; on another evaluation set this size: {signed(sig.samples_low)} to {signed(sig.samples_high)}"
    return (f"Is it real? {verdict}: {sig.level:.0%} interval {signed(sig.low)} to {signed(sig.high)} nats "
            f"({basis}{picked}){samples if sig.basis == 'epoch jitter' else ''}")


def groups_table(rise: Rise, *, plain: bool):
    """Each part by outcome group: contributions in nats; each column sums to its part."""
    t = new_table("The rise by outcome group (nats; each column sums to its part)", plain=plain)
    parts = rise.parts()
    t.add_column("group")
    t.add_column("n", justify="right")
    for p in parts:
        t.add_column(p.name.replace(" part", ""), justify="right")
    for g, name in enumerate(GROUPS):
        t.add_row(GROUP_SHORT[name] if not plain else name, str(parts[0].groups[g].count),
                  *(signed(p.groups[g].contribution) for p in parts))
    t.add_row("all", str(rise.n), *(signed(p.value) for p in parts))
    return t


def concentration_lines(rise: Rise) -> Group:
    lines = []
    for p in rise.parts():
        c50, c80 = p.concentration
        if c80.count == 0:
            continue
        text = (f"{p.name}: 50% of its per-sample increases come from {plural(c50.count, 'sample')}, 80% from "
                f"{c80.count} ({pct(c80.share_of_samples)} of the samples)")
        if p is rise.total:
            them = "that sample" if c80.count == 1 else f"those {c80.count}"
            text += f"; mean loss at epoch {rise.to_epoch} without {them}: {nats(c80.loss_to_without)} nats"
        lines.append(paragraph(text, 2))
    return Group(*lines)


def classes_table(run: Run, rise: Rise, *, top: int, plain: bool):
    """Classes by contribution to the rise, beside their share of the samples."""
    names = run.class_names
    stats = {c.label: c for c in class_stats(run, rise)}
    t = new_table("Classes by contribution to the rise (share of samples vs share of the rise)", plain=plain)
    for col in ("class", "n", "samples", "rise", "x avg", f"loss@{rise.from_epoch}", f"loss@{rise.to_epoch}",
                f"acc@{rise.to_epoch}"):
        t.add_column(col, justify="left" if col == "class" else "right", overflow="fold", no_wrap=col != "class")
    for c in rise.total.classes[:top]:
        s = stats[c.label]
        t.add_row(class_label(c.label, names), str(c.count), pct(c.sample_share, 1), share(c.share),
                  f"{c.ratio:.1f}" if np.isfinite(c.ratio) else "n/a", nats(s.loss_from), nats(s.loss_to),
                  pct(s.accuracy_to, 1))
    return t


def samples_table(run: Run, rise: Rise, *, top: int, plain: bool):
    """The samples with the largest loss change."""
    names = run.class_names
    sa, sb = run.record(rise.from_epoch).stats, run.record(rise.to_epoch).stats
    order = largest_first(rise.total.per_sample, top)
    a, b = rise.from_epoch, rise.to_epoch
    t = new_table(f"Samples most responsible (largest loss change {a} -> {b}; {rise.n - order.shape[0]} more "
                  "in --format json)", plain=plain)
    for col in ("id", "label", f"pred@{b}", f"p[y]@{a}", f"p[y]@{b}", f"loss@{b}", "change", "group"):
        t.add_column(col, justify="left" if col in ("id", "group") else "right",
                     overflow="fold", no_wrap=col not in ("id", "group"))
    names = names if plain else None  # class names in full when plain; the class table has them
    for i in order:
        t.add_row(str(run.ids[rise.rows[i]]), class_label(int(rise.labels[i]), names),
                  class_label(int(sb.pred[rise.index_to[i]]), names), prob(sa.true_prob[rise.index_from[i]]),
                  prob(sb.true_prob[rise.index_to[i]]), nats(sb.loss[rise.index_to[i]]),
                  signed(rise.total.per_sample[i]), GROUPS[rise.group[i]] if plain else GROUP_SHORT[GROUPS[rise.group[i]]])
    return t


LEGEND = "p[y]: probability of the label; x avg: the class's per-sample change over the average sample's"
GROUP_LEGEND = "; right/wrong both: correct/wrong at both epochs; fixed: wrong -> right; broken: right -> wrong"


def rise_section(run: Run, rise: Rise, *, top: int, plain: bool) -> Group:
    """Where the rise sits: outcome groups, concentration, classes, samples."""
    return Group(gap(), groups_table(rise, plain=plain), concentration_lines(rise), gap(),
                 classes_table(run, rise, top=min(top, 5), plain=plain), gap(),
                 samples_table(run, rise, top=top, plain=plain),
                 paragraph(LEGEND + ("" if plain else GROUP_LEGEND), 2, style="dim"))
