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


EXIT_GRACE_S = 120
"""After the summary, the interpreter has this long to exit."""


def pytest_unconfigure(config):
    """After the summary: name what would keep the interpreter from exiting (threads that are
    not daemons, worker processes still alive), and if it still has not exited after
    :data:`EXIT_GRACE_S`, print every thread's stack and fail, so that a hang at exit shows its
    cause instead of stalling the run."""
    import faulthandler
    import multiprocessing
    import sys
    import threading

    left = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    children = multiprocessing.active_children()
    if left or children:
        print(f"\nleft running after the tests: threads {[t.name for t in left]}, "
              f"processes {[p.pid for p in children]}", file=sys.stderr)
    for child in children:
        child.terminate()  # reported above; the run still ends
    faulthandler.dump_traceback_later(EXIT_GRACE_S, exit=True)
