"""Remote PATHs (``s3://``, ``gs://``, ``az://``, ``hf://``, any fsspec URL): a private local copy.

A remote run is listed like a local folder (one level, plus the ``epoch=N`` folders), and the
objects discovery would read are copied, one at a time in blocks of :data:`BLOCK_BYTES`, into a
private temporary folder (mode 0700, never beside the input) that has the same names. The local
readers then read that copy, so discovery (epoch numbers, files ignored, a run still being written)
and every check behave exactly as for a local folder, and the readers' memory budget applies to
what each object really holds. The copy is removed when the command ends. Objects whose names say
they are no epoch file are never downloaded: an empty stand-in keeps their name for the notes.

``s3://`` uses pyarrow's own S3 client (credentials, region and endpoint from the standard AWS
environment: ``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``, ...); every other scheme goes through
fsspec and the file system package of that scheme, imported only when such a URL is given.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field

from lossacc_cli.errors import InputError, LossaccError, UsageError
from lossacc_cli.readers.files import reason
from lossacc_cli.text import shown

BLOCK_BYTES = 8 << 20
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+)://(.*)", re.DOTALL)
_EPOCH_FOLDER = re.compile(r"epoch=([0-9]+)")
_DATA = (".parquet", ".npz")
# scheme -> (package to import, the extra that installs it)
_PACKAGES = {
    "gs": ("gcsfs", "gs"), "gcs": ("gcsfs", "gs"),
    "az": ("adlfs", "az"), "abfs": ("adlfs", "az"), "abfss": ("adlfs", "az"),
    "hf": ("huggingface_hub", "hf"),
}


def is_url(path: object) -> bool:
    """True for a remote URL (``scheme://...``); ``file://`` and plain paths are local."""
    match = _URL.fullmatch(os.fsdecode(path)) if isinstance(path, (str, bytes)) else None
    return bool(match) and match.group(1).lower() != "file"


def local_path(path: str) -> str:
    """``file:///x/y`` as ``/x/y``; any other path unchanged."""
    return path[len("file://"):] if path.lower().startswith("file://") else path


@dataclass
class Copy:
    """The local copy of a remote PATH: ``root`` is read as PATH; :meth:`relabel` puts the URL
    back into messages; ``origins`` maps each copied file to its URL and remote stamp."""

    root: str
    url: str
    folder: str
    origins: dict[str, tuple[str, int, int]] = field(default_factory=dict)

    def relabel(self, text: str) -> str:
        return text.replace(self.root, self.url) if self.root else text


_ORIGINS: dict[str, tuple[str, int, int]] = {}  # copied file -> (URL, size, mtime_ns), while it lives


def origin(path: str) -> tuple[str, int, int] | None:
    """``(url, size, mtime_ns)`` of the remote object a local copy was made from, else None."""
    return _ORIGINS.get(path)


@contextlib.contextmanager
def opened(path: str) -> Iterator[Copy]:
    """A local view of ``path``: the path itself when local, else a private copy of the remote
    run (removed on exit). Errors raised inside name the URL, never the copy."""
    if not is_url(path):
        local = local_path(path)  # file:///x is read as /x and named as given
        yield Copy(root=local if local != path else "", url=shown(path), folder="")
        return
    url = path.rstrip("/") if not path.endswith("://") else path
    fs, where = filesystem(path)
    folder = tempfile.mkdtemp(prefix="lossacc-remote-")
    copy = Copy(root="", url=shown(url), folder=folder)
    try:
        copy.root = _mirror(fs, where, url, folder, copy)
        _ORIGINS.update(copy.origins)
        yield copy
    except LossaccError as exc:
        raise type(exc)(copy.relabel(str(exc))) from None
    finally:
        for name in copy.origins:
            _ORIGINS.pop(name, None)
        shutil.rmtree(folder, ignore_errors=True)


def filesystem(url: str):
    """``(pyarrow.fs.FileSystem, path inside it)`` for a remote URL.

    Raises
    ------
    UsageError
        The package the scheme needs is not installed (the message names the extra).
    """
    scheme, rest = _URL.fullmatch(url).groups()
    scheme = scheme.lower()
    if scheme in ("s3", "s3a"):
        return _s3(), rest.strip("/")
    package, extra = _PACKAGES.get(scheme, ("fsspec", None))
    try:
        import fsspec
        from pyarrow.fs import FSSpecHandler, PyFileSystem

        fs, inner = fsspec.core.url_to_fs(url)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or package
        install = f"pip install 'lossacc[{extra}]'" if extra else f"pip install fsspec {missing}"
        raise UsageError(f"{shown(url)}: {scheme}:// paths need the {missing} package: {install}") from None
    except ValueError as exc:  # fsspec: "Protocol not known"
        raise UsageError(f"{shown(url)}: unsupported URL scheme {scheme}:// ({_first_line(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - a file system's own set-up failure (credentials, ...)
        raise InputError(f"{shown(url)}: cannot open: {_first_line(exc)}") from None
    return PyFileSystem(FSSpecHandler(fs)), inner.rstrip("/")


def _s3():
    try:
        from pyarrow.fs import S3FileSystem
    except ImportError:
        raise UsageError("s3:// paths need a pyarrow built with S3 support: pip install 'lossacc[s3]' "
                         "with pyarrow from PyPI") from None
    options: dict[str, object] = {}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        scheme, sep, host = endpoint.partition("://")
        options["endpoint_override"] = host.rstrip("/") if sep else endpoint
        if sep:
            options["scheme"] = scheme
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        options["region"] = region
    return S3FileSystem(**options)


_REASONS = [(re.compile(p), r) for p, r in (
    (r"NO_SUCH_BUCKET|NoSuchBucket", "no such bucket"),
    (r"ACCESS_DENIED|AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|HTTP status 403\b",
     "permission denied (check the credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE)"),
    (r"NO_SUCH_KEY|NoSuchKey", "no such file or directory"),
)]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return shown(text.splitlines()[0]) if text else type(exc).__name__


def _reason(exc: BaseException) -> str:
    """A one-line reason from a file system's error: AWS's long messages cut to their gist."""
    text = str(exc)
    for pattern, reason in _REASONS:
        if pattern.search(text):
            return reason
    if "NETWORK_CONNECTION" in text:
        detail = re.search(r"Details: ([^\n]*)", text)
        shown_detail = f" ({shown(detail.group(1).strip())})" if detail else ""
        return f"cannot reach the storage server{shown_detail}; AWS_ENDPOINT_URL chooses another"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "no such file or directory"
    return _first_line(exc)


def _info(fs, where: str, url: str):
    try:
        return fs.get_file_info(where)
    except Exception as exc:  # noqa: BLE001 - any client failure is an input error here
        raise InputError(f"{shown(url)}: {_reason(exc)}") from None


def _listing(fs, where: str, url: str):
    from pyarrow.fs import FileSelector

    try:
        return sorted(fs.get_file_info(FileSelector(where, recursive=False)),
                      key=lambda info: os.fsencode(_base(info.path)))
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{shown(url)}: cannot list: {_reason(exc)}") from None


def _base(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _mirror(fs, where: str, url: str, folder: str, copy: Copy) -> str:
    """Copy what discovery reads of the remote PATH into ``folder``; the local PATH."""
    from pyarrow.fs import FileType

    info = _info(fs, where, url)
    name = _base(where) or "root"
    if info.type == FileType.NotFound or (info.type == FileType.Directory and where and not
                                          _listing(fs, where, url) and not _is_bucket(where)):
        raise InputError(f"{shown(url)}: {_missing(fs, where, url)}")
    local = os.path.join(folder, name)
    if info.type == FileType.File:
        _fetch(fs, info, local, url, copy)
        return local
    _mirror_folder(fs, where, url, local, copy, depth=0)
    return local


def _missing(fs, where: str, url: str) -> str:
    """Why ``where`` is not there: its bucket (container, repository) is missing, or the key."""
    from pyarrow.fs import FileType

    top = where.split("/", 1)[0]
    if top != where and url.lower().startswith(("s3://", "s3a://", "gs://", "gcs://", "az://")):
        if _info(fs, top, url).type == FileType.NotFound:
            return f"no such bucket ({shown(top)})"
    return "no such file or directory"


def _is_bucket(where: str) -> bool:
    return "/" not in where


def _mirror_folder(fs, where: str, url: str, local: str, copy: Copy, depth: int) -> None:
    from pyarrow.fs import FileType

    os.makedirs(local, exist_ok=True)
    for info in _listing(fs, where, url):
        name = _base(info.path)
        if not name or name in (".", ".."):
            continue
        child = f"{url}/{name}"
        try:
            target = os.path.join(local, name)
            if info.type == FileType.Directory:
                if depth == 0 and _EPOCH_FOLDER.fullmatch(name):  # the only folders read, as locally
                    _mirror_folder(fs, info.path, child, target, copy, depth + 1)
                else:
                    os.makedirs(target, exist_ok=True)
            elif info.type == FileType.File:
                if name.lower().endswith(_DATA) and not name.startswith((".", "_")):
                    _fetch(fs, info, target, child, copy)
                else:
                    open(target, "wb").close()  # named in "ignored ..." notes; never downloaded
        except (OSError, ValueError) as exc:  # a name this system cannot hold (too long, a NUL ...)
            detail = reason(exc) if isinstance(exc, OSError) else str(exc)
            raise InputError(f"{shown(child)}: cannot copy it to the temporary folder: {detail}") from None


def _fetch(fs, info, target: str, url: str, copy: Copy) -> None:
    """Copy one object in blocks, never more bytes than its listing says it holds."""
    size = int(info.size or 0)
    free = shutil.disk_usage(os.path.dirname(target)).free
    if size > free:
        raise InputError(f"{shown(url)}: {size:,} bytes, more than the {free:,} free in the "
                         f"temporary folder {shown(tempfile.gettempdir())} (set TMPDIR elsewhere)")
    written = 0
    with open(target, "wb") as out:  # a local failure (no space left ...) is the caller's to name
        source = _remote_call(fs.open_input_stream, info.path, url=url)
        with source:
            while True:
                block = _remote_call(source.read, min(BLOCK_BYTES, size - written + 1), url=url)
                if not block:
                    break
                written += len(block)
                if written > size:
                    raise InputError(f"{shown(url)}: the object grew while it was being read "
                                     f"(listed {size:,} bytes); read it again once the writer is done")
                out.write(block)
    mtime = info.mtime_ns if info.mtime_ns is not None else 0
    if mtime:
        os.utime(target, ns=(mtime, mtime))
    copy.origins[target] = (url, size, int(mtime))


def _remote_call(call, *args, url: str):
    try:
        return call(*args)
    except Exception as exc:  # noqa: BLE001 - any client failure is an input error here
        raise InputError(f"{shown(url)}: cannot read: {_reason(exc)}") from None


def snapshot(url: str) -> tuple:
    """``(name, size, mtime_ns)`` of each object a copy of ``url`` would hold, without reading
    any: what ``--watch`` compares to tell that an epoch has arrived."""
    from pyarrow.fs import FileType

    fs, where = filesystem(url)
    info = _info(fs, where, url)
    if info.type != FileType.Directory:
        return ((where, info.size, info.mtime_ns),)
    found = []
    for entry in _listing(fs, where, url):
        found.append((entry.path, entry.size, entry.mtime_ns))
        if entry.type == FileType.Directory and _EPOCH_FOLDER.fullmatch(_base(entry.path)):
            found.extend((e.path, e.size, e.mtime_ns) for e in _listing(fs, entry.path, url))
    return tuple(found)
