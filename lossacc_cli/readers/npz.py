"""Read one epoch from NPZ archives (``np.savez``): one file, or the parts of an ``epoch=N``
folder combined in order.

Archives are always opened with ``allow_pickle=False``: an object array is reported as an
input error and never unpickled.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from numpy.lib.npyio import NpzFile

from lossacc_cli.errors import InputError, input_error
from lossacc_cli.readers.model import EpochData, ReadOptions
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

_ARCHIVE_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error)
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
        return archive[name]
    except ValueError as exc:
        if "pickle" in str(exc):
            raise input_error(label, name, OBJECT_PROBLEM, hint=OBJECT_HINT) from None
        raise file_error(label, f"array '{name}'", exc) from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise file_error(label, f"array '{name}'", exc) from None


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
