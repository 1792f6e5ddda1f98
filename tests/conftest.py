"""Shared test configuration."""

import os as _os

from hypothesis import settings as _settings

# CI runs the same examples every time (a red CI run then means a real change, not a new random
# draw); local runs stay random so they keep finding new edge cases.
_settings.register_profile("ci", derandomize=True, deadline=None)
if _os.environ.get("CI"):
    _settings.load_profile("ci")

# Commands cache per-epoch reductions in the user's cache folder: the tests use one of their own
# (shared by the whole session, so later runs of one input exercise the warm path).
if "LOSSACC_CACHE_DIR" not in _os.environ:
    import atexit as _atexit
    import shutil as _shutil
    import tempfile as _tempfile

    _os.environ["LOSSACC_CACHE_DIR"] = _tempfile.mkdtemp(prefix="lossacc-test-cache-")
    _atexit.register(_shutil.rmtree, _os.environ["LOSSACC_CACHE_DIR"], True)
