"""The report's HTML body: the headline, the findings and their evidence, the charts and the tables.

Every number comes from the JSON body. A number that stands for a JSON value carries its path and
its exact value (``data-json="diagnosis.rise.rise" data-value="0.0631…"``), which the hover text
shows in full and the browser test compares with ``lossacc analyze --format json``. Every piece of
data (ids, class names, paths, messages) is escaped.
"""

from __future__ import annotations

import json
from html import escape

from lossacc_cli.render.html.fmt import count, exact, nats, pct, prob, share, signed

IDS_SHOWN = 12
"""Sample ids quoted per finding (the JSON lists all)."""

LABEL_ROWS = 200
"""Rows of the label-issue table at most (most suspicious first; the JSON lists all)."""

CLASS_ROWS = 100
"""Rows of the per-class table at most (largest contribution first)."""


def _value(v) -> str:
    return "null" if v is None else json.dumps(v)


def num(value, path: str, text: str, tag: str = "span", extra: str = "") -> str:
    """A number shown as ``text`` that stands for the JSON value at ``path``."""
    return (f'<{tag} class="n" data-json="{escape(path)}" data-value="{escape(_value(value))}" '
            f'title="{escape(exact(value))}"{extra}>{escape(text)}</{tag}>')


def cell(value, text: str, path: str | None = None) -> str:
    """A table cell sorted by ``value``; with ``path``, it stands for that JSON value."""
    if path is not None:
        return num(value, path, text, tag="td")
    sort = "" if value is None else f' data-value="{escape(_value(value))}"'
    return f'<td{sort} title="{escape(exact(value))}">{escape(text)}</td>'


def text_cell(text: str, sort=None) -> str:
    key = "" if sort is None else f' data-value="{escape(_value(sort))}"'
    return f'<td class="t"{key}>{escape(str(text))}</td>'


def class_name(k, names) -> str:
    if k is None:
        return "n/a"
    return f"{k}: {names[k]}" if names and 0 <= k < len(names) else str(k)


def table(name: str, caption: str, headers: list[tuple[str, str, str]], rows: list[str], note: str = "") -> str:
    """A sortable table: ``headers`` are (label, sort kind 'num'|'text', hover help)."""
    head = "".join(f'<th scope="col" data-sort="{kind}" title="{escape(help_)}" tabindex="0">{escape(label)}</th>'
                   for label, kind, help_ in headers)
    body = "\n".join(rows) if rows else f'<tr><td colspan="{len(headers)}" class="empty">none</td></tr>'
    tail = f'<p class="note">{note}</p>' if note else ""
    return (f'<div class="scroll"><table class="sortable" id="table-{name}" data-table="{name}">'
            f"<caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>\n{body}\n</tbody></table></div>{tail}")


# --- sections ------------------------------------------------------------------------------------


def header(d: dict, version: str) -> str:
    dx = d["diagnosis"]
    names = d["class_names"]
    classes = f"{d['n_classes']} classes" + (f" ({', '.join(map(str, names[:6]))}{', …' if len(names) > 6 else ''})"
                                            if names else "")
    return (f'<header><p class="kicker">lossacc {escape(version)} report</p>'
            f'<h1 data-json="path">{escape(str(d["path"]))}</h1>'
            f'<p class="meta">{num(d["n_epochs"], "n_epochs", count(d["n_epochs"]))} epochs, '
            f'{num(d["n_samples"], "n_samples", count(d["n_samples"]))} samples, {escape(classes)}; compared epochs '
            f'{num(dx["from_epoch"], "diagnosis.from_epoch", str(dx["from_epoch"]))}'
            f'{" (the lowest loss)" if dx["from_epoch_picked"] else ""} and '
            f'{num(dx["to_epoch"], "diagnosis.to_epoch", str(dx["to_epoch"]))}</p></header>')


def _evidence_value(v, path: str) -> str:
    if isinstance(v, list):
        return ", ".join(_evidence_value(x, f"{path}.{i}") for i, x in enumerate(v))
    if isinstance(v, bool) or isinstance(v, str) or v is None:
        return escape("n/a" if v is None else str(v))
    if isinstance(v, int):
        return num(v, path, f"{v:,}")
    if "p_value" in path:
        return num(v, path, f"{v:.2g}")
    return num(v, path, f"{v:.4g}" if abs(v) < 1e-3 or abs(v) >= 1e4 else f"{v:.4f}")


def findings(d: dict, in_table: set) -> str:
    dx = d["diagnosis"]
    found = _finding_items(d, dx["verdicts"], "diagnosis.verdicts", in_table)
    html = f'<section id="findings"><h2>Findings</h2><ol class="findings">{found}</ol>'
    if dx["if_real"]:
        hypotheses = _finding_items(d, dx["if_real"], "diagnosis.if_real", in_table)
        html += ('<h3>If the rise were real</h3><p class="note">The rise is not significant: these are '
                 f'hypotheses, not findings.</p><ol class="findings if-real">{hypotheses}</ol>')
    return html + "</section>"


def _finding_items(d: dict, verdicts: list, path: str, in_table: set) -> str:
    items = []
    for i, v in enumerate(verdicts):
        base = f"{path}.{i}"
        head = f'<strong class="verdict">{escape(v["verdict"])}</strong>'
        if v["share"] is not None:
            head += (f' &middot; {num(v["share"], f"{base}.share", share(v["share"]))} '
                     f'of the {escape(str(v["share_of"]))}')
        evidence = "".join(f"<dt>{escape(k.replace('_', ' '))}</dt><dd>{_evidence_value(x, f'{base}.evidence.{k}')}</dd>"
                           for k, x in v["evidence"].items())
        ids = v["sample_ids"]
        shown = []
        for sid in ids[:IDS_SHOWN]:
            label = escape(str(sid))
            shown.append(f'<a href="#sample-{escape(_anchor(sid))}">{label}</a>' if _anchor(sid) in in_table
                         else f"<span>{label}</span>")
        more = f" and {len(ids) - IDS_SHOWN:,} more" if len(ids) > IDS_SHOWN else ""
        located = (f'<p class="ids">{len(ids):,} samples: {", ".join(shown)}{more}</p>' if ids else "")
        classes = (f'<p class="ids">classes: {escape(", ".join(class_name(k, d["class_names"]) for k in v["classes"]))}</p>'
                   if v["classes"] else "")
        items.append(f'<li data-verdict="{escape(v["verdict"])}">{head}<p>{escape(v["summary"])}</p>'
                     f'{located}{classes}<dl class="evidence">{evidence}</dl></li>')
    return "".join(items)


def _dl(pairs: list[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def facts(d: dict) -> str:
    """How sure we are, and the checkpoint to keep."""
    sig, ck, rise = d["diagnosis"]["significance"], d["checkpoint"], d["diagnosis"]["rise"]
    cards = []
    if rise is not None:
        p = "diagnosis.rise"
        cards.append('<div class="card"><h3>The rise</h3>' + _dl([
            ("loss", f'{num(rise["loss_from"], f"{p}.loss_from", nats(rise["loss_from"]))} &rarr; '
                     f'{num(rise["loss_to"], f"{p}.loss_to", nats(rise["loss_to"]))} nats'),
            ("rise", num(rise["rise"], f"{p}.rise", signed(rise["rise"])) + " nats"),
            ("recalibrated loss", f'{num(rise["recalibrated_loss_from"], f"{p}.recalibrated_loss_from", nats(rise["recalibrated_loss_from"]))} &rarr; '
                                  f'{num(rise["recalibrated_loss_to"], f"{p}.recalibrated_loss_to", nats(rise["recalibrated_loss_to"]))}'),
            ("median loss", f'{num(rise["median_loss_from"], f"{p}.median_loss_from", prob(rise["median_loss_from"]))} &rarr; '
                            f'{num(rise["median_loss_to"], f"{p}.median_loss_to", prob(rise["median_loss_to"]))}'),
            ("accuracy", f'{num(rise["accuracy_from"], f"{p}.accuracy_from", pct(rise["accuracy_from"]))} &rarr; '
                         f'{num(rise["accuracy_to"], f"{p}.accuracy_to", pct(rise["accuracy_to"]))}'),
            ("samples at both", num(rise["n_samples"], f"{p}.n_samples", count(rise["n_samples"]))),
        ]) + "</div>")
    if sig is not None:
        p = "diagnosis.significance"
        cards.append('<div class="card"><h3>Is it real?</h3>' + _dl([
            ("significant", num(sig["significant"], f"{p}.significant", {True: "yes", False: "no", None: "not measurable"}[sig["significant"]])
             + f' ({escape(str(sig["basis"]))})'),
            (f'{sig["level"]:.0%} interval', f'[{num(sig["low"], f"{p}.low", signed(sig["low"]))}, '
                                             f'{num(sig["high"], f"{p}.high", signed(sig["high"]))}] nats'),
            ("corrected rise", num(sig["corrected_rise"], f"{p}.corrected_rise", signed(sig["corrected_rise"])) + " nats"
             + (f" (for picking the lowest of {sig['candidates']} close epochs)" if sig["picked"] else "")),
            ("epoch-to-epoch jitter", num(sig["jitter"], f"{p}.jitter", nats(sig["jitter"])) + " nats"),
            ("over samples", f'[{num(sig["samples_low"], f"{p}.samples_low", signed(sig["samples_low"]))}, '
                             f'{num(sig["samples_high"], f"{p}.samples_high", signed(sig["samples_high"]))}] nats'),
        ]) + "</div>")
    p = "checkpoint"
    cards.append('<div class="card"><h3>Checkpoint to keep</h3>' + _dl([
        ("epoch", num(ck["epoch"], f"{p}.epoch", str(ck["epoch"]))),
        ("divide its logits by T*" if ck["logits"] else "divide log p by T*",
         num(ck["temperature"], f"{p}.temperature", f'{ck["temperature"]:.4f}')),
        ("loss at T*", num(ck["loss"], f"{p}.loss", nats(ck["loss"])) + " nats"),
        ("cross-fitted", num(ck["loss_crossfit"], f"{p}.loss_crossfit", nats(ck["loss_crossfit"])) + " nats"),
        ("below the lowest raw loss", num(ck["gain"], f"{p}.gain", nats(ck["gain"])) + " nats (epoch "
         + num(ck["best_loss_epoch"], f"{p}.best_loss_epoch", str(ck["best_loss_epoch"])) + ")"),
        ("accuracy", num(ck["accuracy"], f"{p}.accuracy", pct(ck["accuracy"]))),
    ]) + f'<p class="note">Chosen on {escape(ck["chosen_on"])}: the cross-fitted loss is the honest figure.</p></div>')
    return f'<section id="facts" class="cards">{"".join(cards)}</section>'


def figure(name: str, title: str, svg: str | None, caption: str, aside: str = "") -> str:
    if svg is None:
        body = f'<p class="note">{escape(caption)}</p>'
        return f'<section class="figure" id="{name}"><h2>{escape(title)}</h2>{body}</section>'
    side = f'<div class="aside">{aside}</div>' if aside else ""
    return (f'<section class="figure" id="{name}"><h2>{escape(title)}</h2><figure data-figure="{name}">'
            f'<div class="plot">{svg}</div>{side}<figcaption>{escape(caption)}</figcaption></figure></section>')


def ece_table(cal: dict, key: str) -> str:
    p = f"calibration.{key}"
    rows = [
        ("ECE, 15 equal-width bins", "ece_equal_width_15"),
        ("ECE, 15 equal-mass bins", "ece_equal_mass_15"),
        ("MCE (largest bin gap)", "mce_equal_width_15"),
        ("class-wise ECE", "classwise_ece_15"),
        ("smooth ECE", "smooth_ece"),
        ("confidence - accuracy", "overconfidence_gap"),
        ("T*", "temperature"),
        ("loss", "loss"),
        ("calibration part L - L(T*)", "calibration_loss"),
        ("refinement part L(T*)", "refinement_loss"),
    ]
    body = "".join(
        f"<tr><th scope=\"row\">{escape(label)}</th>"
        + num(cal[k], f"{p}.{k}", signed(cal[k]) if k == "overconfidence_gap" else nats(cal[k]), tag="td")
        + "</tr>" for label, k in rows)
    return (f'<table class="ece"><caption>Epoch {cal["epoch"]}: {cal["n_samples"]:,} samples, accuracy '
            f'{escape(pct(cal["accuracy"]))}</caption><tbody>{body}</tbody></table>')


def _anchor(sid) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else f"_{ord(ch):x}" for ch in str(sid))


def top_samples_table(d: dict, media) -> str:
    rise = d["diagnosis"]["rise"]
    if rise is None:
        return ""
    names, a, b = d["class_names"], rise["from_epoch"], rise["to_epoch"]
    headers = [("id", "text", "sample id"), ("label", "num", "the label"),
               (f"pred@{a}", "num", f"predicted class at epoch {a}"), (f"pred@{b}", "num", f"predicted class at epoch {b}"),
               (f"p[label]@{a}", "num", "probability of the label"), (f"p[label]@{b}", "num", "probability of the label"),
               (f"loss@{a}", "num", "nats"), (f"loss@{b}", "num", "nats"), ("change", "num", "loss change (nats)"),
               ("calibration part", "num", "the part of the change that temperature scaling accounts for (nats)"),
               ("group", "text", "outcome group")]
    if media is not None:
        headers.append(("preview", "text", "the sample's file (--media)"))
    rows = []
    for i, s in enumerate(rise["top_samples"]):
        p = f"diagnosis.rise.top_samples.{i}"
        cells = [f'<th scope="row" class="t" data-json="{p}.id">{escape(str(s["id"]))}</th>',
                 cell(s["label"], class_name(s["label"], names), f"{p}.label"),
                 cell(s["pred_from"], class_name(s["pred_from"], names), f"{p}.pred_from"),
                 cell(s["pred_to"], class_name(s["pred_to"], names), f"{p}.pred_to"),
                 cell(s["p_label_from"], prob(s["p_label_from"]), f"{p}.p_label_from"),
                 cell(s["p_label_to"], prob(s["p_label_to"]), f"{p}.p_label_to"),
                 cell(s["loss_from"], nats(s["loss_from"]), f"{p}.loss_from"),
                 cell(s["loss_to"], nats(s["loss_to"]), f"{p}.loss_to"),
                 cell(s["change"], signed(s["change"]), f"{p}.change"),
                 cell(s["calibration_part"], signed(s["calibration_part"]), f"{p}.calibration_part"),
                 text_cell(s["group"])]
        if media is not None:
            cells.append(f'<td class="preview">{media.preview(s["id"], s["label"])}</td>')
        rows.append(f'<tr id="sample-{escape(_anchor(s["id"]))}">{"".join(cells)}</tr>')
    omitted = rise["top_samples_omitted"]
    note = (f"{len(rows):,} of the {rise['n_samples']:,} samples present at both epochs, largest loss increase first; "
            "click a column to sort. " + (f"{omitted:,} more are in the JSON of <code>lossacc analyze --format json "
                                          f"--top N</code>." if omitted else ""))
    return ('<section id="samples"><h2>Samples most responsible</h2>'
            + table("samples", f"The largest loss increases from epoch {a} to {b}", headers, rows, note) + "</section>")


def label_issues_table(d: dict, extra: dict, media) -> str:
    li = d["label_issues"]
    rise = d["diagnosis"]["rise"]
    names = d["class_names"]
    a, b = (rise["from_epoch"], rise["to_epoch"]) if rise else (None, None)
    headers = [("id", "text", "sample id"), ("label", "num", "the label as given"),
               ("likely class", "num", "the class the evidence points to"),
               (f"pred@{a}", "num", f"predicted class at epoch {a}"), (f"pred@{b}", "num", f"predicted class at epoch {b}"),
               (f"p[label]@{a}", "num", "probability of the label"), (f"p[label]@{b}", "num", "probability of the label"),
               (f"loss change {a}\u2192{b}", "num", "nats"),
               ("mean p[label]", "num", "temperature-scaled, averaged over epochs"),
               ("mean p[other]", "num", "of the likely class, over the epochs it is on top"),
               ("epochs as other", "num", "fraction of the epochs predicted as the other class"),
               ("score", "num", "label-quality score: lower is more likely mislabeled")]
    if media is not None:
        headers.append(("preview", "text", "the sample's file (--media)"))
    rows = []
    for i, s in enumerate(li["samples"][:LABEL_ROWS]):
        p = f"label_issues.samples.{i}"
        x = extra.get(i, {})
        cells = [f'<th scope="row" class="t" data-json="{p}.id">{escape(str(s["id"]))}</th>',
                 cell(s["label"], class_name(s["label"], names), f"{p}.label"),
                 cell(s["likely_class"], class_name(s["likely_class"], names), f"{p}.likely_class"),
                 cell(x.get("pred_from"), class_name(x.get("pred_from"), names)),
                 cell(x.get("pred_to"), class_name(x.get("pred_to"), names)),
                 cell(x.get("p_label_from"), prob(x.get("p_label_from"))),
                 cell(x.get("p_label_to"), prob(x.get("p_label_to"))),
                 cell(x.get("change"), signed(x.get("change"))),
                 cell(s["p_label"], prob(s["p_label"]), f"{p}.p_label"),
                 cell(s["p_other"], prob(s["p_other"]), f"{p}.p_other"),
                 cell(s["other_fraction"], pct(s["other_fraction"], 0), f"{p}.other_fraction"),
                 cell(s["score"], f'{s["score"]:.3g}' if s["score"] is not None else "n/a", f"{p}.score")]
        if media is not None:
            cells.append(f'<td class="preview">{media.preview(s["id"], s["label"])}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    shown = len(rows)
    ev = li["evidence"]
    test = (f"Label-noise test at epoch {ev['epoch']}: about {ev['count']:.0f} labels look replaced "
            f"(p = {ev['p_value']:.1e}); {'more' if li['noise_evidence'] else 'not more'} than clean labels produce."
            if ev.get("tested") else f"Label-noise test not run: {ev.get('reason') or 'n/a'}.")
    note = (f"{shown:,} of {li['count']:,} flagged samples, most suspicious first"
            + (f" (the JSON lists all {li['count']:,})" if shown < li["count"] else "") + ". " + escape(test)
            + " p[label] at the compared epochs and the loss change are blank for samples not present at both.")
    return ('<section id="labels"><h2>Suspected label errors</h2>'
            + table("labels", "Samples whose label looks wrong", headers, rows, note) + "</section>")


def classes_table(d: dict) -> str:
    rise = d["diagnosis"]["rise"]
    if rise is None:
        return ""
    names, a, b = d["class_names"], rise["from_epoch"], rise["to_epoch"]
    stats = {c["label"]: c for c in rise["classes"]}
    headers = [("class", "num", "label"), ("samples", "num", "at both epochs"), ("share of samples", "num", ""),
               ("contribution", "num", "to the rise (nats)"), ("share of the rise", "num", ""),
               ("per-sample ratio", "num", "the class's mean change over the average sample's"),
               (f"loss@{a}", "num", "nats"), (f"loss@{b}", "num", "nats"),
               (f"accuracy@{a}", "num", ""), (f"accuracy@{b}", "num", ""), (f"ECE@{a}", "num", ""), (f"ECE@{b}", "num", "")]
    rows = []
    parts = rise["parts"][0]["classes"]
    for i, c in enumerate(parts[:CLASS_ROWS]):
        p = f"diagnosis.rise.parts.0.classes.{i}"
        s = stats.get(c["label"], {})
        j = rise["classes"].index(s) if s else None
        q = f"diagnosis.rise.classes.{j}"
        rows.append("<tr>" + "".join([
            cell(c["label"], class_name(c["label"], names), f"{p}.label"),
            cell(c["count"], count(c["count"]), f"{p}.count"),
            cell(c["sample_share"], pct(c["sample_share"], 1), f"{p}.sample_share"),
            cell(c["contribution"], signed(c["contribution"]), f"{p}.contribution"),
            cell(c["share"], share(c["share"]), f"{p}.share"),
            cell(c["ratio"], f'{c["ratio"]:.2f}' if c["ratio"] is not None else "n/a", f"{p}.ratio"),
            cell(s.get("loss_from"), nats(s.get("loss_from")), f"{q}.loss_from" if s else None),
            cell(s.get("loss_to"), nats(s.get("loss_to")), f"{q}.loss_to" if s else None),
            cell(s.get("accuracy_from"), pct(s.get("accuracy_from"), 1), f"{q}.accuracy_from" if s else None),
            cell(s.get("accuracy_to"), pct(s.get("accuracy_to"), 1), f"{q}.accuracy_to" if s else None),
            cell(s.get("ece_from"), nats(s.get("ece_from")), f"{q}.ece_from" if s else None),
            cell(s.get("ece_to"), nats(s.get("ece_to")), f"{q}.ece_to" if s else None),
        ]) + "</tr>")
    note = (f"{len(rows)} of {len(parts)} classes, largest contribution first." if len(parts) > len(rows) else
            "Largest contribution first.")
    return ('<section id="classes"><h2>Per class</h2>'
            + table("classes", f"Each class's part of the rise {a} \u2192 {b}", headers, rows, note) + "</section>")


def epochs_table(d: dict) -> str:
    headers = [("epoch", "num", ""), ("loss", "num", "mean loss (nats)"), ("accuracy", "num", ""),
               ("median loss", "num", "nats"), ("p99 loss", "num", "nats"), ("top 1% share", "num", "of the loss"),
               ("ECE", "num", "15 equal-width bins"), ("T*", "num", "fitted temperature"),
               ("recalibrated loss", "num", "L(T*), nats"), ("baseline", "num", "H(prior), nats"),
               ("information gain", "num", "1 - loss / H(prior)"), ("mark", "text", "")]
    rows = []
    marks = {"diverging": "loss up, accuracy held", "above_baseline": "ABOVE CHANCE"}
    for i, r in enumerate(d["epochs"]):
        p = f"epochs.{i}"
        mark = "; ".join(text for key, text in marks.items() if r[key])
        if r["temperature_at_bound"]:
            mark = "; ".join(x for x in (mark, "T* at the search bound") if x)
        classes = " ".join(c for c, on in (("diverging", r["diverging"]), ("above", r["above_baseline"])) if on)
        rows.append(f'<tr class="{classes}">' + "".join([
            cell(r["epoch"], str(r["epoch"]), f"{p}.epoch"),
            cell(r["loss"], nats(r["loss"]), f"{p}.loss"),
            cell(r["accuracy"], pct(r["accuracy"]), f"{p}.accuracy"),
            cell(r["loss_p50"], prob(r["loss_p50"]), f"{p}.loss_p50"),
            cell(r["loss_p99"], nats(r["loss_p99"]), f"{p}.loss_p99"),
            cell(r["top1pct_share"], pct(r["top1pct_share"], 1), f"{p}.top1pct_share"),
            cell(r["ece"], nats(r["ece"]), f"{p}.ece"),
            cell(r["temperature"], nats(r["temperature"], 3), f"{p}.temperature"),
            cell(r["recalibrated_loss"], nats(r["recalibrated_loss"]), f"{p}.recalibrated_loss"),
            cell(r["baseline_loss"], nats(r["baseline_loss"]), f"{p}.baseline_loss"),
            cell(r["information_gain"], pct(r["information_gain"], 1), f"{p}.information_gain"),
            text_cell(mark),
        ]) + "</tr>")
    return ('<section id="epochs"><h2>Per epoch</h2>'
            + table("epochs", "Every epoch", headers, rows,
                    "Marked: the loss is above its minimum while accuracy is at or above its value there.")
            + "</section>")


def warnings(d: dict, media) -> str:
    items = [escape(w) for w in d["warnings"]]
    if media is not None and (media.missing or media.skipped):
        items.append(escape(f"previews: {media.missing} files missing, {media.skipped} not embedded "
                            f"(template {media.template})"))
    if not items:
        return ""
    return '<section id="warnings"><h2>Warnings</h2><ul>' + "".join(f"<li>{w}</li>" for w in items) + "</ul></section>"
