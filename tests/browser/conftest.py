"""The browser tests drive the system's Chromium (Debian's package) through Playwright.

`make test` has neither, so these tests skip there, saying why; `make test-browser` installs both
and sets LOSSACC_BROWSER_TESTS=required, under which a missing browser fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil

import pytest

# Flags that work on a machine without a network: no background fetches, no first-run pages.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _unavailable(reason: str):
    if os.environ.get("LOSSACC_BROWSER_TESTS") == "required":
        pytest.fail(f"browser tests required but {reason}", pytrace=False)
    pytest.skip(f"{reason}; `make test-browser` installs it and runs these tests")


def chromium_path() -> str | None:
    for candidate in (os.environ.get("LOSSACC_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and (path := shutil.which(candidate)):
            return path
    return None


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright (pip install 'lossacc[browser]') is not installed")
    path = chromium_path()
    if path is None:
        _unavailable("no Chromium on PATH (Debian: apt-get install chromium)")
    with sync_playwright() as p:
        # a fresh profile for every session: nothing cached, nothing remembered
        profile = tmp_path_factory.mktemp("chromium-profile")
        context = p.chromium.launch_persistent_context(str(profile), executable_path=path, args=CHROMIUM_ARGS,
                                                       headless=True, viewport={"width": 1280, "height": 900})
        yield context
        context.close()
