"""What the Parquet and NPZ readers share for streaming an epoch's scores: the opened epoch
(:class:`EpochStream`) and the block size. No Arrow here: an NPZ run never imports the Parquet
reader."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import numpy as np

from lossacc_cli.readers.model import EpochData
from lossacc_cli.readers.score_check import ScoreCheck

STREAM_BATCH_BYTES = 2 << 20
"""Score bytes per record batch of a list column. Decoding in batches of ~2 MB keeps the reader's
own buffers small; a whole-table read peaks at 4-5x the scores."""


def open_stream(open_files: Callable[[ExitStack], EpochStream | None]) -> EpochStream | None:
    """``open_files(files)``, which opens the epoch's files into ``files`` and returns the stream
    that then owns them, or None (the epoch is read whole: its files are closed here). A fault
    while opening closes the files with the fault in hand, so a file that changed says so."""
    files = ExitStack()
    try:
        stream = open_files(files)
    except BaseException as exc:
        files.__exit__(type(exc), exc, exc.__traceback__)
        raise
    if stream is None:
        files.close()
    return stream


class EpochStream:
    """One epoch opened for streaming its (N, K) scores (shared by the Parquet and NPZ readers).

    A context manager that owns the epoch's open files (each opened once, for the header and the
    scores alike)::

        with stream_epoch(source, options) as stream:
            for block in stream.blocks():
                ...
            epoch = stream.epoch

    ``header`` is the validated epoch without its scores (``scores`` is None, ``kind`` is
    ``logits`` or ``probs``): everything but the score values was checked before the first block.
    :meth:`blocks` yields the (rows, K) scores in row order, each checked by a
    :class:`~lossacc_cli.readers.score_check.ScoreCheck`; a fault raises, once the blocks after it
    were looked at, the :class:`~lossacc_cli.errors.InputError` the whole read would raise, and no
    block from the fault on is yielded. ``epoch``, once every block was read, is the validated
    epoch as the whole read returns it, without its scores (its notes may have grown:
    ``--renormalize``).

    ``order`` is the memory order the whole matrix would have (``F`` for wide columns). Blocks
    stay valid after the next one is read (each lives in its own decoded buffer, or is a view of
    the matrix read so far), so a caller may keep them. ``decoded`` says that reading the blocks
    is work of its own (Parquet pages, inflating NPZ data), worth a thread while the blocks are
    reduced.
    """

    def __init__(
        self,
        header: EpochData,
        check: ScoreCheck,
        *,
        dtype: np.dtype,
        order: str,
        read: Callable[[], Iterator[np.ndarray]],
        files: ExitStack,
        decoded: bool = False,
    ) -> None:
        self.header, self.dtype, self.order, self.decoded = header, dtype, order, decoded
        self._check, self._read, self._files = check, read, files
        self._epoch: EpochData | None = None

    @property
    def n_classes(self) -> int:
        return self.header.n_classes

    @property
    def nbytes(self) -> int:
        return self.header.n_samples * self.n_classes * self.dtype.itemsize

    def blocks(self) -> Iterator[np.ndarray]:
        """The checked score blocks in row order."""
        for block in self._read():
            checked = self._check.add(block)
            if checked is not None:
                yield checked
        self._epoch = self._check.finish()

    @property
    def epoch(self) -> EpochData:
        """The validated epoch (scores None), once :meth:`blocks` has run to its end."""
        if self._epoch is None:
            raise RuntimeError("the epoch is validated once all its blocks were read")
        return self._epoch

    def close(self) -> None:
        """Close the epoch's files (the context's exit does it)."""
        self._files.close()

    def __enter__(self) -> EpochStream:
        return self

    def __exit__(self, *exc_info) -> None:
        # the files see the error, as they would around a whole read: a file that changed
        # meanwhile, or Arrow's fault worded as the file's
        self._files.__exit__(*exc_info)
