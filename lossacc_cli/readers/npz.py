"""Read one epoch from NPZ archives (``np.savez``): one file, or the parts of an ``epoch=N``
folder combined in order.

Archives are always opened with ``allow_pickle=False``: an object array is reported as an
input error and never unpickled.
"""

from __future__ import annotations

import os
import struct
import tokenize
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial

import numpy as np
from numpy.lib.npyio import NpzFile

from lossacc_cli.errors import InputError, input_error
from lossacc_cli.readers.budget import Budget, npz_member_claim
from lossacc_cli.readers.files import changed_error, open_regular, same_file
from lossacc_cli.readers.model import EpochData, ReadOptions
from lossacc_cli.readers.score_check import ScoreCheck
from lossacc_cli.readers.stream import STREAM_BATCH_BYTES, EpochStream, open_stream
from lossacc_cli.readers.validate import (
    RawEpoch,
    build_epoch,
    build_header,
    choose_layout,
    display_path,
    epoch_numbers,
    file_error,
)

LABEL_ALIASES = ("labels", "label", "targets", "y_true", "y")
ID_ALIASES = ("sample_ids", "ids")
EPOCH = "epoch"

# NotImplementedError: a zip compression method or feature zipfile does not support;
# RuntimeError: an encrypted member ("password required").
# SyntaxError, TokenError: a .npy header numpy cannot parse as the literal it should be.
_ARCHIVE_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error, NotImplementedError,
                   RuntimeError, SyntaxError, tokenize.TokenError)
OBJECT_PROBLEM = "object arrays are not read: they would need unpickling"
OBJECT_HINT = "save numbers, or strings as a fixed-width array (e.g. ids.astype(str))"

_ZIP_STARTS = (b"PK\x03\x04", b"PK\x05\x06")  # a member's local header; an empty archive
_NPY_MAGIC = b"\x93NUMPY"


class Archive:
    """An NPZ archive opened by :func:`open_npz`: its arrays, each checked before it is loaded
    (no object arrays; a header claiming more than the member holds or the budget allows is
    refused before numpy allocates it)."""

    def __init__(self, npz: NpzFile, label: str, handle, info: os.stat_result, budget: Budget) -> None:
        self.npz, self.label, self.handle, self.info, self.budget = npz, label, handle, info, budget
        self.files = npz.files
        self.zip = npz.zip

    def member(self, name: str) -> zipfile.ZipInfo:
        """The zip entry holding array ``name`` (``name.npy``, or ``name`` itself)."""
        try:
            return self.zip.getinfo(f"{name}.npy")
        except KeyError:
            return self.zip.getinfo(name)

    def header(self, name: str) -> tuple[tuple[int, ...], bool, np.dtype, int] | None:
        """``(shape, fortran_order, dtype, header bytes)`` from the member's .npy header (a plain
        literal, safe to parse) without loading the data; None when it is no standard header
        (loading then reports it)."""
        try:
            with self.zip.open(self.member(name)) as stream:
                version = np.lib.format.read_magic(stream)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
                elif version == (2, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
                else:
                    return None
                return tuple(shape), bool(fortran), dtype, stream.tell()
        except (*_ARCHIVE_ERRORS, KeyError):
            return None

    def claim(self, name: str, header) -> None:
        """Refuse an array whose header claims more than its member, the archive or the budget."""
        shape, _, dtype, header_bytes = header
        npz_member_claim(self.member(name), shape, dtype, header_bytes, self.info.st_size,
                         self.label, name, self.budget)

    def load(self, name: str) -> np.ndarray:
        """One array of the archive; object arrays, claims beyond the file and damaged members
        raise InputError."""
        label = self.label
        header = self.header(name)
        if header is not None:
            if header[2].hasobject:
                raise input_error(label, name, OBJECT_PROBLEM, hint=OBJECT_HINT)
            self.claim(name, header)
        try:
            value = self.npz[name]
        except ValueError as exc:
            if "pickle" in str(exc):
                raise input_error(label, name, OBJECT_PROBLEM, hint=OBJECT_HINT) from None
            raise file_error(label, f"array '{name}'", exc) from None
        except (*_ARCHIVE_ERRORS, KeyError) as exc:
            raise file_error(label, f"array '{name}'", exc) from None
        if not isinstance(value, np.ndarray):  # NpzFile hands back raw bytes for a member that is not .npy
            raise file_error(label, f"array '{name}'", ValueError("the member is not a .npy array"))
        return value

    def changed(self) -> os.stat_result | None:
        """The file's new stat when it changed since it was opened (a writer at work), else None."""
        try:
            now = os.fstat(self.handle.fileno())
        except OSError:
            return None
        return None if same_file(self.info, now) else now


def _sniff(handle, label: str) -> None:
    """Refuse what is no zip archive by its first bytes, before any library guesses what it is
    (numpy would try to unpickle it, and say so)."""
    start = handle.read(8)
    handle.seek(0)
    if start.startswith(_ZIP_STARTS):
        return
    if not start:
        raise InputError(f"{label}: cannot read NPZ file: the file is empty")
    if start.startswith(_NPY_MAGIC):
        raise InputError(f"{label}: cannot read NPZ file: it holds one .npy array, not named arrays")
    if start.startswith(b"PAR1"):
        raise InputError(f"{label}: cannot read NPZ file: it is a Parquet file; name it .parquet")
    if start[:1] == b"\x80":
        raise file_error(label, "NPZ file", "allow_pickle")  # a pickle: never loaded
    raise InputError(
        f"{label}: cannot read NPZ file: it does not start with a zip header (first bytes: "
        f"{start[:4].hex(' ')})"
    )


@contextmanager
def open_npz(path: str, budget: Budget | None = None) -> Iterator[Archive]:
    """The archive at ``path`` (a regular file), opened with ``allow_pickle=False``; failures ->
    InputError. A file that changes while it is open (rewritten in place) is reported as such."""
    label = display_path(path)
    with open_regular(path, label) as (handle, info):
        _sniff(handle, label)
        try:
            npz = NpzFile(handle, own_fid=False, allow_pickle=False)
        except _ARCHIVE_ERRORS as exc:
            raise file_error(label, "NPZ file", exc) from None
        archive = Archive(npz, label, handle, info, budget if budget is not None else Budget(label))
        try:
            yield archive
        except InputError:
            now = archive.changed()
            if now is not None:
                raise changed_error(label, info, now) from None
            raise
        finally:
            npz.close()
        now = archive.changed()
        if now is not None:
            raise changed_error(label, info, now)


def epoch_values(path: str) -> np.ndarray | None:
    """Sorted distinct values of the ``epoch`` array (int64), or None when there is none."""
    label = display_path(path)
    with open_npz(path) as archive:
        if EPOCH not in archive.files:
            return None
        values = archive.load(EPOCH)
    return epoch_numbers(values.reshape(-1), label, EPOCH)


def read_npz(paths: list[str], *, epoch: int, where: str, options: ReadOptions) -> EpochData:
    """Read and validate one epoch from NPZ ``paths`` (combined in the given order).

    Parameters
    ----------
    paths : list of str
        One archive, or the parts of an ``epoch=N`` folder.
    epoch : int
        The epoch number; an ``epoch`` array, when present, must hold only this value.
    where : str
        How the epoch is named in messages.
    options : ReadOptions
        Forced array names, score choice, renormalisation (``split`` is Parquet-only).
    """
    if options.split is not None:
        raise input_error(
            where, "split", "NPZ files have no split column; --split works only with Parquet"
        )
    layout = None
    parts: list[dict[str, np.ndarray]] = []
    budget = Budget(where)
    for path in paths:
        label = display_path(path)
        with open_npz(path, budget) as archive:
            if layout is None:
                layout = choose_layout(
                    archive.files,
                    source=where,
                    options=options,
                    label_aliases=LABEL_ALIASES,
                    id_aliases=ID_ALIASES,
                    wide=False,
                )
            missing = [name for name in layout.columns if name not in archive.files]
            if missing:
                raise input_error(
                    label, missing[0], "array missing in this part (present in the first)"
                )
            parts.append({name: archive.load(name) for name in layout.columns})
            if EPOCH in archive.files:
                _check_epoch(archive.load(EPOCH), epoch, label)
    if layout is None:
        raise InputError(f"{where}: no NPZ files to read")
    arrays = parts[0] if len(parts) == 1 else _concatenate(parts, where)
    raw = RawEpoch(
        source=where,
        epoch=epoch,
        labels=arrays[layout.label],
        label_field=layout.label,
        kind=layout.kind,
        score_field=layout.score_field,
        scores=arrays[layout.scores[0]] if layout.scores else None,
        ids=arrays[layout.id] if layout.id else None,
        id_field=layout.id or "sample_ids",
        stats={name: arrays[name] for name in layout.stats},
        notes=list(layout.notes),
    )
    if raw.ids is not None and raw.ids.dtype.kind == "S":
        raise input_error(
            where, layout.id or "ids", "byte-string ids are not read", hint="save them as str"
        )
    return build_epoch(raw, options)


def _check_epoch(values: np.ndarray, epoch: int, label: str) -> None:
    found = epoch_numbers(values.reshape(-1), label, EPOCH)
    if found.size and (found.size > 1 or found[0] != epoch):
        shown = ", ".join(str(v) for v in found[:10].tolist())
        raise input_error(label, EPOCH, f"epoch array holds {shown}, expected only {epoch}")


def _concatenate(parts: list[dict[str, np.ndarray]], where: str) -> dict[str, np.ndarray]:
    out = {}
    for name in parts[0]:
        try:
            out[name] = np.concatenate([part[name] for part in parts])
        except ValueError as exc:
            raise input_error(where, name, f"parts do not stack ({exc})") from None
    return out


# --- streaming: the scores read block by block ---------------------------------------------------


def stream_npz(
    paths: list[str], *, epoch: int, where: str, options: ReadOptions
) -> EpochStream | None:
    """Open one epoch for streaming its (N, K) scores: read block by block into one matrix where
    the archive stores them uncompressed (``np.savez``), inflated block by block where it deflates
    them (``np.savez_compressed``).

    The scores are read (``pread``), never memory-mapped: a file truncated or rewritten in place
    while it is read then gives a short read or a changed stat, which is reported, where a memory
    map would kill the process with SIGBUS.

    None, decided from the archives' directories and ``.npy`` headers before any score is read,
    when the epoch is read whole: binary or compact layouts, and score arrays in Fortran order or
    with an unusual header. Everything but the scores is read and validated first, as
    :func:`read_npz` does; the scores then arrive in blocks of about
    :data:`~lossacc_cli.readers.stream.STREAM_BATCH_BYTES`, each member's CRC-32 verified on the
    way. Every fault raises the error :func:`read_npz` raises for it.
    """
    if options.split is not None:
        return None
    return open_stream(partial(_open_stream, paths, epoch, where, options))


def _open_stream(paths: list[str], epoch: int, where: str, options: ReadOptions,
                 files: ExitStack) -> EpochStream | None:
    layout = None
    parts: list[dict[str, np.ndarray]] = []
    members: list[_Member] = []
    budget = Budget(where)
    for path in paths:
        label = display_path(path)
        archive = files.enter_context(open_npz(path, budget))
        if layout is None:
            layout = choose_layout(
                archive.files, source=where, options=options, label_aliases=LABEL_ALIASES,
                id_aliases=ID_ALIASES, wide=False,
            )
            if layout.kind not in ("logits", "probs"):
                return None
        missing = [name for name in layout.columns if name not in archive.files]
        if missing:
            raise input_error(label, missing[0], "array missing in this part (present in the first)")
        score_name = layout.scores[0]
        arrays = {}
        for name in layout.columns:
            if name == score_name:
                member = _member(archive, score_name)
                if member is None:
                    return None
                members.append(member)
            else:
                arrays[name] = archive.load(name)
        parts.append(arrays)
        if EPOCH in archive.files:
            _check_epoch(archive.load(EPOCH), epoch, label)
    if layout is None:
        raise InputError(f"{where}: no NPZ files to read")
    arrays = parts[0] if len(parts) == 1 else _concatenate(parts, where)
    scores = layout.scores[0]
    # the scores combine as np.concatenate would combine them (its dtype, its error)
    empty = [np.empty((0, *m.shape[1:]), dtype=m.dtype) for m in members]
    dtype = empty[0].dtype if len(empty) == 1 else _concatenate([{scores: e} for e in empty], where)[scores].dtype
    n_rows = sum(m.shape[0] for m in members)
    raw = RawEpoch(
        source=where,
        epoch=epoch,
        labels=arrays[layout.label],
        label_field=layout.label,
        kind=layout.kind,
        score_field=layout.score_field,
        ids=arrays[layout.id] if layout.id else None,
        id_field=layout.id or "sample_ids",
        notes=list(layout.notes),
    )
    if raw.ids is not None and raw.ids.dtype.kind == "S":
        raise input_error(
            where, layout.id or "ids", "byte-string ids are not read", hint="save them as str"
        )
    header = build_header(raw, (n_rows, members[0].shape[1]), dtype)

    def read() -> Iterator[np.ndarray]:
        for member in members:
            for block in member.blocks():
                yield block if block.dtype == dtype else block.astype(dtype)

    return EpochStream(
        header, ScoreCheck(header, layout.score_field, options), dtype=dtype, order="C", read=read,
        files=files, decoded=not all(member.stored for member in members),
    )


class _Member:
    """The ``.npy`` member holding the scores in an open archive: read from the file into an
    array of its own when stored uncompressed, else inflated block by block (``np.load`` would
    need the same memory). Damage is reported as :meth:`Archive.load` reports it."""

    def __init__(self, archive: Archive, name: str, info: zipfile.ZipInfo, data: int,
                 header_bytes: int, shape: tuple[int, int], dtype: np.dtype) -> None:
        self.archive, self.name, self.info, self.data = archive, name, info, data
        self.header_bytes = header_bytes
        self.shape, self.dtype = shape, dtype
        self.stored = info.compress_type == zipfile.ZIP_STORED

    def blocks(self) -> Iterator[np.ndarray]:
        """Row blocks of the array; the member's CRC-32 is verified by the last one."""
        row_bytes = max(1, self.shape[1] * self.dtype.itemsize)
        step = max(1, STREAM_BATCH_BYTES // row_bytes)
        try:
            if self.stored:
                yield from self._read(step, row_bytes)
            else:
                yield from self._inflated(step)
        except (*_ARCHIVE_ERRORS, KeyError) as exc:
            raise file_error(self.archive.label, f"array '{self.name}'", exc) from None

    def _read(self, step: int, row_bytes: int) -> Iterator[np.ndarray]:
        fd = self.archive.handle.fileno()
        crc = zlib.crc32(_pread(fd, self.header_bytes, self.data - self.header_bytes, self.archive.label))
        matrix = np.empty(self.shape, dtype=self.dtype)
        for first in range(0, self.shape[0], step):
            block = matrix[first : first + step]
            view = memoryview(block).cast("B")
            _pread_into(fd, view, self.data + first * row_bytes, self.archive.label)
            crc = zlib.crc32(view, crc)
            yield block
        if crc != self.info.CRC:
            raise zipfile.BadZipFile(f"Bad CRC-32 for file {self.info.filename!r}")

    def _inflated(self, step: int) -> Iterator[np.ndarray]:
        # read as np.load reads a member (chunks of format.BUFFER_SIZE bytes), so that damage
        # shows up, and is worded, as it would there
        matrix = np.empty(self.shape, dtype=self.dtype)
        flat = matrix.reshape(-1)
        per_read = np.lib.format.BUFFER_SIZE // min(np.lib.format.BUFFER_SIZE, self.dtype.itemsize)
        count = flat.size
        with self.archive.zip.open(self.info) as stream:
            version = np.lib.format.read_magic(stream)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            read_header(stream)
            done = 0  # values read
            for first in range(0, self.shape[0], step):
                end = min(count, (first + step) * self.shape[1])
                while done < end:
                    n = min(per_read, count - done)
                    flat[done : done + n] = np.frombuffer(_read_bytes(stream, n * self.dtype.itemsize),
                                                          dtype=self.dtype, count=n)
                    done += n
                yield matrix[first : first + step]


def _read_bytes(stream, size: int) -> bytes:
    """``size`` bytes of a member, as numpy's reader takes them (its words when they run out)."""
    data = b""
    while True:
        more = stream.read(size - len(data))
        data += more
        if not more or len(data) == size:
            break
    if len(data) != size:
        raise ValueError(f"EOF: reading array data, expected {size} bytes got {len(data)}")
    return data


def _pread(fd: int, size: int, offset: int, label: str) -> bytes:
    data = os.pread(fd, size, offset)
    if len(data) != size:
        raise InputError(f"{label}: the file ends early (changed while it was being read?)")
    return data


def _pread_into(fd: int, view: memoryview, offset: int, label: str) -> None:
    """Fill ``view`` from ``offset``; a short read (the file truncated meanwhile) raises."""
    filled = 0
    while filled < view.nbytes:
        got = os.preadv(fd, [view[filled:]], offset + filled)
        if not got:
            raise InputError(f"{label}: the file ends early (changed while it was being read?)")
        filled += got


def _member(archive: Archive, name: str) -> _Member | None:
    """The score member ``name`` of an open archive, checked as :meth:`Archive.load` checks it
    before reading (object arrays, claims); None when it is better loaded whole (a header numpy
    would read differently, Fortran order, not 2-D floats, a member whose directory entry and
    local header disagree)."""
    try:
        info = archive.member(name)
    except KeyError:
        return None
    if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return None
    header = archive.header(name)
    if header is None:
        return None
    shape, fortran, dtype, header_bytes = header
    if dtype.hasobject:
        raise input_error(archive.label, name, OBJECT_PROBLEM, hint=OBJECT_HINT)
    archive.claim(name, header)  # the scores are kept while the epoch is reduced
    if fortran or dtype.kind != "f" or len(shape) != 2:
        return None
    if header_bytes + shape[0] * shape[1] * dtype.itemsize != info.file_size:
        return None
    data = None
    # a stored member's sizes in the directory must agree, or zipfile reads it otherwise (stops
    # short of its end, without the CRC-32 check, or runs out): read whole, as it reads it
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        return None
    if info.compress_type == zipfile.ZIP_STORED:
        data = _stored_data(archive, info, header_bytes)
        if data is None:
            return None
    return _Member(archive, name, info, data or 0, header_bytes, tuple(shape), dtype)


def _stored_data(archive: Archive, info: zipfile.ZipInfo, header_bytes: int) -> int | None:
    """Where a stored member's array data starts in the file, found as zipfile finds it (its local
    header, whose name must be the directory's); None when anything there is odd."""
    local = os.pread(archive.handle.fileno(), 30, info.header_offset)
    if len(local) != 30 or local[:4] != b"PK\x03\x04":
        return None
    name_length, extra_length = struct.unpack("<HH", local[26:30])
    start = info.header_offset + 30 + name_length + extra_length
    name = os.pread(archive.handle.fileno(), name_length, info.header_offset + 30)
    if name != info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437", "replace"):
        return None
    return start + header_bytes
