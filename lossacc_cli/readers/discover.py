"""Find the epochs under PATH without reading any scores.

PATH is one of:

- a directory of per-epoch ``*.parquet`` / ``*.npz`` files and/or ``epoch=N/`` folders of part
  files (combined in file-name order), or one such ``epoch=N`` folder;
- a directory whose data files are all Parquet files named ``part-*`` / ``part_*``: the parts
  of one long-format table with an ``epoch`` column;
- a single Parquet file: long format when its ``epoch`` column holds several epochs, else one
  epoch;
- a single NPZ file: one epoch.

The epoch number comes from an ``epoch`` column/array when present (constant within a
per-epoch file), otherwise from the file name: an ``epoch=N`` key in it (Lightning's
``epoch=1-step=500.npz``), else its last integer. Only one directory level is listed (plus the
``epoch=N`` folders), so symbolic-link loops cannot make it recurse. Only regular files are read:
a FIFO, socket, device or broken link named like an epoch file is an error that says what it is.

A run in progress: when the newest epoch file is still being written (a Parquet file without its
footer, a zip without its central directory, an empty file) and the others are complete, it is
skipped with a note naming it; ``ReadOptions(strict=True)`` makes it an error.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile

import numpy as np

from lossacc_cli.errors import InputError, input_error
from lossacc_cli.readers import npz
from lossacc_cli.readers.files import describe, not_regular, open_regular
from lossacc_cli.readers.model import EpochSource, ReadOptions
from lossacc_cli.readers.validate import display_path, file_error, sorted_distinct

FORMATS = {".parquet": "parquet", ".npz": "npz"}
_EPOCH_FOLDER = re.compile(r"epoch=([0-9]+)")
_EPOCH_KEY = re.compile(r"(?:^|[^a-z0-9])epoch=([0-9]+)", re.IGNORECASE)
_PART_FILE = re.compile(r"part[-_]")
_INTEGER = re.compile(r"[0-9]+")
_SHOWN = 5
MAX_EPOCH = (1 << 63) - 1


def data_format(name: str) -> str | None:
    """``parquet`` / ``npz`` from a file name's extension (case-insensitive), else None."""
    return FORMATS.get(os.path.splitext(name)[1].lower())


def epoch_from_name(name: str) -> int | None:
    """The epoch a file name gives: an ``epoch=N`` key, else the last integer (extension
    excluded); None when there is none.

    >>> epoch_from_name("epoch_050.parquet"), epoch_from_name("val-ep50.npz")
    (50, 50)
    >>> epoch_from_name("run3_epoch12.npz"), epoch_from_name("preds.npz") is None
    (12, True)
    >>> epoch_from_name("epoch=1-step=500.npz")
    1
    """
    stem = os.path.basename(name)
    if data_format(stem):
        stem = os.path.splitext(stem)[0]
    key = _EPOCH_KEY.search(stem)
    if key:
        return int(key.group(1))
    found = _INTEGER.findall(stem)
    return int(found[-1]) if found else None


def discover(
    path: str | bytes | os.PathLike[str], options: ReadOptions | None = None
) -> tuple[list[EpochSource], tuple[str, ...]]:
    """The epochs found under ``path``, sorted by epoch number, and notes for the user.

    Parameters
    ----------
    path : str, bytes or path-like
        A directory or a single ``.parquet`` / ``.npz`` file.
    options : ReadOptions, optional
        Accepted for symmetry with :func:`read_epoch`; the choices it holds do not change which
        epochs exist.

    Returns
    -------
    sources : list of EpochSource
        One per epoch, ascending; gaps between epoch numbers are normal.
    notes : tuple of str
        Warnings such as files that were ignored.

    Raises
    ------
    InputError
        Missing path, unsupported file, no epochs, two files claiming one epoch, a file whose
        epoch cannot be told, or an unreadable file.
    """
    strict = options.strict if options is not None else False
    root = os.fsdecode(os.fspath(path))
    label = display_path(root)
    try:
        info = os.stat(root)
    except FileNotFoundError:
        kind = describe(root)
        raise InputError(f"{label}: {kind or 'no such file or directory'}") from None
    except OSError as exc:
        kind = describe(root)
        if kind is not None and not kind.startswith(("no such", "permission")):
            raise not_regular(label, kind) from None
        raise file_error(label, "path", exc) from None
    if stat.S_ISDIR(info.st_mode):
        own = _EPOCH_FOLDER.fullmatch(os.path.basename(os.path.normpath(root)))
        if own:  # PATH is itself one epoch=N folder of part files
            return _discover_epoch_folder(root, int(own.group(1)))
        return _discover_folder(root, strict)
    if not stat.S_ISREG(info.st_mode):
        raise not_regular(label, describe(root) or "not a regular file")
    return _discover_file(root), ()


def _discover_file(path: str) -> list[EpochSource]:
    label = display_path(path)
    fmt = data_format(path)
    if fmt is None:
        raise InputError(
            f"{label}: not a .parquet or .npz file; give a prediction file or a folder of them"
        )
    values = _epoch_values(path, fmt)
    if fmt == "parquet" and values is not None and values.size > 1:
        return [EpochSource(int(e), path, "long") for e in values.tolist()]
    return [EpochSource(_file_epoch(path, fmt, values), path, fmt)]


def _epoch_values(path: str, fmt: str) -> np.ndarray | None:
    if fmt == "parquet":
        from lossacc_cli.readers.parquet import epoch_values

        return epoch_values(path)
    return npz.epoch_values(path)


def _file_epoch(path: str, fmt: str, values: np.ndarray | None) -> int:
    """Epoch of a per-epoch file: its constant ``epoch`` column/array, else its name."""
    label = display_path(path)
    if values is not None and values.size > 1:
        shown = ", ".join(str(v) for v in values[:10].tolist())
        more = " ..." if values.size > 10 else ""
        hint = (
            "give the file itself as PATH to read it as one long table of many epochs"
            if fmt == "parquet"
            else "save one archive per epoch"
        )
        raise input_error(
            label,
            "epoch",
            f"not constant in a per-epoch file ({values.size} distinct values: {shown}{more})",
            hint=hint,
        )
    if values is not None and values.size == 1:
        return int(values[0])
    from_name = epoch_from_name(os.path.basename(path))
    if from_name is not None and from_name > MAX_EPOCH:
        raise input_error(
            label, "epoch", f"the epoch number in the file name is beyond the int64 range ({from_name})"
        )
    if from_name is None:
        raise input_error(
            label,
            "epoch",
            "no epoch column/array and no epoch number in the file name",
            hint="add an 'epoch' column or put the number in the name (epoch_012"
            + os.path.splitext(path)[1]
            + ")",
        )
    return from_name


def _scan(folder: str) -> list[tuple[str, str, str]]:
    """``(name, path, kind)`` for the entries of one folder, sorted by name.

    kind is ``dir``, ``file`` (a regular file, or a link to one) or ``other`` (FIFO, socket,
    device, broken link, link loop ...: :func:`~lossacc_cli.readers.files.describe` names it).
    Directory links are followed one level only, never recursed into.
    """
    try:
        with os.scandir(folder) as entries:
            found = []
            for entry in entries:
                try:  # is_file() is true for regular files only (and links to them)
                    kind = "dir" if entry.is_dir() else "file" if entry.is_file() else "other"
                except OSError:  # e.g. a link pointing at itself
                    kind = "other"
                found.append((entry.name, os.path.join(folder, entry.name), kind))
    except OSError as exc:
        raise file_error(display_path(folder), "folder", exc) from None
    return sorted(found, key=lambda item: os.fsencode(item[0]))


def _hidden(name: str) -> bool:
    # Writers' bookkeeping (_SUCCESS, _metadata, .crc files) is skipped without a note.
    return name.startswith((".", "_"))


def folder_parts(folder: str) -> tuple[list[str], list[str]]:
    """Data files of an ``epoch=N`` folder in file-name order, and the names ignored there."""
    parts, ignored = [], []
    for name, path, kind in _scan(folder):
        if _hidden(name):
            continue
        if kind == "file" and data_format(name):
            parts.append(path)
        elif kind == "other" and data_format(name):
            raise _not_a_file(path)
        else:
            ignored.append(f"{display_path(os.path.basename(folder))}/{display_path(name)}")
    return parts, ignored


def _not_a_file(path: str) -> InputError:
    """The error for an entry named like an epoch file that is no regular file."""
    return not_regular(display_path(path), describe(path) or "not a regular file")


def long_parts(folder: str) -> list[str]:
    """The ``part-*`` Parquet files of a long-format folder, in file-name order."""
    return [
        path
        for name, path, kind in _scan(folder)
        if kind == "file" and data_format(name) == "parquet" and _PART_FILE.match(name)
    ]


def _discover_folder(root: str, strict: bool = False) -> tuple[list[EpochSource], tuple[str, ...]]:
    label = display_path(root)
    files: list[tuple[str, str]] = []
    folders: list[tuple[int, str]] = []
    ignored: list[str] = []
    for name, path, kind in _scan(root):
        if _hidden(name):
            continue
        match = _EPOCH_FOLDER.fullmatch(name)
        if kind == "dir" and match:
            folders.append((int(match.group(1)), path))
        elif kind == "file" and data_format(name):
            files.append((name, path))
        elif kind == "other" and data_format(name):
            raise _not_a_file(path)
        else:
            ignored.append(display_path(name) + ("/" if kind == "dir" else ""))
    notes: list[str] = []
    if files and not folders and all(
        data_format(name) == "parquet" and _PART_FILE.match(name) for name, _ in files
    ):
        sources = _long_folder(root, [path for _, path in files])
    else:
        claims: list[tuple[EpochSource, str]] = []
        unfinished: list[tuple[str, str, InputError]] = []
        for name, path in files:
            fmt = data_format(name) or "parquet"
            try:
                epoch = _file_epoch(path, fmt, _epoch_values(path, fmt))
            except InputError as exc:
                state = unfinished_state(path, fmt)
                if state is None:
                    raise
                unfinished.append((path, state, exc))
                continue
            claims.append((EpochSource(epoch, path, fmt), display_path(path)))
        for epoch, path in folders:
            parts, inner = folder_parts(path)
            ignored.extend(inner)
            if not parts:
                notes.append(f"ignored empty folder {display_path(path)} (no .parquet/.npz files)")
                continue
            source = EpochSource(epoch, path, _parts_format(path, parts))
            claims.append((source, display_path(path)))
        notes.extend(_skip_unfinished(unfinished, claims, strict))
        sources = _unique_epochs(claims, label)
    if not sources:
        seen = f" (only {_shown(ignored)})" if ignored else ""
        raise InputError(f"{label}: no .parquet or .npz epoch files found{seen}")
    notes.extend(_ignored_note(ignored, label))
    return sources, tuple(notes)


def unfinished_state(path: str, fmt: str) -> str | None:
    """How a file that cannot be read looks when a writer has not finished it yet: ``"empty"``,
    ``"no Parquet footer yet"`` or ``"no zip central directory yet"``; None when it looks
    damaged or foreign instead (it then stays an error)."""
    try:
        with open_regular(path) as (handle, info):
            size = info.st_size
            if size == 0:
                return "empty"
            head = handle.read(4)
            if fmt == "parquet" and head == b"PAR1":
                handle.seek(max(0, size - 4))
                return "no Parquet footer yet" if size < 12 or handle.read(4) != b"PAR1" else None
            if fmt == "npz" and head == b"PK\x03\x04":
                handle.seek(0)
                return None if zipfile.is_zipfile(handle) else "no zip central directory yet"
    except (OSError, InputError):
        return None
    return None


def _skip_unfinished(
    unfinished: list[tuple[str, str, InputError]], claims: list[tuple[EpochSource, str]], strict: bool
) -> list[str]:
    """Notes for the unfinished newest epoch file that is skipped; raises for any other."""
    if not unfinished:
        return []
    newest = max((source.epoch for source, _ in claims), default=None)
    path, state, exc = unfinished[0]
    from_name = epoch_from_name(os.path.basename(path))
    skippable = (
        len(unfinished) == 1 and newest is not None and from_name is not None
        and from_name > newest
    )
    if not skippable:
        raise exc
    label = display_path(path)
    if strict:
        raise InputError(f"{exc}; it looks unfinished ({state}): a run still being written?")
    return [f"skipped {label}: unfinished ({state}), the newest epoch of a run still being "
            "written? (--strict makes this an error)"]


def _shown(names: list[str]) -> str:
    return ", ".join(names[:_SHOWN]) + (", ..." if len(names) > _SHOWN else "")


def _ignored_note(ignored: list[str], label: str) -> tuple[str, ...]:
    if not ignored:
        return ()
    noun = "file" if len(ignored) == 1 else "files"
    return (f"ignored {len(ignored)} unrelated {noun} in {label}: {_shown(ignored)}",)


def _discover_epoch_folder(folder: str, epoch: int) -> tuple[list[EpochSource], tuple[str, ...]]:
    parts, ignored = folder_parts(folder)
    if not parts:
        raise InputError(f"{display_path(folder)}: no .parquet or .npz part files found")
    source = EpochSource(epoch, folder, _parts_format(folder, parts))
    return [source], _ignored_note(ignored, display_path(folder))


def _parts_format(folder: str, parts: list[str]) -> str:
    formats = {data_format(p) for p in parts}
    if len(formats) > 1:
        raise InputError(f"{display_path(folder)}: part files mix .parquet and .npz")
    return formats.pop() or "parquet"


def _unique_epochs(claims: list[tuple[EpochSource, str]], label: str) -> list[EpochSource]:
    by_epoch: dict[int, tuple[EpochSource, str]] = {}
    for source, shown in claims:
        if source.epoch in by_epoch:
            other = by_epoch[source.epoch][1]
            raise input_error(
                label,
                "epoch",
                f"epoch {source.epoch} is claimed by two files: {other} and {shown}",
            )
        by_epoch[source.epoch] = (source, shown)
    return [by_epoch[e][0] for e in sorted(by_epoch)]


def _long_folder(root: str, paths: list[str]) -> list[EpochSource]:
    """One source per epoch of a folder of ``part-*`` Parquet files (one long table)."""
    from lossacc_cli.readers.parquet import epoch_values

    found = []
    for path in paths:
        values = epoch_values(path)
        if values is None:
            raise input_error(
                display_path(path),
                "epoch",
                "a folder of part-* Parquet files is read as one long table and needs an "
                "epoch column",
                hint="or name the files by epoch (epoch_012.parquet) to read one epoch per file",
            )
        found.append(values)
    epochs = sorted_distinct(np.concatenate(found)) if found else np.empty(0, np.int64)
    return [EpochSource(int(e), root, "long") for e in epochs.tolist()]
