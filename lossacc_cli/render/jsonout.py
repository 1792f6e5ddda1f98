"""Results -> JSON-ready dicts (stable schema; see README "JSON output")."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator, Sequence

import numpy as np

SCHEMA_VERSION = 2

SHOWN_AS_IT_IS = True
"""A JSON document (:func:`dump_parts`) needs no escaping before it reaches a terminal or a file:
the encoder escaped everything a terminal could act on (checked by the tests on hostile strings)."""


class Records(Sequence):
    """Rows of a table held as columns until they are written: a sequence of dicts (one per row,
    keys in column order) that JSON writes from its columns, with no Python object per row.

    ``columns`` maps a key to an array or list of scalars, all of one length; ``present`` maps a
    key to a boolean mask: the value is None where the mask is False.
    """

    def __init__(self, columns: dict, present: dict | None = None, *, finite: bool = False) -> None:
        self.columns = dict(columns)
        self.present = dict(present or {})
        self.finite = finite  # NaN and inf read as None (cleaned)
        lengths = {len(c) for c in self.columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"Records: columns of different lengths {sorted(lengths)}")
        self._n = lengths.pop() if lengths else 0

    def __len__(self) -> int:
        return self._n

    def column(self, key: str, *, finite: bool = False, rows: slice = slice(None)) -> list:
        """One column (its ``rows``) as plain Python values (None where not present; with
        ``finite``, also where a float is NaN or infinite)."""
        finite = finite or self.finite
        values = self.columns[key][rows]
        missing = (None if key not in self.present
                   else ~np.asarray(self.present[key], dtype=bool)[rows])
        if isinstance(values, np.ndarray):
            out = values.tolist()
            if finite and values.dtype.kind == "f":
                bad = ~np.isfinite(values)
                missing = bad if missing is None else missing | bad
        else:
            out = [clean(v) for v in values] if finite else list(values)
        if missing is not None:
            for i in np.flatnonzero(missing).tolist():
                out[i] = None
        return out

    def lists(self, *, finite: bool = False, rows: slice = slice(None)) -> dict[str, list]:
        return {key: self.column(key, finite=finite, rows=rows) for key in self.columns}

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Records({k: v[index] for k, v in self.columns.items()},
                           {k: np.asarray(m, dtype=bool)[index] for k, m in self.present.items()},
                           finite=self.finite).to_list()
        if index < 0:
            index += self._n
        if not 0 <= index < self._n:
            raise IndexError("Records index out of range")
        return self[index : index + 1][0]

    def to_list(self, *, finite: bool = False) -> list[dict]:
        columns = self.lists(finite=finite)
        return [dict(zip(columns, row)) for row in zip(*columns.values())]

    def __iter__(self):
        return iter(self.to_list())

    def __eq__(self, other) -> bool:
        if isinstance(other, Records):
            other = other.to_list()
        return isinstance(other, Sequence) and self.to_list() == list(other)

    def __repr__(self) -> str:
        return f"Records({self._n} rows: {', '.join(self.columns)})"

    def cleaned(self) -> Records:
        """The same rows with NaN and inf as None (when they are read)."""
        return Records(self.columns, self.present, finite=True)


def clean(value, *, records: bool = False):
    """Recursively turn dataclasses/NumPy scalars into plain JSON values; NaN and inf become None.

    :class:`Records` become lists of dicts, or with ``records`` stay columns (cleaned) for
    :func:`dumps` to write.
    """
    kind = type(value)  # the plain scalars first: most of a document's values
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int or kind is str or kind is bool or value is None:
        return value
    if isinstance(value, Records):
        return value.cleaned() if records else value.to_list(finite=True)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: clean(getattr(value, f.name), records=records) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): clean(v, records=records) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v, records=records) for v in value]
    if isinstance(value, np.ndarray):
        return [clean(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def document(command: str, body: dict) -> dict:
    """Wrap a command's body with the envelope every JSON output shares."""
    return {"schema_version": SCHEMA_VERSION, "command": command, "units": {"loss": "nats"},
            **clean(body, records=True)}


def plain(value):
    """``value`` with every :class:`Records` as a list of dicts (values as they are)."""
    if isinstance(value, Records):
        return value.to_list()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def dumps(doc: dict) -> str:
    """``json.dumps(doc, indent=2, allow_nan=False)``, byte for byte, with :class:`Records`
    written from their columns (each column by the C encoder, the rows by one format string)."""
    return "".join(dump_parts(doc))


def dump_parts(doc: dict) -> Iterator[str]:
    """The text of :func:`dumps` in consecutive parts, a table's rows a chunk at a time, for a
    writer that writes each part as it comes: the whole document is never held (a million
    flagged samples: 71 MB of text, held once by :func:`dumps` and again by its encoding).
    Anything that fails (a NaN outside a table) fails before the first part.

    The text holds printable ASCII and newlines only: every string (keys, values, a table's
    strings) is written by json's encoder, which escapes every other character (``ensure_ascii``:
    controls, DEL, non-ASCII, lone surrogates), and the rest is digits, punctuation and indents.
    It is safe to show as it is (:data:`SHOWN_AS_IT_IS`)."""
    tables: dict[str, Records] = {}

    def mark(value):
        kind = type(value)
        if kind is float or kind is int or kind is str or kind is bool or value is None:
            return value
        if isinstance(value, Records):
            token = f"\0records{len(tables)}\0"
            tables[token] = value
            return token
        if isinstance(value, dict):
            return {k: mark(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [mark(v) for v in value]
        return value

    text = json.dumps(mark(doc), indent=2, allow_nan=False)
    return _filled(text, tables)


def _filled(text: str, tables: dict[str, Records]) -> Iterator[str]:
    at = 0
    for token, table in tables.items():  # in order of appearance: json.dumps keeps dict order
        quoted = json.dumps(token)
        found = text.index(quoted, at)
        indent = text[text.rfind("\n", 0, found) + 1 :]
        indent = indent[: len(indent) - len(indent.lstrip(" "))]
        yield text[at:found]
        yield from _records_parts(table, indent)
        at = found + len(quoted)
    yield text[at:] + "\n"


RECORDS_CHUNK_ROWS = 1 << 14
"""Rows encoded at a time: the Python values and strings of one chunk are alive at once, not
those of every row."""

ARROW_MIN_ROWS = 20_000
"""From this many rows a table's values are written by Arrow's string kernels
(:mod:`.json_columns`, 4x faster per float than ``repr``), in chunks of :data:`ARROW_CHUNK_ROWS`;
shorter tables by the C encoder of :mod:`json` (no import of the kernels for them)."""

ARROW_CHUNK_ROWS = 1 << 16


def _records_text(table: Records, indent: str, *, arrow_min_rows: int | None = None) -> str:
    """A :class:`Records` as ``json.dumps`` with ``indent=2`` writes a list of flat dicts whose
    list starts on a line indented by ``indent``."""
    return "".join(_records_parts(table, indent, arrow_min_rows=arrow_min_rows))


def _records_parts(table: Records, indent: str, *, arrow_min_rows: int | None = None) -> Iterator[str]:
    """:func:`_records_text` in pieces, a chunk of rows at a time."""
    n = len(table)
    if n == 0:
        yield "[]"
        return
    if not table.columns:
        yield "[\n" + ",\n".join([indent + "  {}"] * n) + "\n" + indent + "]"
        return
    inner = indent + "    "
    keys = [json.dumps(str(key)) for key in table.columns]
    yield "[\n"
    if n >= (ARROW_MIN_ROWS if arrow_min_rows is None else arrow_min_rows):
        for i, rows in enumerate(_arrow_rows(table, indent, keys)):
            yield rows[2:] if i == 0 else rows  # the first row has no ",\n" before it
    else:
        fields = [inner + key.replace("%", "%%") + ": %s" for key in keys]
        row = indent + "  {\n" + ",\n".join(fields) + "\n" + indent + "  }"
        for start in range(0, n, RECORDS_CHUNK_ROWS):
            columns = table.lists(rows=slice(start, start + RECORDS_CHUNK_ROWS))
            encoded = [_encode_scalars(values) for values in columns.values()]
            yield ("" if start == 0 else ",\n") + ",\n".join([row % values for values in zip(*encoded)])
    yield "\n" + indent + "]"


def _arrow_rows(table: Records, indent: str, keys: list[str]) -> Iterator[str]:
    """Every row of ``table``, each preceded by ``,\\n``, written by Arrow's kernels (a string
    per chunk of rows)."""
    from lossacc_cli.render.json_columns import column_texts, row_texts

    inner = indent + "    "
    heads = [",\n" + indent + "  {\n" + inner + keys[0] + ": "]
    heads += [",\n" + inner + key + ": " for key in keys[1:]]
    tail = "\n" + indent + "  }"
    for start in range(0, len(table), ARROW_CHUNK_ROWS):
        rows = slice(start, start + ARROW_CHUNK_ROWS)
        pieces = []
        for head, key in zip(heads, table.columns):
            present = table.present.get(key)
            missing = None if present is None else ~np.asarray(present, dtype=bool)[rows]
            pieces += [head, column_texts(table.columns[key][rows], missing, table.finite)]
        yield row_texts([*pieces, tail])


def _encode_scalars(values: list) -> list[str]:
    """Each scalar's JSON text as ``json.dumps`` writes it (NaN refused). Encoded with NUL as the
    separator: a NUL inside a string is written as \\u0000, so it never splits a value."""
    if not values:
        return []
    parts = json.dumps(values, separators=("\0", ":"), allow_nan=False)[1:-1].split("\0")
    if len(parts) != len(values):
        raise TypeError("Records hold scalars only")
    return parts
