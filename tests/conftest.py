"""Shared test configuration."""

import os as _os

from hypothesis import settings as _settings

# CI runs the same examples every time (a red CI run then means a real change, not a new random
# draw); local runs stay random so they keep finding new edge cases.
_settings.register_profile("ci", derandomize=True, deadline=None)
if _os.environ.get("CI"):
    _settings.load_profile("ci")
