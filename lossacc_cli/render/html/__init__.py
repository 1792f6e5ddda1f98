"""AnalyzeReport -> one self-contained HTML page (``lossacc report``; the ``report`` extra).

    from lossacc_cli.report import analyze
    from lossacc_cli.render import html
    page = html.render(analyze("preds/"), top=50, media="images/{id}.png")

The page holds everything it shows: the charts are inline SVG drawn by matplotlib, the style sheet
and the script (sortable tables, hover texts) are inline, previews are data URIs, and its
Content-Security-Policy forbids every request, so it opens offline and never loads anything.
Large runs are summarised (histograms, top lists), never dumped: the page stays small whatever
the number of samples. matplotlib is imported here only, when a page is rendered.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape
from importlib import resources

from lossacc_cli.errors import UsageError

INSTALL_HINT = "pip install 'lossacc[report]'"


class MissingExtra(UsageError):
    """The ``report`` extra (matplotlib) is not installed."""


def require() -> None:
    """Raise :class:`MissingExtra` (one line, with the install command) unless matplotlib imports."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MissingExtra(f"the HTML report needs matplotlib, which is not installed: {INSTALL_HINT}") from None


def _static(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def _label_extras(report, d: dict) -> dict:
    """For each listed label issue (by its row in the JSON list): prediction and p[label] at the two
    compared epochs and its loss change, from the report's per-sample table."""
    samples = d["label_issues"]["samples"]
    if not samples or report.diagnosis.rise is None:
        return {}
    from lossacc_cli.render.html.page import LABEL_ROWS

    frame = report.samples_frame()
    ids = [s["id"] for s in samples[:LABEL_ROWS]]
    where = frame.index.get_indexer(ids)
    columns = ("pred_from", "pred_to", "p_label_from", "p_label_to", "change")
    values = {c: frame[c].to_numpy() for c in columns}
    out = {}
    for i, j in enumerate(where):
        if j >= 0:
            out[i] = {c: (int(values[c][j]) if c.startswith("pred") else float(values[c][j])) for c in columns}
    return out


def render(report, *, top: int = 50, media=None) -> str:
    """The whole report as one HTML page.

    Parameters
    ----------
    report : AnalyzeReport
        What ``lossacc analyze`` shows; rendered, never recomputed: every number in the page is
        the value of ``report.to_dict(top=top)`` (the JSON of ``lossacc analyze --format json``).
    top : int
        Rows of the table of samples most responsible for the rise.
    media : str or Media, optional
        A path template such as ``"images/{id}.png"`` (fields ``{id}`` and ``{label}``): each
        listed sample's image (embedded, size-capped) or text is shown beside its row. A
        :class:`~.media.Media` counts the files it could not show.

    Returns
    -------
    str
        The page (UTF-8 text): a few hundred KB whatever the run's size, plus the previews
        (at most 2 MB of them).
    """
    require()
    from lossacc_cli import __version__
    from lossacc_cli.render.html import charts, page
    from lossacc_cli.render.html.media import Media
    from lossacc_cli.render.jsonout import clean

    previews = media if isinstance(media, Media) or media is None else Media(media)
    d = clean(report.json_body(top=top))
    dx = d["diagnosis"]
    rise = dx["rise"]
    listed = {page._anchor(s["id"]) for s in rise["top_samples"]} if rise else set()
    cal = d["calibration"]
    a, b = cal["from"]["epoch"], cal["to"]["epoch"]
    sections = [
        page.header(d, __version__),
        f'<p class="headline" data-json="headline">{escape(d["headline"])}</p>',
        page.findings(d, listed),
        page.facts(d),
        page.figure("curves", "Loss and accuracy over epochs", charts.curves(d),
                    "Loss on a log scale with the chance baseline H(prior) (the loss of always predicting the "
                    "class frequencies) and the loss after each epoch's temperature T*; shaded: epochs whose loss "
                    "is above its minimum while accuracy holds; star: the checkpoint to keep. Hover for exact values."),
        page.figure("decomposition", "Where the rise sits", charts.decomposition(d),
                    "rise = calibration part + refinement part (exactly); each part split by outcome group, and the "
                    "rise by class against the class's share of the samples: a class above the dashed line grows "
                    "more than its size predicts." if rise else "No sample is present at both compared epochs."),
        page.figure("distributions", "Per-sample loss at the compared epochs", charts.distributions(d),
                    "Histograms on log-log axes (log-spaced bins); the markers along the top are the outlying "
                    "samples (the fewest highest-loss samples that together carry half the epoch's loss)."),
        '<section class="figure" id="reliability"><h2>Calibration at the compared epochs</h2><div class="pair">'
        + "".join(
            f'<figure data-figure="reliability-{key}"><div class="plot">{charts.reliability(cal[key], key)}</div>'
            f'<div class="aside">{page.ece_table(cal[key], key)}</div><figcaption>Reliability at epoch {epoch}: '
            "accuracy per confidence bin against the diagonal; shaded above or below it, the gap to the bin's "
            "mean confidence (red: overconfident, teal: under-confident); below, the samples per bin.</figcaption></figure>"
            for key, epoch in (("from", a), ("to", b)))
        + "</div></section>",
        page.top_samples_table(d, previews),
        page.label_issues_table(d, _label_extras(report, d), previews),
        page.classes_table(d),
        page.epochs_table(d),
        page.warnings(d, previews),
        f'<footer>lossacc {escape(__version__)}. Every number above is the value in '
        f"<code>lossacc analyze --format json --top {top}</code> on the same run; losses in nats. "
        "Hover a number or a chart element for its exact value; click a column to sort.</footer>",
    ]
    script = _static("report.js")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    policy = (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; "
              "base-uri 'none'; form-action 'none'")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        '<link rel="icon" href="data:,">'
        f"<title>lossacc report: {escape(str(d['path']))}</title>"
        f"<style>\n{_static('report.css')}</style></head>\n<body>\n"
        + "\n".join(s for s in sections if s)
        + '\n<div id="tooltip" role="tooltip"></div>\n'
        f"<script>{script}</script>\n</body></html>\n"
    )
