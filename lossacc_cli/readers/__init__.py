"""Files -> validated arrays, one epoch at a time.

>>> sources, notes = discover("preds/")                     # doctest: +SKIP
>>> epoch = read_epoch(sources[-1], ReadOptions())          # doctest: +SKIP
>>> with stream_epoch(sources[-1], ReadOptions()) as stream:   # doctest: +SKIP
...     for block in stream.blocks():
...         ...

:func:`read_epoch` returns the whole epoch; :func:`stream_epoch` validates everything but the
score values and hands the (N, K) scores over in checked blocks (Parquet record batches, NPZ row
blocks), so an epoch never needs to fit in memory twice. Both judge a file alike: a fault gives
the same error on either path. Readers never print or exit: problems are raised as
:class:`~lossacc_cli.errors.InputError` and warnings are returned as notes.
"""

from __future__ import annotations

import os
import sys

from lossacc_cli.errors import InputError
from lossacc_cli.readers.discover import discover, folder_parts, long_parts
from lossacc_cli.readers.model import CompactStats, EpochData, EpochSource, ReadOptions
from lossacc_cli.readers.npz import read_npz, stream_npz
from lossacc_cli.readers.stream import EpochStream
from lossacc_cli.readers.validate import display_path

# The Parquet reader (and Arrow with it) is imported by the first Parquet epoch read: an NPZ run
# never loads it.

__all__ = [
    "CompactStats",
    "EpochData",
    "EpochSource",
    "EpochStream",
    "ReadOptions",
    "close_passes",
    "discover",
    "forget_passes",
    "read_epoch",
    "source_label",
    "stream_epoch",
]


def read_epoch(source: EpochSource, options: ReadOptions | None = None) -> EpochData:
    """Read and validate the epoch that :func:`discover` found.

    Parameters
    ----------
    source : EpochSource
        ``fmt`` ``parquet``/``npz``: a file, or an ``epoch=N`` folder of part files;
        ``long``: a Parquet file or ``part-*`` folder whose ``epoch`` column selects the rows.
    options : ReadOptions, optional
        Forced column names, score choice, split filter, renormalisation.

    Returns
    -------
    EpochData
        Labels, ids and scores of the epoch, checked against the input contract.

    Raises
    ------
    InputError
        Unreadable file or invalid values; the message names the file and the field.
    """
    options = options or ReadOptions()
    paths, where = _paths(source)
    if source.fmt == "npz":
        return read_npz(paths, epoch=source.epoch, where=where, options=options)
    if source.fmt in ("long", "parquet"):
        from lossacc_cli.readers.parquet import read_parquet

        return read_parquet(paths, epoch=source.epoch, where=where, options=options,
                            long=source.fmt == "long")
    raise ValueError(f"unknown epoch source format {source.fmt!r}")


def stream_epoch(
    source: EpochSource, options: ReadOptions | None = None, *, threads: bool = False
) -> EpochStream | None:
    """Open the epoch :func:`discover` found for streaming its (N, K) scores; with ``threads`` the
    reader may decode Parquet pages on several threads.

    Returns
    -------
    EpochStream or None
        A context manager owning the epoch's open files: the validated header, then the checked
        score blocks in row order. None when the epoch is read whole with :func:`read_epoch`,
        decided before any score is read (binary or compact layouts, score arrays numpy would
        read otherwise, long-format files read once for all their epochs).

    Raises
    ------
    InputError
        The error :func:`read_epoch` raises for the same file (here, or from the blocks).
    """
    options = options or ReadOptions()
    paths, where = _paths(source)
    if source.fmt == "npz":
        return stream_npz(paths, epoch=source.epoch, where=where, options=options)
    from lossacc_cli.readers.parquet import stream_parquet

    long = source.fmt == "long"
    return stream_parquet(paths, epoch=source.epoch, where=where, options=options, long=long,
                          threads=threads)


def close_passes() -> None:
    """Close what reading long-format files left open (see :mod:`lossacc_cli.readers.long`)."""
    long = sys.modules.get("lossacc_cli.readers.long")
    if long is not None:  # never imported: no pass was ever opened
        long.close_passes()


def forget_passes() -> None:
    """In a forked worker: drop the parent's long-format passes without touching them."""
    long = sys.modules.get("lossacc_cli.readers.long")
    if long is not None:
        long.forget_passes()


def source_label(source: EpochSource) -> str:
    """How the readers name an epoch in its data's ``source`` and in messages."""
    label = display_path(source.path)
    return f"{label}[epoch={source.epoch}]" if source.fmt == "long" else label


def _paths(source: EpochSource) -> tuple[list[str], str]:
    """The files of an epoch source, and how the epoch is named in messages."""
    label = display_path(source.path)
    is_folder = os.path.isdir(source.path)
    if source.fmt == "long":
        paths = long_parts(source.path) if is_folder else [source.path]
        if not paths:
            raise InputError(f"{label}: no part-*.parquet files found")
        return paths, source_label(source)
    paths = [source.path]
    if is_folder:
        paths, _ = folder_parts(source.path)
        wrong = [p for p in paths if not p.lower().endswith("." + source.fmt)]
        if wrong or not paths:
            raise InputError(f"{label}: expected only .{source.fmt} part files")
    return paths, label
