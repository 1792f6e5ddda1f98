"""The `lossacc` executable: answers `--version` before anything is imported, then runs the app."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] in (["--version"], ["-V"]):
        from lossacc_cli import __version__

        sys.stdout.write(f"lossacc {__version__}\n")
        return
    from lossacc_cli.cli.app import main as run

    run()
