"""Arrow arrays as NumPy arrays without ``to_numpy``, which imports pandas (0.2-0.4 s) in
pyarrow 26 even for an int64 array: integer, float and boolean arrays without nulls are read from
their data buffers, text without nulls through Python strings; anything else goes through
pyarrow's own conversion."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def as_numpy(values: pa.Array | pa.ChunkedArray, *, copy: bool | None = None) -> np.ndarray:
    """``values.to_numpy(zero_copy_only=False)``: the same values and dtype.

    An ``Array`` of numbers comes back as a read-only view of its buffer (as pyarrow's zero-copy
    conversion does); a ``ChunkedArray`` as a copy of its own, or a read-only view of its one
    chunk (or of the chunks combined) with ``copy=False``.
    """
    chunked = isinstance(values, pa.ChunkedArray)
    array = _one_chunk(values) if chunked else values
    out = _from_buffers(array)
    if out is None:
        out = _from_strings(array)
        if out is not None:
            return out
        return values.to_numpy() if chunked else values.to_numpy(zero_copy_only=False)
    return out.copy() if chunked and copy is not False else out


def _from_strings(array: pa.Array) -> np.ndarray | None:
    """Text without nulls as ``to_numpy`` gives it (an object array of ``str``), through Python's
    own strings rather than pandas."""
    kind = array.type
    if array.null_count or not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return None
    try:
        texts = array.to_pylist()
    except UnicodeDecodeError:  # not valid UTF-8: pyarrow's conversion, whose error the reader reports
        return None
    out = np.empty(len(texts), dtype=object)
    out[:] = texts
    return out


def _one_chunk(values: pa.ChunkedArray) -> pa.Array:
    if values.num_chunks == 1:
        return values.chunk(0)
    if values.num_chunks == 0:
        return pa.array([], type=values.type)
    return values.combine_chunks()


def _from_buffers(array: pa.Array) -> np.ndarray | None:
    kind = array.type
    if array.null_count or not (
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
    ):
        return None
    n, offset = len(array), array.offset
    data = array.buffers()[1]
    if pa.types.is_boolean(kind):
        if n == 0:
            return np.zeros(0, dtype=bool)
        bits = np.frombuffer(data, dtype=np.uint8)
        return np.unpackbits(bits, count=offset + n, bitorder="little")[offset:].view(bool)
    dtype = np.dtype(kind.to_pandas_dtype())
    if n == 0:
        return np.zeros(0, dtype=dtype)
    return np.frombuffer(data, dtype=dtype, count=n, offset=offset * dtype.itemsize)


def from_numpy(values: np.ndarray) -> pa.Array:
    """A 1-D integer or float NumPy array as an Arrow array sharing its memory (``pa.array``
    imports pandas too, to check whether it was handed a pandas object)."""
    values = np.ascontiguousarray(values)
    if values.ndim != 1 or values.dtype.kind not in "iuf" or not values.dtype.isnative:
        return pa.array(values)
    kind = pa.from_numpy_dtype(values.dtype)
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)])
