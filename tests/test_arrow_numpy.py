"""Arrow arrays read as NumPy from their buffers: the values pyarrow's own conversion gives."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from lossacc_cli.readers.arrow_numpy import as_numpy, from_numpy

DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32, np.uint64, np.float16,
          np.float32, np.float64]


def _shapes(a):
    return [a, a.slice(3, 500), a.slice(0, 0), pa.chunked_array([a.slice(1, 10), a.slice(20, 7)]),
            pa.chunked_array([a.slice(5)]), pa.chunked_array([], type=a.type)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_numbers_as_pyarrow_converts_them(dtype):
    x = (np.random.default_rng(0).random(1000) * 100).astype(dtype)
    a = from_numpy(x)
    assert a.type == pa.from_numpy_dtype(np.dtype(dtype)) and a.to_pylist() == x.tolist()
    for arr in _shapes(a):
        got = as_numpy(arr)
        ref = arr.to_numpy() if isinstance(arr, pa.ChunkedArray) else arr.to_numpy(zero_copy_only=False)
        assert got.dtype == ref.dtype and np.array_equal(got, ref)
        assert got.flags.writeable or not isinstance(arr, pa.ChunkedArray)


def test_booleans_nulls_and_strings():
    b = pc.greater(from_numpy(np.arange(100)), 40)
    for arr in _shapes(b):
        assert np.array_equal(as_numpy(arr), np.array(arr.to_pylist(), dtype=bool))
    with_nulls = pa.array([1, None, 3])
    assert np.array_equal(as_numpy(with_nulls), with_nulls.to_numpy(zero_copy_only=False), equal_nan=True)
    strings = pa.chunked_array([pa.array(["a", "b"]), pa.array(["c"])])
    assert as_numpy(strings).tolist() == ["a", "b", "c"]


def test_text_as_pyarrow_converts_it():
    """Text without nulls: the object array of str that pyarrow's conversion gives, for plain and
    large strings, sliced and chunked, non-ASCII included."""
    for kind in (pa.string(), pa.large_string()):
        a = pa.array([f"id-{i}" + "é" * (i % 3) for i in range(1000)], type=kind)
        for arr in _shapes(a):
            got = as_numpy(arr)
            ref = arr.to_numpy() if isinstance(arr, pa.ChunkedArray) else arr.to_numpy(zero_copy_only=False)
            assert got.dtype == ref.dtype == object and got.tolist() == ref.tolist()
    nulls = pa.array(["a", None])
    assert as_numpy(nulls).tolist() == nulls.to_numpy(zero_copy_only=False).tolist()
