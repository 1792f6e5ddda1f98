"""The report's charts, drawn with matplotlib (the ``report`` extra) as inline SVG.

Every chart reads the JSON body (``report.to_dict()`` cleaned), so what it draws and what its
hover texts say are the JSON's numbers. Each function returns the ``<svg>`` element's text, or
None when the run has nothing to draw there (no common samples, one epoch).
"""

from __future__ import annotations

import io
import math

from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, PercentFormatter

from lossacc_cli.render.html.fmt import exact, nats, pct, prob, share, signed
from lossacc_cli.render.html.svg import SENTINEL as C
from lossacc_cli.render.html.svg import inline_svg

STYLE = {
    "svg.fonttype": "none",  # text stays text: small, selectable, in the page's own font
    "svg.hashsalt": "lossacc",  # the same report twice is the same file
    "text.parse_math": False,  # class names and ids may hold '$'
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial"],
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titlelocation": "left",
    "axes.edgecolor": C["muted"],
    "axes.labelcolor": C["fg"],
    "axes.facecolor": "none",
    "axes.grid": True,
    "axes.axisbelow": True,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "grid.color": C["grid"],
    "grid.linewidth": 0.6,
    "xtick.color": C["muted"],
    "ytick.color": C["muted"],
    "xtick.labelcolor": C["fg"],
    "ytick.labelcolor": C["fg"],
    "text.color": C["fg"],
    "legend.frameon": False,
    "legend.fontsize": 8,
    "figure.facecolor": "none",
    "savefig.transparent": True,
}


class Canvas:
    """One figure and the hover texts of its artists (gid -> one text per drawn item)."""

    def __init__(self, name: str, figsize: tuple[float, float], **margins):
        self.name = name
        # fixed margins: a layout engine would measure every tick label twice (2x the drawing time)
        self.figure = Figure(figsize=figsize)
        self.figure.subplots_adjust(**margins)
        self.tips: dict[str, list[str]] = {}

    def tip(self, artist, texts: list[str] | str) -> None:
        gid = f"tip{len(self.tips)}"
        artist.set_gid(gid)
        self.tips[gid] = [texts] if isinstance(texts, str) else list(texts)

    def svg(self, label: str) -> str:
        buffer = io.StringIO()
        self.figure.savefig(buffer, format="svg", metadata={"Date": None})
        return inline_svg(buffer.getvalue(), name=self.name, tips=self.tips, label=label)


def _finite(values) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]


def _class(k: int, names) -> str:
    return str(names[k]) if names and 0 <= k < len(names) else str(k)


def _log_axis(axis, subs=(1.0,)) -> None:
    """Log ticks labelled as plain numbers (0.2, 0.5, 1, 2, 1e-5): matplotlib's own log labels are
    math text, which the page does not parse (ids and class names may hold '$')."""
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}".replace("e-0", "e-").replace("e+0", "e")))
    axis.set_minor_formatter(NullFormatter())


def _legend_above(ax, ncols: int) -> None:
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.01), ncols=ncols, borderaxespad=0.0, handlelength=1.8)


def _runs(epochs: list[int], marked: set[int]) -> list[tuple[int, int]]:
    """(first, last) positions of the runs of consecutive marked epochs."""
    runs, start = [], None
    for i, e in enumerate(epochs + [None]):
        if e is not None and e in marked:
            start = i if start is None else start
        elif start is not None:
            runs.append((start, i - 1))
            start = None
    return runs


def curves(d: dict) -> str:
    """Loss, recalibrated loss (log scale, with the chance baseline) and accuracy over epochs."""
    rows = d["epochs"]
    x = [r["epoch"] for r in rows]
    loss, recal = _finite(r["loss"] for r in rows), _finite(r["recalibrated_loss"] for r in rows)
    acc, base = _finite(r["accuracy"] for r in rows), _finite(r["baseline_loss"] for r in rows)
    chance = _finite(r["chance_accuracy"] for r in rows)
    dx, ck = d["diagnosis"], d["checkpoint"]
    with rc_context(STYLE):
        cv = Canvas("curves", (9.0, 5.2), left=0.075, right=0.985, top=0.9, bottom=0.09, hspace=0.07)
        top, bottom = cv.figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
        marked = set(d["summary"]["diverging_epochs"])
        runs = _runs(x, marked)
        for ax in (top, bottom):
            for n, (i, j) in enumerate(runs):
                lo = x[i] - (x[i] - x[i - 1]) / 2 if i > 0 else x[i] - 0.5
                hi = x[j] + (x[j + 1] - x[j]) / 2 if j + 1 < len(x) else x[j] + 0.5
                span = ax.axvspan(lo, hi, color=C["mark"], alpha=0.2, lw=0,
                                  label="loss above its minimum, accuracy held" if ax is top and n == 0 else None)
                cv.tip(span, f"epochs {x[i]}-{x[j]}: the loss is above its minimum while accuracy is at or above its value there")
            for epoch, role in ((dx["from_epoch"], "from"), (dx["to_epoch"], "to")):
                ax.axvline(epoch, color=C[role], lw=1.2, ls=(0, (4, 2)))
        top.set_yscale("log")
        # the axis spans the losses; the chance baseline is drawn when near them, else named at the edge
        shown = [v for v in loss + recal if v == v and v > 0]
        lo, hi = (min(shown), max(shown)) if shown else (1e-3, 1.0)
        h = max((v for v in base if v == v), default=math.nan)
        if h == h and h <= hi * 1.6:
            top.plot(x, base, color=C["base"], lw=1.2, ls=":", label="chance baseline H(prior)")
            hi = max(hi, h)
        elif h == h:
            top.annotate(f"\u2191 chance baseline H(prior) = {nats(h)} nats (above the axis)", (0.01, 0.97),
                         xycoords="axes fraction", va="top", color=C["base"], fontsize=8)
        top.set_ylim(lo / 1.08, hi * 1.08)
        if any(v == v for v in recal):
            top.plot(x, recal, color=C["recal"], lw=1.4, ls="--", label="recalibrated loss L(T*)")
        top.plot(x, loss, color=C["loss"], lw=1.8, label="loss")
        points = top.scatter(x, loss, s=12, color=C["loss"], zorder=3)
        cv.tip(points, [
            f"epoch {r['epoch']}: loss {exact(r['loss'])} nats, recalibrated {exact(r['recalibrated_loss'])} "
            f"(T* {exact(r['temperature'])}), accuracy {pct(r['accuracy'], 3)}, ECE {exact(r['ece'])}, "
            f"baseline {exact(r['baseline_loss'])}"
            for r in rows])
        if ck["epoch"] in x and ck["loss"] is not None:
            star = top.scatter([ck["epoch"]], [ck["loss"]], marker="*", s=110, color=C["check"], zorder=4,
                               label="checkpoint to keep (loss at its T*)")
            cv.tip(star, f"checkpoint: keep epoch {ck['epoch']} and divide its logits by T* = {exact(ck['temperature'])}: "
                         f"loss {exact(ck['loss'])} nats (cross-fitted {exact(ck['loss_crossfit'])})")
        _log_axis(top.yaxis, subs=(1.0, 1.5, 2.0, 3.0, 5.0, 7.0) if hi / lo < 30 else (1.0,))
        top.set_ylabel("mean loss (nats, log scale)")
        for epoch, role, word in ((dx["from_epoch"], "from", "from"), (dx["to_epoch"], "to", "to")):
            top.annotate(f"{word} {epoch}", (epoch, 0.0), xycoords=("data", "axes fraction"), xytext=(3, 4),
                         textcoords="offset points", color=C[role], fontsize=8)
        _legend_above(top, 5)
        bottom.plot(x, acc, color=C["acc"], lw=1.8, label="accuracy")
        dots = bottom.scatter(x, acc, s=12, color=C["acc"], zorder=3)
        cv.tip(dots, [f"epoch {r['epoch']}: accuracy {pct(r['accuracy'], 3)} "
                      f"(chance {pct(r['chance_accuracy'], 2)}), loss {exact(r['loss'])} nats" for r in rows])
        lo, hi = min(v for v in acc if v == v), max(v for v in acc if v == v)
        pad = max((hi - lo) * 0.1, 0.005)
        c = max((v for v in chance if v == v), default=math.nan)
        if c == c and c >= lo - 3 * pad:
            bottom.plot(x, chance, color=C["base"], lw=1.2, ls=":", label="chance accuracy max(prior)")
            lo = min(lo, c)
        elif c == c:
            bottom.annotate(f"chance accuracy {pct(c)} (below the axis) \u2193", (0.01, 0.03),
                            xycoords="axes fraction", color=C["base"], fontsize=8)
        bottom.set_ylim(max(0.0, lo - pad), min(1.0, hi + pad) if hi + pad > lo else hi + pad)
        bottom.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
        bottom.set_ylabel("accuracy")
        bottom.set_xlabel("epoch")
        bottom.legend(loc="lower right", ncols=2)
        return cv.svg("Loss, recalibrated loss and accuracy over epochs")


def decomposition(d: dict) -> str | None:
    """The rise split into its calibration and refinement parts, by outcome group and by class."""
    rise = d["diagnosis"]["rise"]
    if rise is None:
        return None
    names = d["class_names"]
    parts = rise["parts"]
    roles = {"rise": "to", "calibration part": "cal", "refinement part": "ref"}
    with rc_context(STYLE):
        cv = Canvas("decomposition", (10.0, 3.9), left=0.115, right=0.985, top=0.9, bottom=0.14, wspace=0.42)
        a, b, c = cv.figure.subplots(1, 3, width_ratios=(1.0, 1.5, 1.4))
        total = rise["rise"]
        for y, p in enumerate(parts):
            bar = a.barh([y], [p["value"]], color=C[roles[p["name"]]], height=0.6)
            what = ("L(to) - L(from)" if p["name"] == "rise" else
                    "(L - L(T*)) at the to epoch minus at the from epoch" if p["name"] == "calibration part" else
                    "L(T*) at the to epoch minus at the from epoch")
            cv.tip(bar.patches[0], f"{p['name']}: {signed(p['value'], 6)} nats = {share(p['value'] / total) if total else 'n/a'} "
                                   f"of the rise; {what}")
            a.annotate(signed(p["value"]), (max(p["value"], 0.0), y), xytext=(3, 0), textcoords="offset points",
                       ha="left", va="center", fontsize=8)
        a.set_yticks(range(len(parts)), [p["name"] for p in parts])
        a.invert_yaxis()
        a.axvline(0, color=C["muted"], lw=0.8)
        a.margins(x=0.35)
        a.set_xlabel("nats")
        a.set_title(f"The rise {rise['from_epoch']} \u2192 {rise['to_epoch']}")
        groups = [g["group"] for g in parts[0]["groups"]]
        width = 0.8 / len(parts)
        for k, p in enumerate(parts):
            ys = [g + (k - (len(parts) - 1) / 2) * width for g in range(len(groups))]
            values = [g["contribution"] for g in p["groups"]]
            bars = b.barh(ys, values, height=width * 0.95, color=C[roles[p["name"]]])
            for patch, g in zip(bars.patches, p["groups"]):
                cv.tip(patch, f"{g['group']} ({g['count']:,} samples), {p['name']}: {signed(g['contribution'], 6)} nats, "
                              f"{share(g['share'])} of the {p['name']}")
        counts = {g["group"]: g["count"] for g in parts[0]["groups"]}
        b.set_yticks(range(len(groups)), [f"{g}\n({counts[g]:,})" for g in groups])
        b.invert_yaxis()
        b.axvline(0, color=C["muted"], lw=0.8)
        b.set_xlabel("contribution to the mean change (nats)")
        b.set_title("By outcome group (colours as on the left)")
        classes = parts[0]["classes"]
        finite = [k for k in classes if k["share"] is not None]
        if finite:
            named = set()
            for v in d["diagnosis"]["verdicts"]:
                named.update(v.get("classes") or [])
            xs = [100 * k["sample_share"] for k in finite]
            ys = [100 * k["share"] for k in finite]
            colours = [C["to"] if k["label"] in named else C["bar"] for k in finite]
            top = max(max(xs), max(ys), 1.0)
            c.plot([0, top], [0, top], color=C["muted"], lw=0.8, ls="--", label="share of the rise = share of samples")
            c.axhline(0, color=C["muted"], lw=0.6)
            dots = c.scatter(xs, ys, s=22, c=colours, zorder=3)
            cv.tip(dots, [f"class {_class(k['label'], names)} ({k['count']:,} samples, {pct(k['sample_share'], 1)}): "
                          f"{signed(k['contribution'], 6)} nats, {share(k['share'])} of the rise; "
                          f"{exact(k['per_sample'])} nats per sample, {exact(k['ratio'])}x the average"
                          for k in finite])
            for k in sorted(finite, key=lambda k: -k["contribution"])[:4]:
                c.annotate(_class(k["label"], names)[:18], (100 * k["sample_share"], 100 * k["share"]), xytext=(4, 2),
                           textcoords="offset points", fontsize=7)
            c.set_xlabel("share of the samples (%)")
            c.set_ylabel("share of the rise (%)")
            c.set_title(f"By class ({len(finite)}), against its size")
            c.legend(loc="lower right")
        else:
            c.set_axis_off()
        return cv.svg("The rise decomposed: calibration and refinement parts, by outcome group and by class")


def distributions(d: dict) -> str:
    """The per-sample loss distributions at the two compared epochs (log-log), outliers marked."""
    dists = d["loss_distributions"]
    with rc_context(STYLE):
        cv = Canvas("distributions", (9.0, 3.8), left=0.075, right=0.985, top=0.86, bottom=0.14)
        ax = cv.figure.subplots()
        ax.set_xscale("log")
        ax.set_yscale("log")
        for key, role, y in (("from", "from", 0.96), ("to", "to", 0.90)):
            dist = dists[key]
            edges, counts = dist["edges"], dist["counts"]
            widths = [hi - lo for lo, hi in zip(edges[:-1], edges[1:])]
            bars = ax.bar(edges[:-1], counts, width=widths, align="edge", color=C[role], alpha=0.28, lw=0)
            for i, patch in enumerate(bars.patches):
                lower = "0" if i == 0 else prob(edges[i])
                cv.tip(patch, f"epoch {dist['epoch']}: {counts[i]:,} samples with loss in [{lower}, {prob(edges[i + 1])}) nats")
            ax.stairs(counts, edges, color=C[role], lw=1.4, label=f"epoch {dist['epoch']} (median --, p99 :)")
            q = dist["quantiles"]
            for name, style in (("p50", "--"), ("p99", ":")):
                line = ax.axvline(q[name], color=C[role], lw=1.0, ls=style)
                cv.tip(line, f"epoch {dist['epoch']}: {'median' if name == 'p50' else name} loss {exact(q[name])} nats")
            out = dist["outliers"]
            if out:
                marks = ax.scatter([o["loss"] for o in out], [y] * len(out), marker="v", s=26, color=C[role],
                                   transform=ax.get_xaxis_transform(), zorder=4, clip_on=False,
                                   label=f"outlying at {dist['epoch']} ({len(out)})")
                cv.tip(marks, [f"id {o['id']}: loss {exact(o['loss'])} nats at epoch {dist['epoch']}" for o in out])
        ax.set_xlim(1e-6, max(dists["from"]["edges"][-1], dists["to"]["edges"][-1]))
        ax.set_ylim(bottom=0.7)
        ax.set_xlabel("per-sample loss (nats, log scale; the first bin holds every loss below 1e-6)")
        ax.set_ylabel("samples (log scale)")
        _log_axis(ax.xaxis)
        _log_axis(ax.yaxis)
        _legend_above(ax, 4)
        return cv.svg("Per-sample loss distributions at the two compared epochs")


def reliability(cal: dict, role: str) -> str:
    """One epoch's reliability diagram (15 equal-width bins) and the count in each bin."""
    bins = cal["reliability_equal_width"]
    with rc_context(STYLE):
        cv = Canvas(f"reliability-{role}", (3.2, 3.4), left=0.19, right=0.97, top=0.92, bottom=0.14, hspace=0.08)
        ax, counts = cv.figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
        ax.plot([0, 1], [0, 1], color=C["muted"], lw=0.9, ls="--", label="perfect calibration")
        for b in bins:
            if not b["count"]:
                continue
            width = b["upper"] - b["lower"]
            bar = ax.bar([b["lower"]], [b["accuracy"]], width=width, align="edge", color=C["acc"], alpha=0.8,
                         edgecolor=C["fg"], lw=0.4)
            text = (f"confidence [{b['lower']:.3f}, {b['upper']:.3f}{']' if b is bins[-1] else ')'}: {b['count']:,} samples, "
                    f"mean confidence {exact(b['confidence'])}, accuracy {exact(b['accuracy'])}, gap {signed(b['gap'], 6)}")
            cv.tip(bar.patches[0], text)
            gap = ax.bar([b["lower"]], [b["confidence"] - b["accuracy"]], bottom=[b["accuracy"]], width=width,
                         align="edge", color=C["to"] if b["gap"] > 0 else C["ref"], alpha=0.45, lw=0)
            cv.tip(gap.patches[0], text)
            n = counts.bar([b["lower"]], [b["count"]], width=width, align="edge", color=C["bar"], alpha=0.8,
                           edgecolor=C["fg"], lw=0.3)
            cv.tip(n.patches[0], text)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy in the bin")
        ax.set_title(f"Epoch {cal['epoch']} ({'from' if role == 'from' else 'to'})")
        ax.legend(loc="upper left")
        counts.set_yscale("log")
        counts.set_ylim(bottom=0.7)
        _log_axis(counts.yaxis)
        counts.set_ylabel("samples")
        counts.set_xlabel("top-label confidence")
        return cv.svg(f"Reliability diagram at epoch {cal['epoch']}")
