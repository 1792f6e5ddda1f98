"""The key of one epoch's reduction: what was read (each file's resolved path or URL, size,
modification time and a hash of its first and last bytes), how (the read options, the epoch and
layout) and by which lossacc. Any change to one of them is a different key, so an entry is never
stale: an old one is simply never asked for again (and pruned when the cache is full)."""

from __future__ import annotations

import hashlib
import json
import os

from lossacc_cli import __version__
from lossacc_cli.readers import remote
from lossacc_cli.readers.model import EpochSource, ReadOptions

EDGE_BYTES = 64 << 10
"""Hashed at each end of a file: the Parquet footer or the zip central directory, and the header.
A rewrite that keeps size and modification time but changes these is still noticed."""

FORMAT = 1
"""The layout of an entry; a change makes every older entry a miss."""


def _files(path: str) -> list[str]:
    if not os.path.isdir(path):
        return [path]
    with os.scandir(path) as entries:  # the part files of an epoch=N or long-format folder
        return sorted(e.path for e in entries if e.is_file() and not e.name.startswith((".", "_")))


def _edges(path: str, size: int) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        digest.update(handle.read(EDGE_BYTES))
        if size > EDGE_BYTES:
            handle.seek(max(EDGE_BYTES, size - EDGE_BYTES))
            digest.update(handle.read(EDGE_BYTES))
    return digest.hexdigest()


def file_identity(path: str, seen: dict | None = None) -> list[object]:
    """``[name, size, mtime_ns, edge hash]``; the name is the URL for a copy of a remote object.
    ``seen`` remembers identities by stat within one reading of a run (a long-format file's
    epochs hash it once)."""
    info = os.stat(path)
    stamp = (path, info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    if seen is not None and stamp in seen:
        return seen[stamp]
    known = remote.origin(path)
    if known is not None:
        name, size, mtime = known
    else:
        name, size, mtime = os.path.realpath(path), info.st_size, info.st_mtime_ns
    identity = [name, size, mtime, _edges(path, info.st_size)]
    if seen is not None:
        seen[stamp] = identity
    return identity


def entry_key(source: EpochSource, options: ReadOptions, seen: dict | None = None) -> str:
    """A hex digest naming the entry; raises OSError when a file cannot be looked at."""
    described = {
        "format": FORMAT,
        "lossacc": __version__,
        "epoch": source.epoch,
        "layout": source.fmt,
        "options": [options.label_col, options.id_col, options.scores, options.split,
                    options.renormalize, options.strict],
        "files": [file_identity(p, seen) for p in _files(source.path)],
    }
    text = json.dumps(described, sort_keys=True, ensure_ascii=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
