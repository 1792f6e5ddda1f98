"""What the Parquet and NPZ readers share for streaming an epoch's scores: the opened epoch
(:class:`EpochStream`), the checks of one block of scores, and the block size. No Arrow here:
an NPZ run never imports the Parquet reader."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from lossacc_cli.errors import InputError
from lossacc_cli.readers.model import EpochData
from lossacc_cli.readers.validate import PROB_TOL

STREAM_BATCH_BYTES = 2 << 20
"""Score bytes per record batch of a list column. Decoding in batches of ~2 MB keeps the reader's
own buffers small; a whole-table read peaks at 4-5x the scores."""


@dataclass(frozen=True, eq=False)
class EpochStream:
    """One epoch opened for streaming (shared by the Parquet and NPZ readers).

    ``header`` is the validated epoch without its scores (``scores`` is None, ``kind`` is
    ``logits`` or ``probs``). ``batches(threads)`` yields the (rows, K) scores in row order, each
    block checked as :func:`~lossacc_cli.readers.validate.build_epoch` would check the whole
    matrix; a block that fails raises :class:`StreamRejected`. ``order`` is the memory order the
    whole matrix would have (``F`` for wide columns). Blocks stay valid after the next one is
    read (each lives in its own decoded buffer, or is a view of a memory map or of the matrix
    read so far), so a caller may keep them. ``decoded`` says that reading the blocks is work of its
    own (Parquet pages, inflating NPZ data), worth a thread while the blocks are reduced.
    """

    header: EpochData
    n_classes: int
    dtype: np.dtype
    order: str
    batches: Callable[[bool], Iterator[np.ndarray]]
    decoded: bool = False

    @property
    def nbytes(self) -> int:
        return self.header.n_samples * self.n_classes * self.dtype.itemsize


class StreamRejected(InputError):
    """A block of scores failed a check: read the epoch whole, whose error names the rows."""


def score_placeholder(n_rows: int, n_classes: int, dtype: np.dtype) -> np.ndarray:
    """A read-only (N, K) stand-in for the scores, so that the checks of everything else (lengths,
    ids, labels against K, class names) run unchanged before the scores are read."""
    fast = np.float64 if dtype == np.float64 else np.float32  # min/max of float16 are slow
    return np.broadcast_to(np.zeros((1, n_classes), dtype=fast), (n_rows, n_classes))


def check_scores(kind: str, block: np.ndarray, where: str) -> None:
    """The value checks of build_epoch on one block; raises StreamRejected when any fails."""
    if block.dtype == np.float16:  # float16 reductions have no fast path
        block = block.astype(np.float32)
    low, high = block.min(), block.max()
    if not (np.isfinite(low) and np.isfinite(high)):
        raise StreamRejected(f"{where}: non-finite scores")
    if kind == "probs":
        sums = block.sum(axis=1, dtype=np.float64)
        if not (
            low >= -PROB_TOL and high <= 1 + PROB_TOL and np.abs(sums - 1.0).max() <= PROB_TOL
        ):
            raise StreamRejected(f"{where}: probabilities off by more than {PROB_TOL}")
