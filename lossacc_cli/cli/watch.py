"""`lossacc analyze --watch`: analyse the run again whenever an epoch arrives.

Every ``interval`` seconds the run's folder is looked at (names, sizes, modification times: no
file is read); when it changed, the run is loaded again through the cache, so only the new epochs
are read and reduced, and analysed. In a terminal the view is redrawn in place (rich Live);
otherwise each new analysis is one record on stdout (one JSON document per line with
``--format json``). A fault while the run is being written (an error of the input) is shown and
the watch goes on; Ctrl-C ends it with exit 130.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from lossacc_cli.analysis.run import load_run
from lossacc_cli.cli.common import resolve_path, say
from lossacc_cli.cli.loading import collapse_notes, open_cache, worker_count
from lossacc_cli.cli.options import Format, Shared
from lossacc_cli.cli.output import emit_line
from lossacc_cli.errors import LossaccError
from lossacc_cli.readers.snapshot import snapshot
from lossacc_cli.render.jsonout import document


def follow(opts: Shared, analyse: Callable, *, interval: float) -> None:
    """Watch ``opts.path`` until interrupted (KeyboardInterrupt propagates to the caller)."""
    from lossacc_cli.cli.respond import stdout_is_terminal, terminal_console
    from lossacc_cli.render.analyze import live_view, watch_record

    path = resolve_path(opts.path)
    options, jobs = opts.read_options(), worker_count(opts.jobs)
    cache = open_cache(opts.no_cache)
    live = None
    if opts.fmt is Format.table and stdout_is_terminal():
        from rich.live import Live

        live = Live(console=terminal_console(opts.color), auto_refresh=False, vertical_overflow="crop")
        live.start()
    told: set[str] = set()  # each warning once, not at every poll

    def tell(text: str) -> None:
        if text not in told:
            told.add(text)
            say("warning", text)  # stderr: above the live view, which rich keeps at the bottom

    seen = None
    try:
        while True:
            try:
                now = snapshot(path)
                if now == seen:
                    time.sleep(interval)
                    continue
                seen = now
                run = load_run(path, options, jobs=jobs, cache=cache)
                report = analyse(run)
            except LossaccError as exc:  # a run being written (or a network) may mend: keep watching
                tell(f"{exc} (watching; Ctrl-C to stop)")
            else:
                for note in collapse_notes(run.notes, [r.source for r in run.records]):
                    tell(note)
                if live is not None:
                    status = (f"watching {report.path} (every {interval:g} s; Ctrl-C to stop), "
                              f"analysed at {time.strftime('%H:%M:%S')}")
                    live.update(live_view(report, status=status), refresh=True)
                else:
                    line = (json.dumps(document("analyze", report.to_dict(top=opts.top)), allow_nan=False)
                            if opts.fmt is Format.json else watch_record(report))
                    if not emit_line(line):
                        return  # the reader closed the pipe: nobody is watching any more
            time.sleep(interval)
    finally:
        if live is not None:
            live.stop()
