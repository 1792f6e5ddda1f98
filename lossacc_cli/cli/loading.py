"""Load the run a command asks for: progress on stderr, class names, one line per warning."""

from __future__ import annotations

import dataclasses

from lossacc_cli.analysis.run import Run, available_cores, load_run
from lossacc_cli.cli.common import load_class_names, resolve_path, say
from lossacc_cli.cli.options import Shared
from lossacc_cli.cli.output import check_output, stderr_console
from lossacc_cli.errors import UsageError
from lossacc_cli.text import shown


def load(opts: Shared, *, progress: bool = True, inputs: tuple = (), epochs: tuple | None = None) -> Run:
    """The run at ``opts.path``, with a progress bar on stderr when it is a terminal and
    ``progress`` is wanted (table output); warnings printed once each.

    ``epochs``: the epoch options of a command that shows only those (``--epoch 50``, ``last``):
    the other epochs are read and checked, not reduced (see :func:`load_run`).

    ``--output`` is checked first (never one of the inputs: PATH's files, ``--class-names``, and
    ``inputs``), so that nothing is read for a report that could not be written.
    """
    path = resolve_path(opts.path)
    check_output(opts.output, path, (opts.class_names, *inputs))
    names = load_class_names(opts.class_names)
    options = opts.read_options()
    jobs = worker_count(opts.jobs)
    cache = open_cache(opts.no_cache)
    if progress and _stderr_is_terminal():  # a real terminal: FORCE_COLOR must not put frames in CI logs
        from rich.progress import Progress

        with Progress(console=stderr_console(), transient=True) as bar:
            task = bar.add_task("reading epochs", total=None)
            run = load_run(path, options, jobs=jobs, cache=cache, epochs=epochs,
                           on_epoch=lambda done, total: bar.update(task, completed=done, total=total))
    else:
        run = load_run(path, options, jobs=jobs, cache=cache, epochs=epochs)
    if names is not None:
        if len(names) != run.n_classes:
            raise UsageError(
                f"--class-names {shown(opts.class_names)}: {len(names)} names for {run.n_classes} classes"
            )
        run = dataclasses.replace(run, class_names=names)
    for note in collapse_notes(run.notes, [r.source for r in run.records] + list(run.unreduced)):
        say("warning", note)
    return run


def open_cache(disabled: bool):
    """The cache of epoch reductions, or None with ``--no-cache``; a folder that cannot be
    written is one warning (the run goes on without it)."""
    if disabled:
        return None
    from lossacc_cli.cache import EpochCache

    cache = EpochCache()
    cache.check_writable()
    if cache.problem:
        say("warning", cache.problem)
    return cache


def worker_count(jobs: int) -> int:
    """``--jobs`` as used: 0 means every core this process may run on, and more than that is
    capped there (extra processes would only compete); the run caps it at the epochs too."""
    cores = available_cores()
    return cores if jobs <= 0 else min(jobs, cores)


def collapse_notes(notes, sources) -> list[str]:
    """One line for a note that every epoch file repeats: ``"<file>: text"`` for 100 files becomes
    ``"text (100 files: epoch_001.npz, epoch_002.npz, ...)"``."""
    known = set(sources)
    groups: dict[str, list[str]] = {}
    out: list[object] = []
    for note in notes:
        prefix, sep, rest = note.partition(": ")
        if sep and prefix in known:
            if rest not in groups:
                groups[rest] = []
                out.append(rest)
            groups[rest].append(prefix)
        else:
            out.append((note,))
    lines = []
    for item in out:
        if isinstance(item, tuple):
            lines.append(item[0])
            continue
        files = groups[item]
        if len(files) == 1:
            lines.append(f"{files[0]}: {item}")
        else:
            shown = ", ".join(files[:3]) + (", ..." if len(files) > 3 else "")
            lines.append(f"{item} ({len(files)} files: {shown})")
    return lines


def _stderr_is_terminal() -> bool:
    import os
    import sys

    try:
        return os.isatty(sys.stderr.fileno())
    except (AttributeError, OSError, ValueError):
        return False
