"""`check` rules from configuration: `[tool.lossacc.check]` in the nearest pyproject.toml, or `[check]`
in a lossacc.toml, looked up from the current folder upwards (command-line options override).

A configuration file is read like any input: regular files only, bounded in size, UTF-8 TOML. A
``pyproject.toml`` that never mentions lossacc cannot hold its rules: it ends the search without
being parsed, so a broken one (binary, Latin-1, ``tool = 3``) belongs to some other tool and does
not stop the command. One that mentions lossacc, a ``lossacc.toml`` and a ``--config`` file must
parse.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lossacc_cli.errors import LossaccError, UsageError
from lossacc_cli.text import shown

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

KEYS = ("epoch", "max_loss", "min_accuracy", "max_ece", "max_loss_rise", "max_top1pct_share",
        "max_above_baseline", "fail_on")

CONFIG_MAX_BYTES = 4 << 20
"""A configuration file larger than this is refused unread (pyproject files are kilobytes)."""


def _bytes(path: Path) -> bytes:
    from lossacc_cli.readers.files import read_small

    return read_small(path, label=shown(path), limit=CONFIG_MAX_BYTES)


def _read(path: Path, raw: bytes | None = None) -> dict:
    label = shown(path)
    raw = _bytes(path) if raw is None else raw
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UsageError(f"{label}: cannot read the configuration: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{label}: cannot read the configuration ({exc})") from None
    except RecursionError:
        raise UsageError(f"{label}: cannot read the configuration: nested too deeply") from None


def _table(data: object, path: Path, *keys: str) -> dict:
    """``data[keys[0]][keys[1]]...``, {} where a key is absent; a value on the way that is no
    table is an error naming the key."""
    for depth, key in enumerate(keys):
        if not isinstance(data, dict):
            where = ".".join(keys[:depth])
            raise UsageError(f"{shown(path)}: '{where}' must be a table, found {type(data).__name__}")
        data = data.get(key, {})
    if not isinstance(data, dict):
        raise UsageError(f"{shown(path)}: '{'.'.join(keys)}' must be a table, found {type(data).__name__}")
    return data


def _project_table(path: Path) -> dict:
    """``[tool.lossacc.check]`` of a pyproject.toml ({} when the file never mentions lossacc)."""
    raw = _bytes(path)
    if b"lossacc" not in raw:
        return {}
    return _table(_read(path, raw), path, "tool", "lossacc", "check")


def find_config(start: Path | None) -> tuple[Path | None, dict]:
    """The first lossacc.toml, or pyproject.toml (which ends the search), from ``start`` upwards.

    ``start`` None (the current folder was deleted) finds nothing.
    """
    if start is None:
        return None, {}
    for folder in (start, *start.parents):
        own = folder / "lossacc.toml"
        if own.is_file():
            return own, _validated(own, _table(_read(own), own, "check"))
        project = folder / "pyproject.toml"
        if project.is_file():
            table = _project_table(project)
            return (project if table else None), _validated(project, table)
    return None, {}


def load_config(explicit: Path | None) -> tuple[Path | None, dict]:
    if explicit is not None:
        if not explicit.exists():
            raise UsageError(f"--config {shown(explicit)}: no such file")
        try:
            data = _read(explicit)
        except LossaccError as exc:
            raise UsageError(f"--config {exc}") from None
        keys = ("tool", "lossacc", "check") if explicit.name == "pyproject.toml" else ("check",)
        return explicit, _validated(explicit, _table(data, explicit, *keys))
    return find_config(_cwd())


def _cwd() -> Path | None:
    try:
        return Path.cwd()
    except OSError:  # the current folder was deleted (or is unreadable): no configuration there
        return None


def _validated(path: Path, table: dict) -> dict:
    if not isinstance(table, dict):
        raise UsageError(f"{shown(path)}: the check table must be a table of rules")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise UsageError(f"{shown(path)}: unknown check rule(s) {', '.join(unknown)}; known: {', '.join(KEYS)}")
    fail_on = table.get("fail_on", [])
    if isinstance(fail_on, str):
        table = {**table, "fail_on": [fail_on]}
    elif not isinstance(fail_on, list) or not all(isinstance(v, str) for v in fail_on):
        raise UsageError(f"{shown(path)}: fail_on must be a verdict name or a list of them")
    for key in KEYS[:-1]:
        value = table.get(key)
        if isinstance(value, bool) or (value is not None and not isinstance(value, (str, int, float))):
            raise UsageError(f"{shown(path)}: {key} must be a number or a string, found {type(value).__name__}")
    return table
