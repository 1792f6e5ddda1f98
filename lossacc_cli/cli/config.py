"""`check` rules from configuration: `[tool.lossacc.check]` in the nearest pyproject.toml, or `[check]`
in a lossacc.toml, looked up from the current folder upwards (command-line options override)."""

from __future__ import annotations

import sys
from pathlib import Path

from lossacc_cli.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

KEYS = ("epoch", "max_loss", "min_accuracy", "max_ece", "max_loss_rise", "max_top1pct_share",
        "max_above_baseline", "fail_on")


def _read(path: Path) -> dict:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the configuration ({exc})") from None


def find_config(start: Path) -> tuple[Path | None, dict]:
    """The first lossacc.toml, or pyproject.toml (which ends the search), from ``start`` upwards."""
    for folder in (start, *start.parents):
        own = folder / "lossacc.toml"
        if own.is_file():
            return own, _validated(own, _read(own).get("check", {}))
        project = folder / "pyproject.toml"
        if project.is_file():
            table = _read(project).get("tool", {}).get("lossacc", {}).get("check", {})
            return (project if table else None), _validated(project, table)
    return None, {}


def load_config(explicit: Path | None) -> tuple[Path | None, dict]:
    if explicit is not None:
        if not explicit.is_file():
            raise UsageError(f"--config {explicit}: no such file")
        data = _read(explicit)
        table = data.get("tool", {}).get("lossacc", {}).get("check") if explicit.name == "pyproject.toml" else data.get("check")
        return explicit, _validated(explicit, table or {})
    return find_config(Path.cwd())


def _validated(path: Path, table: dict) -> dict:
    if not isinstance(table, dict):
        raise UsageError(f"{path}: the check table must be a table of rules")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise UsageError(f"{path}: unknown check rule(s) {', '.join(unknown)}; known: {', '.join(KEYS)}")
    fail_on = table.get("fail_on", [])
    if isinstance(fail_on, str):
        table = {**table, "fail_on": [fail_on]}
    elif not isinstance(fail_on, list):
        raise UsageError(f"{path}: fail_on must be a verdict name or a list of them")
    return table
