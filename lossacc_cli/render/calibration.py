"""`calibration` -> rich renderables (its JSON body: :mod:`.bodies`)."""

from __future__ import annotations

import math

from rich.console import Group
from rich.text import Text

from lossacc_cli.analysis.calibration import CalibrationReport
from lossacc_cli.render.style import nats, new_table, num, pct

DIAGRAM_WIDTH = 40


def reliability_rows(rep: CalibrationReport, *, plain: bool):
    """Reliability table with a diagram column: the accuracy bar, and '|' at the mean confidence
    (a bar ending left of '|' is overconfident)."""
    t = new_table(
        f"Reliability at epoch {rep.epoch}: {len(rep.equal_width.count)} equal-width bins of top-label confidence",
        plain=plain,
    )
    for col in ("confidence bin", "samples", "mean conf.", "accuracy", "gap", "accuracy (bar) vs confidence (|)"):
        t.add_column(col, justify="left" if col.startswith(("confidence bin", "accuracy (")) else "right")
    tab = rep.equal_width
    fill, mark = ("#", "|") if plain else ("█", "┃")
    for b in range(len(tab.count)):
        if tab.count[b] == 0:
            t.add_row(f"[{tab.lower[b]:.3f}, {tab.upper[b]:.3f}{']' if b == len(tab.count) - 1 else ')'}", "0",
                      "", "", "", "")
            continue
        cells = [" "] * (DIAGRAM_WIDTH + 1)
        filled = round(tab.accuracy[b] * DIAGRAM_WIDTH)
        for i in range(filled):
            cells[i] = fill
        cells[min(DIAGRAM_WIDTH, round(tab.confidence[b] * DIAGRAM_WIDTH))] = mark
        t.add_row(
            f"[{tab.lower[b]:.3f}, {tab.upper[b]:.3f}{']' if b == len(tab.count) - 1 else ')'}",
            str(int(tab.count[b])),
            num(tab.confidence[b], 4),
            num(tab.accuracy[b], 4),
            f"{tab.gap[b]:+.4f}",
            "".join(cells),
        )
    return t


def calibration_lines(rep: CalibrationReport) -> Text:
    s = rep.summary
    lines = Text()
    lines.append(f"Epoch {rep.epoch}: {s.n_samples} samples, accuracy {pct(s.accuracy)}, mean confidence "
                 f"{pct(s.mean_confidence)}, overconfidence gap (mean confidence - accuracy) "
                 f"{s.overconfidence_gap:+.4f}\n")
    lines.append(f"ECE, 15 equal-width bins (Guo et al. 2017; torchmetrics/netcal 'ECE' with n_bins=15): {num(s.ece, 4)}\n")
    lines.append(f"ECE, 15 equal-mass bins (adaptive ECE, Nixon et al. 2019):                            {num(s.adaptive_ece, 4)}\n")
    lines.append(f"MCE, max bin gap of the equal-width bins:                                             {num(s.mce, 4)}\n")
    lines.append(f"Class-wise ECE, mean over classes of 15-bin ECE of p_k (Kull et al. 2019):            {num(s.classwise_ece, 4)}\n")
    lines.append(f"Smooth ECE (Blasiok & Nakkiran 2023; relplot smECE), kernel width {rep.smooth_ece_sigma:.4f}:       {num(rep.smooth_ece, 4)}\n")
    if math.isnan(s.temperature):
        lines.append("Temperature scaling: unavailable (the compact per-sample form has no scores to rescale)\n")
    else:
        bound = " (at the search bound)" if s.temperature_at_bound else ""
        lines.append(
            f"Temperature T* = {s.temperature:.4f}{bound}: loss {nats(s.loss)} nats = calibration "
            f"{nats(rep.calibration_loss)} (removed by T*) + refinement {nats(rep.refinement_loss)} (L(T*))\n"
        )
    return lines


def calibration_renderable(rep: CalibrationReport, *, plain: bool):
    return Group(calibration_lines(rep), reliability_rows(rep, plain=plain))
