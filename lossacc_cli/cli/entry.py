"""The ``lossacc`` program: set the process up, answer ``--version`` before anything is imported,
then run the Typer app.

This module imports nothing heavy, so that the program is ready for Ctrl-C before numpy, pyarrow
and rich load: an interrupt at any point exits 130 without a traceback.
"""

from __future__ import annotations

import os
import sys

EXIT_INTERRUPTED = 130
EXIT_BAD_OUTPUT = 2


def main() -> None:
    """Entry point of the ``lossacc`` command."""
    try:
        closed = _standard_streams()
        if sys.argv[1:] in (["--version"], ["-V"]):
            if 1 in closed:  # the answer would be lost, as a report would
                sys.stderr.write("error: stdout is closed: the version was not written\n")
                sys.exit(EXIT_BAD_OUTPUT)
            from lossacc_cli import __version__

            sys.stdout.write(f"lossacc {__version__}\n")
            return
        from lossacc_cli.cli import output

        if 1 in closed:
            output.mark_stdout_closed()
        from lossacc_cli.cli.app import app

        app(prog_name="lossacc")
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)


def _standard_streams() -> set[int]:
    """Make fds 0-2 safe to rely on; returns those that were closed.

    A closed stdin/stdout/stderr is reopened on the null device, so that no file opened later
    (an input, a report) gets its number and receives what is meant for the terminal. Text
    streams escape what their encoding cannot represent (``PYTHONIOENCODING=ascii`` and a class
    named "café" prints ``caf\\xe9``) instead of failing.
    """
    closed = set()
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.add(fd)
    for fd in sorted(closed):
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):
                pass
    return closed
