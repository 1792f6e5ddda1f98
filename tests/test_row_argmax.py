"""The streaming pass's row argmax: NumPy's argmax(axis=1) (first index on ties) for every K,
dtype and layout the pass sees, ties, signed zeros and extreme values included."""

from __future__ import annotations

import numpy as np
import pytest

from lossacc_cli.metrics.stream import _row_argmax


def test_hand_computed_rows():
    block = np.array(
        [
            [1.0, 3.0, 3.0, 2.0],  # tie at the top: the first one
            [-0.0, 0.0, -1.0, -2.0],  # +0 and -0 are equal: the first one
            [5.0, 5.0, 5.0, 5.0],  # every entry the maximum
            [-3.4e38, -3.4e38, -1e-45, -3.4e38],  # extremes and a subnormal
            [0.0, 0.0, 0.0, 7.0],  # the last column
        ],
        dtype=np.float32,
    )
    assert _row_argmax(block).tolist() == [1, 0, 0, 2, 3]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("k", [1, 2, 3, 10, 32, 33])
@pytest.mark.parametrize("order", ["C", "F"])
def test_equals_numpy_argmax(dtype, k, order):
    rng = np.random.default_rng(k * 7 + len(order))
    n = 3000
    # few distinct values (many ties), signed zeros, and large magnitudes
    block = rng.integers(-3, 4, size=(n, k)).astype(dtype)
    block[rng.random((n, k)) < 0.1] = -0.0
    big = rng.random((n, k)) < 0.05
    block[big] = np.finfo(dtype).max * np.sign(rng.standard_normal(int(big.sum())))
    block[::5] = rng.standard_normal((len(block[::5]), k)).astype(dtype)
    block = np.asarray(block, order=order)
    got = _row_argmax(block)
    assert got.dtype == np.intp
    assert np.array_equal(got, block.argmax(axis=1))
