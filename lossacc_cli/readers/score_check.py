"""The value checks of an epoch's (N, K) scores, one block of rows at a time.

The whole-file reader hands the matrix over as one block, the streaming readers hand over their
record batches or row blocks in row order: both go through :class:`ScoreCheck`, so a streamed
epoch is refused with the very message the whole read gives, naming the same rows and ids. A
block that fails is kept from the caller, the blocks after it are still looked at (the message
counts every offending row, and a worse fault further on takes precedence, as it does over the
whole matrix), and :meth:`ScoreCheck.finish` raises.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from lossacc_cli.errors import input_error
from lossacc_cli.readers.model import CLASS_NAMES_KEY, EpochData, ReadOptions

PROB_TOL = 1e-3
"""Tolerance on probabilities: entries in [-tol, 1 + tol], row sums within tol of 1.

Published files carry float16/float32 rounding and even +1e-5 offsets; those are accepted
unchanged.
"""

RENORMALIZE_HINT = "pass --renormalize to rescale"

_SHOWN = 5  # offending ids named in a message
_F16_ROWS_BYTES = 2 << 20  # float16 extremes are taken in float32, this many bytes at a time


class _Rows:
    """Offending rows met so far: the first few ids and the count."""

    def __init__(self) -> None:
        self.ids: list[object] = []
        self.count = 0

    def add(self, ids: np.ndarray, bad: np.ndarray) -> None:
        rows = np.flatnonzero(bad)
        if len(self.ids) < _SHOWN:
            self.ids.extend(ids[rows[: _SHOWN - len(self.ids)]].tolist())
        self.count += int(rows.size)


class ScoreCheck:
    """Checks the scores of one epoch block by block, in row order.

    Logits (and a binary ``logit``) must be finite; probabilities finite, entries in [0, 1] and
    row sums 1, both within :data:`PROB_TOL`. With ``options.renormalize`` the probability rows
    beyond the tolerance get negatives clipped to 0 and are divided by their sums (in a copy of
    the block); rows within the tolerance are left unchanged. Faults rank as over the whole
    matrix: non-finite values anywhere, then entries out of range, then row sums (or, when
    renormalising, rows that sum to 0).

    Parameters
    ----------
    header : EpochData
        The epoch from :func:`~lossacc_cli.readers.validate.build_header` (source, ids, kind).
    name : str
        The score field, as messages name it.
    options : ReadOptions
        ``renormalize`` is the one that counts here.
    """

    def __init__(self, header: EpochData, name: str, options: ReadOptions) -> None:
        self.header, self.name = header, name
        self.probs = header.kind == "probs"
        self.renormalize = self.probs and options.renormalize
        self.at = 0
        self.failed = False
        self.dtype: np.dtype | None = None
        self.low, self.high, self.deviation = np.inf, -np.inf, 0.0
        self.non_finite, self.off_range, self.off_sum, self.zero = _Rows(), _Rows(), _Rows(), _Rows()
        self.renormalised = 0

    def add(self, block: np.ndarray) -> np.ndarray | None:
        """The next rows of scores, checked: the block itself (or its renormalised copy), or None
        once any block has failed (:meth:`finish` then raises)."""
        ids = self.header.ids[self.at : self.at + block.shape[0]]
        self.at += block.shape[0]
        self.dtype = block.dtype
        if block.shape[0] == 0:
            return None if self.failed else block
        low, high = _extremes(block)
        if not (np.isfinite(low) and np.isfinite(high)):
            bad = ~np.isfinite(block)
            self.non_finite.add(ids, bad.any(axis=1) if bad.ndim == 2 else bad)
            self.failed = True
            return None
        if self.probs:
            block = self._probs(block, ids, low, high)
        return None if self.failed else block

    def _probs(self, block: np.ndarray, ids: np.ndarray, low, high) -> np.ndarray:
        self.low, self.high = min(self.low, float(low)), max(self.high, float(high))
        deviation = np.abs(block.sum(axis=1, dtype=np.float64) - 1.0)
        self.deviation = max(self.deviation, float(deviation.max()))
        if low >= -PROB_TOL and high <= 1 + PROB_TOL and deviation.max() <= PROB_TOL:
            return block
        off_range = ~((block >= -PROB_TOL) & (block <= 1 + PROB_TOL)).all(axis=1)
        off_sum = deviation > PROB_TOL
        if not self.renormalize:
            self.off_range.add(ids, off_range)
            self.off_sum.add(ids, off_sum)
            self.failed = True
            return block
        rows = np.flatnonzero(off_range | off_sum)
        fixed = np.clip(block[rows], 0, None)
        sums = fixed.sum(axis=1, dtype=np.float64)
        zero = sums <= 0
        if zero.any():
            self.zero.add(ids[rows], zero)
            self.failed = True
            return block
        out = block.copy()
        out[rows] = (fixed / sums[:, None]).astype(block.dtype, copy=False)
        self.renormalised += int(rows.size)
        return out

    def finish(self, scores: np.ndarray | None = None) -> EpochData:
        """Raise the error the blocks earned, if any; else the validated epoch (``scores`` as given:
        the whole matrix, or None for an epoch that streamed) with its notes."""
        self._raise()
        header = self.header
        notes = header.notes
        if self.renormalised:
            notes += (
                f"{header.source}: renormalised {self.renormalised} of {header.n_samples} rows of "
                f"'{self.name}' (negatives clipped to 0, rows divided by their sums)",
            )
        check_class_count(header)
        return replace(header, scores=scores, notes=notes)

    def _raise(self) -> None:
        source, name = self.header.source, self.name
        if self.non_finite.count:
            rows = self.non_finite
            if self.probs:
                raise input_error(source, name, "probabilities must be finite, found NaN or inf",
                                  ids=rows.ids, count=rows.count)
            hint = "float16 overflow shows up as inf" if self.dtype == np.float16 else ""
            raise input_error(source, name, "logits must be finite, found NaN or inf",
                              ids=rows.ids, count=rows.count, hint=hint)
        if self.off_range.count:
            hint = RENORMALIZE_HINT
            if self.low < -0.5 or self.high > 1.5:
                hint += " (values this far from [0, 1] look like logits: name the column 'logits')"
            raise input_error(
                source, name, f"probabilities outside [0, 1] (min {self.low:.4g}, max {self.high:.4g})",
                ids=self.off_range.ids, count=self.off_range.count, hint=hint,
            )
        if self.off_sum.count:
            raise input_error(
                source, name, f"row sums differ from 1 by up to {self.deviation:.3g}",
                ids=self.off_sum.ids, count=self.off_sum.count, hint=RENORMALIZE_HINT,
            )
        if self.zero.count:
            raise input_error(source, name, "rows sum to 0 and cannot be renormalised",
                              ids=self.zero.ids, count=self.zero.count)


def check_class_count(header: EpochData) -> None:
    """One class name per class (checked after the values, as it always was)."""
    names = header.class_names
    if names is not None and len(names) != header.n_classes:
        raise input_error(
            header.source,
            CLASS_NAMES_KEY,
            f"{len(names)} class names for {header.n_classes} classes",
            hint="give one name per class, in class-index order",
        )


def _extremes(block: np.ndarray):
    """``(min, max)`` of a block in its own dtype (they propagate NaN and expose inf). float16
    reductions have no fast path: taken in float32 a slice at a time, exactly."""
    if block.dtype != np.float16:
        return block.min(), block.max()
    step = max(1, _F16_ROWS_BYTES // max(1, block[:1].nbytes))
    lows, highs = [], []
    for start in range(0, block.shape[0], step):
        part = block[start : start + step].astype(np.float32)
        lows.append(part.min())
        highs.append(part.max())
    return np.float16(np.min(lows)), np.float16(np.max(highs))
