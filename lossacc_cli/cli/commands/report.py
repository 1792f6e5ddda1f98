"""`lossacc report`: the whole analysis as one self-contained HTML page (the ``report`` extra)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from lossacc_cli.cli.common import cli_errors
from lossacc_cli.cli.options import FromOpt, Shared, ToOpt, shared_options
from lossacc_cli.errors import UsageError

DEFAULT_OUTPUT = "report.html"

TopOpt = Annotated[int, typer.Option("--top", help="Rows of the table of samples most responsible.")]
MediaOpt = Annotated[Optional[str], typer.Option(
    "--media", help="Path template of each listed sample's image or text file, e.g. 'images/{id}.png' "
    "(fields {id} and {label}); images are embedded (256 KB each, 2 MB in all at most).")]


@shared_options(fmt=False)
def report(opts: Shared, from_epoch: FromOpt = None, to_epoch: ToOpt = None, top: TopOpt = 50,
           media: MediaOpt = None) -> None:
    """The whole analysis as one HTML page that opens offline: the headline and findings, the
    curves, where the rise sits, the loss distributions, reliability diagrams and sortable tables.

    Written to report.html unless -o FILE (-o - for stdout). Needs the report extra:
    pip install 'lossacc[report]'.
    Example: lossacc report preds/ -o report.html --media 'images/{id}.png'
    """
    with cli_errors(opts.debug):
        if top < 1:  # checked here: Click's range check prints a usage block, not one line
            raise UsageError(f"--top must be at least 1, not {top}")
        from lossacc_cli.cli.loading import load
        from lossacc_cli.cli.output import emit, stderr_console
        from lossacc_cli.render import html  # matplotlib only when a page is rendered
        from lossacc_cli.render.html.media import Media
        from lossacc_cli.report import analyze_run

        html.require()
        previews = Media(media) if media else None
        run = load(opts)
        page = html.render(analyze_run(run, from_epoch=from_epoch, to_epoch=to_epoch), top=top, media=previews)
        output = opts.output or DEFAULT_OUTPUT
        err = stderr_console()
        if previews is not None and (previews.missing or previews.skipped):
            err.print(f"warning: --media {media}: {previews.missing} files missing, {previews.skipped} not embedded "
                      "(named in the page)", markup=False, highlight=False, emoji=False)
        emit(None, page, output=output)  # a closed pipe or a full stdout handled as for every report
        if output != "-":
            err.print(f"wrote {output} ({len(page.encode('utf-8')) / 1024:,.0f} KB)", markup=False, highlight=False,
                      emoji=False)
    raise typer.Exit(0)
