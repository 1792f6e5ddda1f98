"""Where command output goes: stdout, or the file ``--output`` names; messages go to stderr.

Every report is written here, by :func:`emit`:

- ``--output -`` (or no ``--output``) is stdout. A reader that goes away (``| head``) ends the
  output quietly and changes no exit code; a stdout that is closed or full (``>&-``,
  ``> /dev/full``) is one ``error:`` line and exit code 2.
- A regular file (or a new one) is written to a temporary file in its folder, then renamed over
  it: a crash never leaves half a report, and concurrent writers leave one complete file. An
  existing file keeps its mode (and, for root, its owner); a new one gets the umask's mode. A
  symbolic link is written through, not replaced.
- Anything else that can be written (``/dev/null``, a FIFO, a terminal) is written directly,
  never renamed over: the rename would replace a device node with a regular file.
- Before any work, :func:`check_output` refuses an output that is one of the inputs, or a file
  inside the input folder that a later run would take for an epoch file.

Rich is imported by the first console or renderable that needs it: a JSON report, written as
text, never loads it (0.05-0.08 s of start-up).

All text shown passes through :func:`lossacc_cli.text.shown` (tables) and, as a safety net for
every renderable, :class:`Inert`: no control character from the data reaches a terminal.
"""

from __future__ import annotations

import errno
import functools
import io
import os
import re
import secrets
import stat
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from lossacc_cli.errors import OutputError, UsageError
from lossacc_cli.text import is_shown, shown, shown_lines

if TYPE_CHECKING:
    from rich.console import Console

PLAIN_WIDTH = 160
STDOUT = "-"

_stdout_closed = False  # set by the program's entry point when fd 1 was closed at start-up


def mark_stdout_closed() -> None:
    """The process started with no stdout (``>&-``): a report for stdout is an error."""
    global _stdout_closed
    _stdout_closed = True


@functools.cache
def _console_class() -> type[Console]:
    from rich.console import Console

    class _Console(Console):
        """Rich's console, except that a closed pipe is reported to the caller (rich exits 1,
        which for ``check`` would read as a failed rule)."""

        def on_broken_pipe(self) -> None:
            self.quiet = True
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    return _Console


def stdout_console() -> Console:
    """Rich decides colour and box-drawing from the terminal and NO_COLOR; piped output is given a
    wide fixed width so table rows are never wrapped (one record per line for awk/cut)."""
    console_class = _console_class()
    console = console_class()
    if not console.is_terminal:
        console = console_class(width=max(PLAIN_WIDTH, console.width))
    return console


def stderr_console() -> Console:
    return _console_class()(stderr=True, soft_wrap=True)


class Inert:
    """A renderable whose text is escaped after layout: a control character that reached a
    renderable without :func:`~lossacc_cli.text.shown` (prose quoting an id, a class name, a path)
    is printed as an escape, never acted on. Rich's own styling travels outside the text and is
    kept."""

    def __init__(self, renderable) -> None:
        self.renderable = renderable

    def __rich_console__(self, console, options):
        from rich.segment import Segment

        for segment in console.render(self.renderable, options):
            text = segment.text
            if segment.control or is_shown(text):
                yield segment
            else:
                yield Segment(shown_lines(text), segment.style, segment.control)


def render_text(renderable, *, plain: bool, width: int | None = None) -> str:
    """Render to a string without colour (for files and for tests)."""
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=width or PLAIN_WIDTH, color_system=None, force_terminal=False)
    console.print(Inert(renderable))
    return buffer.getvalue()


def is_plain(console: Console) -> bool:
    return not console.is_terminal


def emit(renderable, doc_text: str | Iterable[str] | None, *, output: str | None,
         inert: bool = False) -> None:
    """Print the result (table renderable, or the text of a JSON/XML/... document) to stdout, or
    write it to ``output``. Control characters in ``doc_text`` are escaped, unless ``inert`` says
    it holds none from the data: rendered through :class:`Inert` already (its escape codes are
    rich's own colours), or a JSON document (its encoder escaped every character).
    ``doc_text`` may come in consecutive parts (a long JSON document), each written as it comes.

    Raises
    ------
    OutputError
        The output cannot be written (a folder, no space left, permission denied, stdout
        closed); a reader that closed the pipe is no error.
    """
    if doc_text is not None:
        parts = (doc_text,) if isinstance(doc_text, str) else doc_text
        doc_text = parts if inert else map(shown_lines, parts)  # per character: by parts alike
    if output and output != STDOUT:
        text = doc_text if doc_text is not None else render_text(renderable, plain=True)
        write_report(output, text)
        return
    if _stdout_closed or sys.stdout is None:
        raise OutputError("cannot write the report: stdout is closed; pass --output FILE")
    try:
        if doc_text is not None:
            for part in doc_text:
                sys.stdout.write(part)
        else:
            stdout_console().print(Inert(renderable))
        sys.stdout.flush()
    except OSError as exc:
        _stdout_failed(exc)


def emit_line(text: str) -> bool:
    """One record on stdout, escaped and flushed; False once the reader has closed the pipe (a
    follower such as ``--watch`` then stops). Other failures raise OutputError."""
    if _stdout_closed or sys.stdout is None:
        raise OutputError("cannot write to stdout: it is closed")
    try:
        sys.stdout.write(shown_lines(text.rstrip("\n") + "\n"))
        sys.stdout.flush()
    except OSError as exc:
        _stdout_failed(exc)
        return False
    return True


def _stdout_failed(exc: OSError) -> None:
    """Whatever is left of the report goes nowhere, so that the final flush at exit neither fails
    again nor prints "Exception ignored"; a closed pipe is where the reader wanted to stop."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        fd = None
    if fd is not None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    if isinstance(exc, BrokenPipeError):
        return
    raise OutputError(f"cannot write the report to stdout: {_reason(exc)}") from None


def _reason(exc: OSError) -> str:
    return os.strerror(exc.errno).lower() if exc.errno else str(exc)


# --- the output file --------------------------------------------------------------------------

_DATA_FILE = re.compile(r"[^._].*\.(parquet|npz)", re.IGNORECASE)
_EPOCH_FOLDER = re.compile(r"epoch=[0-9]+")


def check_output(output: str | None, root: str, inputs: tuple[str | os.PathLike | None, ...] = ()) -> None:
    """Refuse, before any work, an ``--output`` that cannot or must not be written.

    Parameters
    ----------
    output : str or None
        The ``--output`` value (None or ``-``: stdout, nothing to check).
    root : str
        The input PATH (a folder or a file).
    inputs : tuple of paths
        Other files the command reads (``--class-names``, ``--config``).

    Raises
    ------
    UsageError
        The output is one of the inputs; it is a file inside the input folder that a later run
        would read as an epoch file; it names a folder, a socket, or a folder that does not exist.
    """
    if not output or output == STDOUT:
        return
    label = f"--output {shown(output)}"
    target = _stat(output, label)
    if target is not None:
        if stat.S_ISDIR(target.st_mode):
            raise UsageError(f"{label}: is a folder; give a file name")
        if stat.S_ISSOCK(target.st_mode):
            raise UsageError(f"{label}: is a socket; give a file name, a FIFO or a device")
        if not stat.S_ISREG(target.st_mode):
            return  # a device or a FIFO: written directly, and no input is one
        for path in (*_input_files(root), *(p for p in inputs if p)):
            info = _stat(path, "")
            if info is not None and (info.st_dev, info.st_ino) == (target.st_dev, target.st_ino):
                raise UsageError(f"{label}: is one of the inputs ({shown(path)}); it would be "
                                 "replaced by the report")
    elif output.endswith(("/", os.sep)):
        raise UsageError(f"{label}: names a folder; give a file name")
    else:
        folder = os.path.dirname(os.path.abspath(output))
        if not os.path.isdir(folder):
            raise UsageError(f"{label}: folder {shown(folder)} does not exist")
    if _read_as_epoch(output, root):
        raise UsageError(
            f"{label}: inside the input folder {shown(root)} under a name that the next run "
            "would read as an epoch file; write the report elsewhere (or name it .json, .txt ...)"
        )


def _stat(path, label: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if not label:
            return None
        raise UsageError(f"{label}: {_reason(exc)}") from None


def _input_files(root: str) -> list[str]:
    """The files a run under ``root`` can read: ``root`` itself, or the data files of the folder
    and of its ``epoch=N`` folders."""
    if not os.path.isdir(root):
        return [root]
    found: list[str] = []
    try:
        with os.scandir(root) as entries:
            for entry in entries:
                if _DATA_FILE.fullmatch(entry.name):
                    found.append(entry.path)
                elif _EPOCH_FOLDER.fullmatch(entry.name) and entry.is_dir():
                    with os.scandir(entry.path) as parts:
                        found.extend(p.path for p in parts if _DATA_FILE.fullmatch(p.name))
    except OSError:
        pass  # reading the run will report it
    return found


def _read_as_epoch(output: str, root: str) -> bool:
    """True when ``output`` lies where discovery under ``root`` reads, under a data file's name."""
    if not os.path.isdir(root) or not _DATA_FILE.fullmatch(os.path.basename(output)):
        return False
    real_root = os.path.realpath(root)
    folder = os.path.realpath(os.path.dirname(os.path.abspath(output)))
    if folder == real_root:
        return True
    parent, name = os.path.split(folder)
    return parent == real_root and bool(_EPOCH_FOLDER.fullmatch(name))


def write_report(path: str, text: str | Iterable[str]) -> None:
    """Write ``text`` (UTF-8; a string or its consecutive parts) to ``path`` as the module
    docstring says.

    Raises
    ------
    OutputError
        One line naming the output and the reason (a folder, permission denied, no space left,
        a FIFO nobody reads).
    """
    label = f"--output {shown(path)}"
    data = [text] if isinstance(text, str) else text
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise OutputError(f"{label}: cannot write: {_reason(exc)}") from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise OutputError(f"{label}: is a folder; give a file name")
    if info is not None and not stat.S_ISREG(info.st_mode):
        _write_in_place(path, data, label)
    else:
        _write_replacing(path, data, info, label)


def _write_in_place(path: str, data: Iterable[str], label: str) -> None:
    """A device, FIFO or terminal: opened for writing as it is (no create, no rename)."""
    flags = os.O_WRONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise OutputError(f"{label}: no process is reading it (a FIFO or socket)") from None
        raise OutputError(f"{label}: cannot write: {_reason(exc)}") from None
    try:
        os.set_blocking(fd, True)
        _write_all(fd, data)
    except BrokenPipeError:
        return  # the reader went away: as with stdout, not an error
    except OSError as exc:
        raise OutputError(f"{label}: cannot write: {_reason(exc)}") from None
    finally:
        os.close(fd)


def _write_replacing(path: str, data: Iterable[str], info: os.stat_result | None, label: str) -> None:
    """A temporary file beside the target, renamed over it once complete."""
    target = os.path.realpath(path) if os.path.islink(path) else path
    folder = os.path.dirname(target) or "."
    if not os.path.isdir(folder):
        raise OutputError(f"{label}: folder {shown(folder)} does not exist")
    name = os.path.basename(target)
    # hidden (leading dot): a run reading this folder never takes it for an epoch file
    tmp = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as exc:
        raise OutputError(f"{label}: cannot create a file in {shown(folder)}: {_reason(exc)}") from None
    try:
        try:
            if info is not None:
                os.fchmod(fd, stat.S_IMODE(info.st_mode))
                if hasattr(os, "fchown") and os.geteuid() == 0:
                    os.fchown(fd, info.st_uid, info.st_gid)
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"{label}: cannot write: {_reason(exc)}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_all(fd: int, data: Iterable[str]) -> None:
    """Each part of ``data``, UTF-8, one after the other (one part's bytes at a time)."""
    for part in data:
        view = memoryview(part.encode("utf-8"))
        while view:
            written = os.write(fd, view)
            view = view[written:]
