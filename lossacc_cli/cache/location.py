"""Where the cache lives: ``LOSSACC_CACHE_DIR``, else the platform's usual place for caches.

Linux and other Unix: ``$XDG_CACHE_HOME/lossacc`` (``~/.cache/lossacc``); macOS:
``~/Library/Caches/lossacc``; Windows: ``%LOCALAPPDATA%\\lossacc\\Cache``. A dozen lines rather than
platformdirs: three rules do not earn a run-time dependency.
"""

from __future__ import annotations

import os
import sys

ENV = "LOSSACC_CACHE_DIR"


def cache_dir() -> str:
    """The cache folder (not created here)."""
    override = os.environ.get(ENV)
    if override:
        return os.path.abspath(os.path.expanduser(override))
    home = os.path.expanduser("~")
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
        return os.path.join(base, "lossacc", "Cache")
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Caches", "lossacc")
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = xdg if xdg and os.path.isabs(xdg) else os.path.join(home, ".cache")  # XDG: relative is invalid
    return os.path.join(base, "lossacc")
