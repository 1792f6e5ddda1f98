"""Every command has help and appears in the README (sqlite-utils' test_docs idea)."""

from __future__ import annotations

from pathlib import Path

from typer.main import get_command
from typer.testing import CliRunner

from lossacc_cli.cli.app import app

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_command_is_documented_and_has_help():
    commands = sorted(get_command(app).commands)
    assert commands == ["analyze", "cache", "calibration", "check", "compare", "outliers", "report"]
    for name in ("cache info", "cache clear"):
        assert f"lossacc {name}" in README, name
        r = CliRunner().invoke(app, [*name.split(), "--help"])
        assert r.exit_code == 0 and "Example" in r.stdout, name
    commands.remove("cache")
    for name in commands:
        assert f"lossacc {name}" in README, name
        r = CliRunner().invoke(app, [name, "--help"])
        assert r.exit_code == 0 and "Example" in r.stdout, name


def test_every_check_option_is_documented():
    for option in ("--max-loss", "--min-accuracy", "--max-ece", "--max-loss-rise", "--max-top1pct-share",
                   "--max-above-baseline", "--fail-on", "--format github", "--format junit"):
        assert option in README, option
