"""Long tables written as JSON by Arrow's string kernels: the text ``json.dumps`` would write, with
no Python object per value.

Python writes a float as ``float.__repr__`` (the shortest digits that read back as the same
number), about 0.6 microseconds each; a flagged-sample list of 900,000 rows holds seven million of
them. Arrow's cast to string finds the same shortest digits in C++ (10x faster) but lays them out
as JavaScript does (``1e-7``, ``0.00001``, ``100``); :func:`float_texts` rewrites its layouts into
Python's with four regular expressions and leaves the few numbers no rule covers (integers of 1e15
and more) to ``repr``. The rows are then joined by :func:`row_texts`, also in C++.

Everything here is byte for byte what :func:`json.dumps` writes (tests compare the two on random
tables and on tens of millions of floats of every exponent).
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_SMALL_DECIMAL = (r"^(-?)0\.0000(0?)([1-9])(\d*)$", r"\1\3.\4e-05\2")
"""1e-6 <= |x| < 1e-4: Arrow writes 0.00000ddd or 0.0000ddd, Python d.dde-06 or d.dde-05. One
regular expression writes both as d.dde-05, with the 0 it took for 1e-6 <= |x| < 1e-5 after it
(e-050, which nothing else there holds: then e-06), and a lone digit as d.e-0N (then de-0N):
about half the time of one expression per layout."""

_PROBE = np.array([0.0, -0.0, 1.0, -2.5, 100.0, 0.1, 1e-4, 1.5e-5, 1e-6, 2.5e-7, 1e-9, 3e-10,
                   9999999999.0, 1e10, 1e16, 1.5e300, 5e-324, 0.0001234])
_ARROW_PROBE = ("0", "-0", "1", "-2.5", "100", "0.1", "0.0001", "0.000015", "0.000001", "2.5e-7",
                "1e-9", "3e-10", "9999999999", "1e+10", "1e+16", "1.5e+300", "5e-324", "0.0001234")
"""The layouts :func:`float_texts` rewrites: where Arrow's cast writes these differently (another
version of Arrow), every float is written by ``repr`` instead."""


def arrow_array(values: np.ndarray) -> pa.Array:
    """A NumPy array of float64, int64 or bool as an Arrow array on the same memory (``pa.array``
    on a NumPy array imports pandas in pyarrow 26: 0.2-0.4 s)."""
    values = np.ascontiguousarray(values)
    if values.dtype == bool:
        bits = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
    kind = {np.dtype(np.float64): pa.float64(), np.dtype(np.int64): pa.int64()}[values.dtype]
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)])


def string_array(texts: list[str]) -> pa.StringArray:
    """Python strings as an Arrow string array, built from its buffers (``pa.array`` on Python
    objects imports pandas too)."""
    encoded = [t.encode("utf-8") for t in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    data = pa.py_buffer(b"".join(encoded))
    return pa.Array.from_buffers(pa.string(), len(encoded), [None, pa.py_buffer(offsets), data])


def string_scalar(text: str) -> pa.StringScalar:
    return string_array([text])[0]


def _arrow_layout_is_known() -> bool:
    global _KNOWN
    if _KNOWN is None:
        _KNOWN = tuple(arrow_array(_PROBE).cast(pa.string()).to_pylist()) == _ARROW_PROBE
    return _KNOWN


_KNOWN: bool | None = None


def float_texts(values: np.ndarray) -> pa.StringArray:
    """``repr(float(v))`` of each finite float64 ``v`` (as :func:`json.dumps` writes it).

    Arrow writes the shortest digits, in decimal form for 1e-6 <= |x| < 1e10 and in exponent form
    otherwise, with one digit of exponent where it has one. Rewritten by magnitude (the shortest
    digits of a float are monotone in it, so the magnitude decides the layout): exponents of one
    digit padded (1e-9 <= |x| < 1e-6), decimals below 1e-4 put in exponent form, integral values
    given their ``.0``, and 1e10 <= |x| < 1e16 (exponent in Arrow, decimal in Python) left to
    ``repr``. Raises ValueError on NaN or infinity, as ``json.dumps(..., allow_nan=False)`` does.
    """
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError("Out of range float values are not JSON compliant")
    if not _arrow_layout_is_known():
        return string_array([repr(v) for v in values.tolist()])
    text = arrow_array(values).cast(pa.string())
    a = np.abs(values)

    def rewrite(mask: np.ndarray, how) -> None:
        nonlocal text
        if mask.any():
            text = pc.replace_with_mask(text, arrow_array(mask), how(text.filter(arrow_array(mask))))

    rewrite((a >= 1e-9) & (a < 1e-6), lambda t: pc.replace_substring(t, pattern="e-", replacement="e-0"))

    def small(t):
        t = pc.replace_substring_regex(t, pattern=_SMALL_DECIMAL[0], replacement=_SMALL_DECIMAL[1])
        t = pc.replace_substring(t, pattern="e-050", replacement="e-06")
        return pc.replace_substring(t, pattern=".e", replacement="e")

    rewrite((a >= 1e-6) & (a < 1e-4), small)
    rewrite((a < 1e10) & (np.floor(a) == a), lambda t: pc.binary_join_element_wise(t, string_scalar(".0"), string_scalar("")))
    odd = np.flatnonzero((a >= 1e10) & (a < 1e16))
    if odd.size:
        fixed = text.to_pylist()
        for i, v in zip(odd.tolist(), values[odd].tolist()):
            fixed[i] = repr(v)
        text = string_array(fixed)
    return text


def int_texts(values: np.ndarray) -> pa.StringArray:
    """``str(int(v))`` of each integer."""
    return arrow_array(np.asarray(values, dtype=np.int64)).cast(pa.string())


def bool_texts(values: np.ndarray) -> pa.StringArray:
    return pc.if_else(arrow_array(np.asarray(values, dtype=bool)), string_scalar("true"),
                      string_scalar("false"))


def scalar_texts(values: list) -> pa.StringArray:
    """JSON text of each Python scalar (strings escaped as :func:`json.dumps` escapes them)."""
    if not values:
        return string_array([])
    parts = json.dumps(values, separators=("\0", ":"), allow_nan=False)[1:-1].split("\0")
    if len(parts) != len(values):
        raise TypeError("Records hold scalars only")
    return string_array(parts)


def column_texts(values, missing: np.ndarray | None, finite: bool) -> pa.StringArray:
    """A column's JSON texts: ``null`` where ``missing`` (or, with ``finite``, where a float is NaN or
    infinite)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        if values.dtype.kind == "f":
            if finite:
                bad = ~np.isfinite(values)
                if bad.any():
                    missing = bad if missing is None else missing | bad
            if missing is not None and missing.any():
                values = np.where(missing, 0.0, values)  # replaced by null below
            text = float_texts(values)
        elif values.dtype.kind == "b":
            text = bool_texts(values)
        else:
            text = int_texts(values)
        if missing is not None and missing.any():
            text = pc.if_else(arrow_array(missing), string_scalar("null"), text)
        return text
    values = values.tolist() if isinstance(values, np.ndarray) else list(values)
    if finite:
        from lossacc_cli.render.jsonout import clean

        values = [clean(v) for v in values]
    if missing is not None:
        for i in np.flatnonzero(missing).tolist():
            values[i] = None
    return scalar_texts(values)


def row_texts(pieces: list) -> str:
    """The concatenation, row by row, of ``pieces``: constant strings and string arrays of one
    length, interleaved as the rows' text is."""
    pieces = [string_scalar(p) if isinstance(p, str) else p for p in pieces]
    joined = pc.binary_join_element_wise(*pieces, string_scalar(""))
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32)[joined.offset : joined.offset + len(joined) + 1]
    data = joined.buffers()[2]
    if data is None:
        return ""
    return str(memoryview(data)[offsets[0] : offsets[-1]], "utf-8")  # one copy
