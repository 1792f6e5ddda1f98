"""Read one epoch from NPZ archives (``np.savez``): one file, or the parts of an ``epoch=N``
folder combined in order.

Archives are always opened with ``allow_pickle=False``: an object array is reported as an
input error and never unpickled.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
from numpy.lib.npyio import NpzFile

from lossacc_cli.errors import InputError, input_error
from lossacc_cli.readers.model import EpochData, ReadOptions
from lossacc_cli.readers.parquet import (
    STREAM_BATCH_BYTES,
    EpochStream,
    StreamRejected,
    check_scores,
    score_placeholder,
)
from lossacc_cli.readers.validate import (
    RawEpoch,
    build_epoch,
    choose_layout,
    display_path,
    file_error,
)

LABEL_ALIASES = ("labels", "label", "targets", "y_true", "y")
ID_ALIASES = ("sample_ids", "ids")
EPOCH = "epoch"

# NotImplementedError: a zip compression method or feature zipfile does not support;
# RuntimeError: an encrypted member ("password required").
_ARCHIVE_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError)
OBJECT_PROBLEM = "object arrays are not read: they would need unpickling"
OBJECT_HINT = "save numbers, or strings as a fixed-width array (e.g. ids.astype(str))"


@contextmanager
def open_npz(path: str) -> Iterator[NpzFile]:
    """The archive at ``path``, opened with ``allow_pickle=False``; failures -> InputError."""
    label = display_path(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except _ARCHIVE_ERRORS as exc:
        raise file_error(label, "NPZ file", exc) from None
    if not isinstance(archive, NpzFile):
        raise InputError(
            f"{label}: cannot read NPZ file: it holds one .npy array, not named arrays"
        )
    try:
        yield archive
    finally:
        archive.close()


def load_array(archive: NpzFile, name: str, label: str) -> np.ndarray:
    """One array of the archive; object arrays and damaged members raise InputError."""
    if _holds_objects(archive, name):
        raise input_error(label, name, OBJECT_PROBLEM, hint=OBJECT_HINT)
    try:
        value = archive[name]
    except ValueError as exc:
        if "pickle" in str(exc):
            raise input_error(label, name, OBJECT_PROBLEM, hint=OBJECT_HINT) from None
        raise file_error(label, f"array '{name}'", exc) from None
    except (*_ARCHIVE_ERRORS, KeyError) as exc:
        raise file_error(label, f"array '{name}'", exc) from None
    if not isinstance(value, np.ndarray):  # NpzFile hands back raw bytes for a member that is not .npy
        raise file_error(label, f"array '{name}'", ValueError("the member is not a .npy array"))
    return value


def _holds_objects(archive: NpzFile, name: str) -> bool:
    """Peek at the .npy header (a plain literal, safe to parse) without loading the data."""
    member = f"{name}.npy"
    try:
        with archive.zip.open(member) as stream:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                header = np.lib.format.read_array_header_1_0(stream)
            elif version == (2, 0):
                header = np.lib.format.read_array_header_2_0(stream)
            else:
                return False  # loading will tell
    except (*_ARCHIVE_ERRORS, KeyError):
        return False  # not a standard member, or damaged: loading reports it
    return bool(header[2].hasobject)


def epoch_values(path: str) -> np.ndarray | None:
    """Sorted distinct values of the ``epoch`` array (int64), or None when there is none."""
    label = display_path(path)
    with open_npz(path) as archive:
        if EPOCH not in archive.files:
            return None
        values = load_array(archive, EPOCH, label)
    if values.dtype.kind not in "iu":
        raise input_error(label, EPOCH, f"must be integers, found {values.dtype}")
    return np.unique(values.reshape(-1)).astype(np.int64)


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
    for path in paths:
        label = display_path(path)
        with open_npz(path) as archive:
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
            parts.append({name: load_array(archive, name, label) for name in layout.columns})
            if EPOCH in archive.files:
                _check_epoch(load_array(archive, EPOCH, label), epoch, label)
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
    if values.dtype.kind not in "iu":
        raise input_error(label, EPOCH, f"must be integers, found {values.dtype}")
    found = np.unique(values.reshape(-1))
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


# --- streaming: the scores memory-mapped -------------------------------------------------------


def stream_npz(
    paths: list[str], *, epoch: int, where: str, options: ReadOptions
) -> EpochStream | None:
    """Open one epoch for streaming its (N, K) scores: memory-mapped where the archive stores them
    uncompressed (``np.savez``), inflated block by block where it deflates them
    (``np.savez_compressed``).

    None when the epoch is better read whole: binary or compact layouts, and score arrays in
    Fortran order or with an unusual header. Everything but the scores is read and validated
    first, as :func:`read_npz` does; the scores then arrive in blocks of about
    :data:`~lossacc_cli.readers.parquet.STREAM_BATCH_BYTES`, checked block by block, and each
    member's CRC-32 is verified on the way (a damaged member is refused as ``np.load`` refuses it).
    Any problem raises: the caller then reads the epoch with :func:`read_npz`, whose message is
    the one to show.
    """
    if options.split is not None:
        return None
    layout = None
    parts: list[dict[str, np.ndarray]] = []
    maps: list[_Member] = []
    for path in paths:
        label = display_path(path)
        with open_npz(path) as archive:
            if layout is None:
                layout = choose_layout(
                    archive.files, source=where, options=options, label_aliases=LABEL_ALIASES,
                    id_aliases=ID_ALIASES, wide=False,
                )
                if layout.kind not in ("logits", "probs"):
                    return None
            missing = [name for name in layout.columns if name not in archive.files]
            if missing:
                raise input_error(label, missing[0], "array missing in this part")
            score_name = layout.scores[0]
            parts.append(
                {name: load_array(archive, name, label) for name in layout.columns
                 if name != score_name}
            )
            if EPOCH in archive.files:
                _check_epoch(load_array(archive, EPOCH, label), epoch, label)
            member = _map_member(archive, path, score_name)
            if member is None:
                return None
        maps.append(member)
    if layout is None:
        raise InputError(f"{where}: no NPZ files to read")
    n_classes = maps[0].shape[1]
    if any(m.shape[1] != n_classes for m in maps):
        raise input_error(where, layout.scores[0], "parts do not stack")
    dtype = np.result_type(*(m.dtype for m in maps))
    arrays = parts[0] if len(parts) == 1 else _concatenate(parts, where)
    n_rows = sum(m.shape[0] for m in maps)
    raw = RawEpoch(
        source=where,
        epoch=epoch,
        labels=arrays[layout.label],
        label_field=layout.label,
        kind="logits",  # the value checks of the scores run block by block
        score_field=layout.score_field,
        scores=score_placeholder(n_rows, n_classes, dtype),
        ids=arrays[layout.id] if layout.id else None,
        id_field=layout.id or "sample_ids",
        notes=list(layout.notes),
    )
    if raw.ids is not None and raw.ids.dtype.kind == "S":
        raise input_error(where, layout.id or "ids", "byte-string ids are not read")
    header = replace(build_epoch(raw, options), kind=layout.kind, scores=None)
    kind = layout.kind

    def batches(threads: bool) -> Iterator[np.ndarray]:
        del threads  # nothing to decode
        for member in maps:
            yield from member.blocks(kind, where)

    return EpochStream(
        header=header, n_classes=n_classes, dtype=dtype, order="C", batches=batches,
        decoded=not all(member.mapped for member in maps),
    )


class _Member:
    """The ``.npy`` member holding the scores: memory-mapped when stored uncompressed, else
    inflated block by block into an array of its own (``np.load`` would need the same memory)."""

    def __init__(self, path: str, name: str, start: int, data: int, size: int, crc: int,
                 shape: tuple[int, int], dtype: np.dtype, mapped: bool) -> None:
        self.path, self.name, self.start, self.data, self.size = path, name, start, data, size
        self.crc, self.shape, self.dtype, self.mapped = crc, shape, dtype, mapped

    def blocks(self, kind: str, where: str) -> Iterator[np.ndarray]:
        """Row blocks of the array, checked; the member's CRC-32 is verified after the last one."""
        row_bytes = max(1, self.shape[1] * self.dtype.itemsize)
        step = max(1, STREAM_BATCH_BYTES // row_bytes)
        if not self.mapped:
            yield from self._inflated(kind, where, step)
            return
        raw = np.memmap(self.path, dtype=np.uint8, mode="r", offset=self.start, shape=(self.size,))
        header = self.data - self.start
        crc = zlib.crc32(raw[:header])
        matrix = raw[header:].view(self.dtype).reshape(self.shape)
        for start in range(0, self.shape[0], step):
            block = matrix[start : start + step]
            crc = zlib.crc32(raw[header + start * row_bytes : header + (start + step) * row_bytes], crc)
            check_scores(kind, block, where)
            yield block
        if crc != self.crc:
            raise StreamRejected(f"{where}: CRC-32 of the scores does not match the archive")

    def _inflated(self, kind: str, where: str, step: int) -> Iterator[np.ndarray]:
        matrix = np.empty(self.shape, dtype=self.dtype)
        with zipfile.ZipFile(self.path) as archive, archive.open(f"{self.name}.npy") as stream:
            version = np.lib.format.read_magic(stream)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            if read_header(stream) != (self.shape, False, self.dtype):
                raise StreamRejected(f"{where}: the scores' header changed while reading")
            for start in range(0, self.shape[0], step):
                block = matrix[start : start + step]
                view = memoryview(block).cast("B")
                filled = 0
                while filled < view.nbytes:
                    got = stream.readinto(view[filled:])
                    if not got:
                        raise StreamRejected(f"{where}: the scores end early")
                    filled += got
                check_scores(kind, block, where)
                yield block
            stream.read(1)  # at the end: zipfile checks the CRC-32 here


def _map_member(archive: NpzFile, path: str, name: str) -> _Member | None:
    """Where the ``name`` array lies in the file; None when it is better loaded whole."""
    try:
        info = archive.zip.getinfo(f"{name}.npy")
    except KeyError:
        return None
    if info.flag_bits & 0x1 or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return None
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        local = handle.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            return None
        name_length, extra_length = struct.unpack("<HH", local[26:30])
        start = info.header_offset + 30 + name_length + extra_length
    with archive.zip.open(info) as stream:
        try:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
            else:
                return None
        except ValueError:
            return None
        header = stream.tell()
    if fortran or dtype.hasobject or dtype.kind != "f" or len(shape) != 2:
        return None
    if header + shape[0] * shape[1] * dtype.itemsize != info.file_size:
        return None
    mapped = info.compress_type == zipfile.ZIP_STORED
    return _Member(path, name, start, start + header, info.file_size, info.CRC, tuple(shape),
                   dtype, mapped)
