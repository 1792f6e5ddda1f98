"""Opening input files: regular files only, whatever the path turns out to be.

Every input lossacc reads (epoch files, ``--class-names``, ``--config``, ``pyproject.toml``) is
opened here. A FIFO blocks its reader until a writer appears, ``/dev/zero`` never ends, a socket
cannot be opened, a directory or a broken link is no file: each is named for what it is before
anything is read. The kind is checked on the path first (``stat``, following links), so that
opening a device never happens (opening one can have side effects), and again on the open
descriptor (``fstat``), so that a path swapped in between cannot slip through.

>>> with open_regular("epoch_001.npz") as (handle, info):     # doctest: +SKIP
...     data = handle.read()
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from typing import BinaryIO

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX: no O_NONBLOCK to clear either
    fcntl = None

from lossacc_cli.errors import InputError
from lossacc_cli.readers.validate import display_path

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)
_OPEN_FLAGS = (
    os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_PROC_FD = "/proc/self/fd"


def kind_of(mode: int) -> str:
    """What a file of this ``st_mode`` is, for messages (``"a FIFO (named pipe)"``)."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def reason(exc: OSError) -> str:
    """``permission denied`` for an OSError, without the path it repeats."""
    if exc.errno is not None:
        return os.strerror(exc.errno).lower()
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def describe(path: str | bytes | os.PathLike) -> str | None:
    """None when ``path`` is (or links to) a regular file; otherwise what it is: ``"a FIFO (named
    pipe)"``, ``"a link to a character device (/dev/zero)"``, ``"a broken link (to gone.npz)"``,
    ``"a link loop"``, ``"a directory"``, ``"no such file or directory"``, ``"permission denied"``."""
    try:
        link = os.lstat(path)
    except OSError as exc:
        return reason(exc)
    is_link = stat.S_ISLNK(link.st_mode)
    try:
        info = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a link loop"
        if is_link and exc.errno == errno.ENOENT:
            return f"a broken link (to {display_path(os.readlink(path))})"
        return reason(exc)
    if stat.S_ISREG(info.st_mode):
        return None
    kind = kind_of(info.st_mode)
    if is_link:
        return f"a link to {kind} ({display_path(os.path.realpath(path))})"
    return kind


def not_regular(label: str, kind: str) -> InputError:
    if kind in ("no such file or directory", "permission denied"):
        return InputError(f"{label}: {kind}")
    return InputError(f"{label}: not a regular file: {kind}; lossacc reads regular files only")


def check_regular(path: str | bytes | os.PathLike, label: str | None = None) -> None:
    """Raise InputError naming what ``path`` is unless it is (or links to) a regular file."""
    kind = describe(path)
    if kind is not None:
        raise not_regular(label or display_path(path), kind)


@contextlib.contextmanager
def open_regular(
    path: str | bytes | os.PathLike, label: str | None = None
) -> Iterator[tuple[BinaryIO, os.stat_result]]:
    """The regular file at ``path``, opened for reading, and its ``fstat``.

    Raises
    ------
    InputError
        The path is no regular file (named for what it is), or cannot be opened.
    """
    label = label or display_path(path)
    check_regular(path, label)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise InputError(f"{label}: cannot open file: {reason(exc)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # swapped between the stat and the open
            raise not_regular(label, kind_of(info.st_mode))
        if fcntl is not None:
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~getattr(os, "O_NONBLOCK", 0))
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle, info


def native_path(handle: BinaryIO, path: str) -> str:
    """A path naming the very file ``handle`` has open, for libraries that open by name
    (Arrow): ``/proc/self/fd/N`` where the system has it (the file already checked, not whatever
    the name points at by now, and any name in plain ASCII), else ``path``."""
    if os.path.isdir(_PROC_FD):
        return f"{_PROC_FD}/{handle.fileno()}"
    return path


def same_file(before: os.stat_result, after: os.stat_result) -> bool:
    """True when two stats show one unchanged file (same inode, size and modification time)."""
    return (before.st_dev, before.st_ino, before.st_size, before.st_mtime_ns) == (
        after.st_dev, after.st_ino, after.st_size, after.st_mtime_ns
    )


def changed_error(label: str, before: os.stat_result, after: os.stat_result) -> InputError:
    detail = (f"{before.st_size} -> {after.st_size} bytes" if before.st_size != after.st_size
              else "rewritten")
    return InputError(
        f"{label}: the file changed while it was being read ({detail}); a writer is still at "
        "work: read it again once it is done"
    )


def read_small(path: str | os.PathLike, *, label: str, limit: int) -> bytes:
    """The whole content of a small regular file (class names, configuration), at most ``limit``
    bytes: a larger file is refused before it is read."""
    with open_regular(path, label) as (handle, info):
        if info.st_size > limit:
            raise InputError(
                f"{label}: {info.st_size:,} bytes, more than the {limit:,} a file of this kind may have"
            )
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise InputError(f"{label}: cannot read file: {reason(exc)}") from None
    if len(data) > limit:
        raise InputError(f"{label}: grew beyond {limit:,} bytes while it was being read")
    return data
