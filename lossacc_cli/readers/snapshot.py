"""What a run's folder holds now, without reading any file: names, sizes and modification times
of its entries (one level, plus the ``epoch=N`` folders), local or remote. Two equal snapshots
mean that no epoch arrived or changed in between."""

from __future__ import annotations

import os
import re

from lossacc_cli.readers import remote

_EPOCH_FOLDER = re.compile(r"epoch=([0-9]+)")


def _entries(folder: str) -> list[tuple[str, int, int]]:
    found = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    info = entry.stat()
                except OSError:
                    found.append((entry.path, -1, -1))
                    continue
                found.append((entry.path, info.st_size, info.st_mtime_ns))
                if entry.is_dir() and _EPOCH_FOLDER.fullmatch(entry.name):
                    found.extend(_entries(entry.path))
    except OSError:
        return []
    return found


def snapshot(path: str) -> tuple:
    """A comparable picture of ``path``; reading errors are left to the reading itself."""
    if remote.is_url(path):
        return remote.snapshot(path)
    path = remote.local_path(path)
    if os.path.isdir(path):
        return tuple(sorted(_entries(path)))
    try:
        info = os.stat(path)
    except OSError:
        return ()
    return ((path, info.st_size, info.st_mtime_ns),)
