"""Shared number formats and table styles for the terminal and for plain (piped) output."""

from __future__ import annotations

import math

from rich import box
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from lossacc_cli.text import shown, shown_lines


def nats(x: float) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.4f}"


def pct(x: float, digits: int = 2) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:.{digits}f}%"


def signed(x: float, digits: int = 4) -> str:
    """A change in nats: always with its sign (+0.0123, -0.0040)."""
    return "n/a" if x is None or math.isnan(x) else f"{x:+.{digits}f}"


def share(x: float) -> str:
    """A share of a named quantity, in whole percent (may exceed 100% or be negative)."""
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.0f}%"


def class_label(k: int, names) -> str:
    """A class as shown: ``3`` or, with class names, ``3:cat``."""
    return f"{k}:{shown(names[k])}" if names and 0 <= k < len(names) else str(k)


def num(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.{digits}f}"


class PlainTable(Table):
    """A rich table whose headers and cells are literal text (never parsed as markup: ids and
    column names such as ``p[label]`` contain brackets), with control characters escaped
    (:func:`~lossacc_cli.text.shown`: an id holding ``ESC [ 2 J`` prints as ``\\x1b[2J``). Its
    heading prints as a line of its own above the table, so a long heading is not wrapped to the
    width of a narrow table."""

    heading: Text | None = None

    def __rich_console__(self, console, options):
        if self.heading is not None:
            yield self.heading
        yield from super().__rich_console__(console, options)

    def add_column(self, header="", *args, **kwargs):
        return super().add_column(Text(shown(header)), *args, **kwargs)

    def add_row(self, *cells, **kwargs):
        return super().add_row(*(Text(shown(c)) if isinstance(c, str) else c for c in cells), **kwargs)


def prob(x: float) -> str:
    """A probability: 4 decimals, or scientific notation below 1e-3 so 3e-7 does not print as 0.0000."""
    if x is None or math.isnan(x):
        return "n/a"
    return f"{x:.4f}" if x >= 1e-3 or x == 0 else f"{x:.1e}"


def new_table(title: str | None, *, plain: bool) -> Table:
    """A rich table; plain output has no box and no colour so it stays parseable by awk/cut."""
    if plain:
        table = PlainTable(box=None, show_edge=False, pad_edge=False, header_style="")
    else:  # no edge rows, one space between columns: a 9-column table fits 80 columns
        table = PlainTable(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1),
                           header_style="bold")
    table.heading = Text(shown(title), style="" if plain else "bold") if title else None
    return table


def paragraph(text: str | Text, indent: int = 0, style: str = "") -> Padding:
    """Prose wrapped at words to the terminal, keeping its indent on every line (unwrapped when
    plain: the console is then wide enough)."""
    body = text if isinstance(text, Text) else Text(shown_lines(text), style=style)
    return Padding(body, (0, 0, 0, indent))


def gap() -> Text:
    """An empty line between sections."""
    return Text("")


def plural(count: int, noun: str) -> str:
    """``1 sample``, ``2 samples``."""
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun}es" if noun.endswith(("s", "x")) else f"{count} {noun}s"
