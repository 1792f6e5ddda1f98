"""Shared number formats and table styles for the terminal and for plain (piped) output."""

from __future__ import annotations

import math

from rich import box
from rich.table import Table


def nats(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.4f}"


def pct(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:.2f}%"


def num(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.{digits}f}"


def new_table(title: str | None, *, plain: bool) -> Table:
    """A rich table; plain output has no box and no colour so it stays parseable by awk/cut."""
    if plain:
        return Table(title=title, box=None, show_edge=False, pad_edge=False, header_style="", title_style="")
    return Table(title=title, box=box.SIMPLE_HEAVY, header_style="bold")
