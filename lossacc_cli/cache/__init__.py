"""The on-disk cache of per-epoch reductions, so that each epoch file is reduced once.

An entry holds what one epoch contributes to a run once its scores are gone (summary, per-sample
vectors, labels, ids, notes), keyed by what was read and how (see :mod:`lossacc_cli.cache.key`).
It lives in the user's cache folder (:func:`cache_dir`), never beside the input. Entries are
written to a temporary file and renamed; one that cannot be read back exactly (truncated,
overwritten, from another version) is a miss and is rebuilt. A folder that cannot be written is
one note, and the run goes on without the cache. Past :data:`MAX_BYTES` (``LOSSACC_CACHE_MAX_MB``)
the entries used longest ago are removed.

>>> cache = EpochCache()                                    # doctest: +SKIP
>>> fields = cache.get(source, options, label)              # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import secrets
import zipfile
from dataclasses import dataclass

from lossacc_cli.cache.entry import Unusable, decode, encode
from lossacc_cli.cache.key import entry_key
from lossacc_cli.cache.location import cache_dir
from lossacc_cli.readers.files import reason
from lossacc_cli.readers.model import EpochSource, ReadOptions
from lossacc_cli.text import shown

__all__ = ["MAX_BYTES", "EpochCache", "cache_dir", "clear", "max_bytes", "usage"]

MAX_BYTES = 2 << 30
_SUFFIX = ".npz"
_EPOCHS = "epochs"


def max_bytes() -> int:
    """The bound on the cache's size in bytes (``LOSSACC_CACHE_MAX_MB``, else :data:`MAX_BYTES`)."""
    try:
        return int(float(os.environ["LOSSACC_CACHE_MAX_MB"]) * (1 << 20))
    except (KeyError, ValueError):
        return MAX_BYTES


@dataclass
class EpochCache:
    """Get and put epoch reductions in ``folder`` (default: :func:`cache_dir`). Picklable, so
    worker processes use it too. ``problem`` is the note for the user once writing failed."""

    folder: str = ""
    problem: str | None = None
    stored: int = 0
    hits: int = 0

    def __post_init__(self) -> None:
        self.folder = self.folder or os.path.join(cache_dir(), _EPOCHS)
        self._identities: dict = {}

    def new_pass(self) -> None:
        """Forget the files looked at: the run is read again (``--watch``), files may have changed."""
        self._identities = {}

    def check_writable(self) -> None:
        """Set ``problem`` when no entry could be written (checked once, before any work)."""
        probe = os.path.join(self.folder, f".probe.{secrets.token_hex(4)}")
        try:
            os.makedirs(self.folder, exist_ok=True)
            with open(probe, "wb"):
                pass
            os.unlink(probe)
        except OSError as exc:
            self.problem = (f"cache: cannot write to {shown(self.folder)} ({reason(exc)}); going on "
                            "without it (LOSSACC_CACHE_DIR chooses another folder, --no-cache skips it)")

    def _path(self, key: str) -> str:
        return os.path.join(self.folder, key[:2], key + _SUFFIX)

    def key(self, source: EpochSource, options: ReadOptions) -> str | None:
        try:
            return entry_key(source, options, self._identities)
        except OSError:
            return None  # reading the epoch will say what is wrong with it

    def get(self, key: str | None, label: str) -> dict | None:
        """The cached fields for ``key``, their notes naming ``label``; None on a miss."""
        if key is None:
            return None
        path = self._path(key)
        try:
            with open(path, "rb") as handle:
                fields = decode(handle, label)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, Unusable):
            return None  # truncated, garbage, foreign: rebuilt by the caller
        try:
            os.utime(path)  # most recently used: pruned last
        except OSError:
            pass
        self.hits += 1
        return fields

    def put(self, key: str | None, fields: dict) -> None:
        """Store the fields atomically; a failure to write is noted once, never raised."""
        if key is None or self.problem is not None:
            return
        try:
            data = encode(fields)
        except Unusable:
            return
        path = self._path(key)
        tmp = f"{path}.{secrets.token_hex(4)}.tmp"
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(tmp, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            self.problem = f"cache: cannot write to {shown(self.folder)} ({reason(exc)})"
            try:
                os.unlink(tmp)
            except OSError:
                pass
            return
        self.stored += 1

    def prune(self) -> None:
        """Remove the entries used longest ago while the cache holds more than its bound."""
        entries = _entries(self.folder)
        total, limit = sum(size for _, size, _ in entries), max_bytes()
        for path, size, _ in sorted(entries, key=lambda e: e[2]):
            if total <= limit:
                break
            try:
                os.unlink(path)
                total -= size
            except OSError:
                pass


_NAME = re.compile(r"[0-9a-f]{64}\.npz(?:\.[0-9a-f]{8}\.tmp)?")  # entries, and temporary files


def _entries(folder: str) -> list[tuple[str, int, float]]:
    """``(path, size, mtime)`` of the entry files (and left-over temporary files): nothing else in
    the folder is ever counted or removed."""
    found = []
    for shard in sorted(_shards(folder)):
        try:
            with os.scandir(shard) as files:
                for entry in files:
                    if not _NAME.fullmatch(entry.name) or not entry.is_file(follow_symlinks=False):
                        continue
                    info = entry.stat(follow_symlinks=False)
                    found.append((entry.path, info.st_size, info.st_mtime))
        except OSError:
            continue
    return found


def _shards(folder: str) -> set[str]:
    try:
        with os.scandir(folder) as found:
            return {e.path for e in found if e.is_dir(follow_symlinks=False)}
    except OSError:
        return set()


def usage(folder: str | None = None) -> tuple[str, int, int]:
    """``(folder, entries, bytes)`` of the cache."""
    folder = folder or os.path.join(cache_dir(), _EPOCHS)
    entries = [e for e in _entries(folder) if e[0].endswith(_SUFFIX)]
    return os.path.dirname(folder), len(entries), sum(size for _, size, _ in entries)


def clear(folder: str | None = None) -> tuple[int, int]:
    """Remove every entry (and left-over temporary files); ``(files, bytes)`` removed."""
    folder = folder or os.path.join(cache_dir(), _EPOCHS)
    removed = freed = 0
    for path, size, _ in _entries(folder):
        try:
            os.unlink(path)
        except OSError:
            continue
        removed, freed = removed + 1, freed + size
    for path in {os.path.dirname(p) for p, _, _ in _entries(folder)} | _shards(folder):
        try:
            os.rmdir(path)
        except OSError:
            pass
    return removed, freed
