"""One epoch's (N, K) scores reduced block by block, as they stream in.

An :class:`EpochReducer` turns aligned chunks of rows into the per-sample vectors, the class-wise
calibration sums and the terms the temperature fit needs at T = 1 (each row's loss and its
derivatives in 1/T, from the block's power sums), in one pass over each block of rows while it is
in cache. Only the temperature fit needs the scores again: usually one more exact pass
(:func:`~lossacc_cli.metrics.temperature.fit_temperature_from_moments`) over the blocks the caller
kept (memory-mapped rows or the decoded batches, never the file again). A compact
summary of each row (its top-k scores, a few moments) cannot do: at T* the classes outside a row's
top 64 still carry a fifth of its softmax mass on the benchmark's 1,000-class data, where the fit
must be right to 1e-6.

float16/float32 scores are reduced in float32 (:func:`compute_dtype`), float64 scores in float64;
sums over the classes of a row (:func:`_row_sum`) and over rows are accumulated in float64.

Chunks may be reduced in any order and on several threads; :meth:`EpochReducer.merge` takes their
results in row order. The blocks of rows are fixed (:func:`block_rows`), so every per-sample vector
and summary field is identical whatever the chunks, the threads or the reading path;
:func:`~lossacc_cli.metrics.per_sample.from_logits` is this pass on a whole matrix.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from lossacc_cli.metrics.calibration import (
    ClasswiseAccumulator,
    ClasswiseBlock,
    classwise_block,
    classwise_from_binary,
)
from lossacc_cli.metrics.epoch_summary import EpochSummary, summary_from_parts, with_recalibration
from lossacc_cli.metrics.recalibration import TAYLOR_MAX_STEP, Recalibrated, recalibrate
from lossacc_cli.metrics.temperature_search import (
    HALLEY_TOL,
    HALLEY_TOL_FLOAT32,
    Moments,
    TemperatureFit,
    fit_temperature_from_moments,
    moments_of,
    terms_into,
)
from lossacc_cli.metrics.vectors import (
    PROB_FLOOR,
    SampleStats,
    from_binary_logit,
    from_binary_prob,
    from_compact,
    from_probs,
)
from lossacc_cli.readers.model import EpochData

BLOCK_ELEMENTS = 1 << 18
"""A block of rows holds about this many scores (1 MiB in float32, one core's L2 here): large
enough that NumPy's per-call overhead is small next to the work (blocks of 2**16 scores were 1.3x
slower end to end), small enough that a block's scratch arrays stay in cache. The blocks fix the
summation order of the sums over rows, so every bit of the result, whatever the reading path."""

PassRunner = Callable[[Callable[[int, np.ndarray], None]], None]
"""Applies ``fn(start_row, chunk)`` to every kept chunk of the epoch (any order, any thread)."""


def block_rows(n_classes: int) -> int:
    """Rows per block for K classes."""
    return max(1, BLOCK_ELEMENTS // max(1, n_classes))


def aligned_chunks(
    blocks: Iterable[np.ndarray], step: int, *, order: str = "C"
) -> Iterator[tuple[int, np.ndarray]]:
    """``(start_row, chunk)`` from blocks of any size: every chunk starts at a multiple of ``step``
    and holds a multiple of ``step`` rows (except the last), so block boundaries fall where a whole
    matrix would put them. Rows straddling two input blocks are copied into an array of memory
    ``order`` (that of the whole matrix: 'F' for wide columns)."""
    start = 0
    carry: list[np.ndarray] = []
    carried = 0
    for block in blocks:
        if carried:
            take = block[: step - carried]
            carry.append(take)
            carried += take.shape[0]
            block = block[take.shape[0] :]
            if carried < step:
                continue
            yield start, _stack(carry, order)
            start += step
            carry, carried = [], 0
        whole = (block.shape[0] // step) * step
        if whole:
            yield start, block[:whole]
            start += whole
        if block.shape[0] > whole:
            carry, carried = [block[whole:]], block.shape[0] - whole
    if carried:
        yield start, _stack(carry, order)


def _stack(parts: list[np.ndarray], order: str) -> np.ndarray:
    rows = sum(p.shape[0] for p in parts)
    dtype = np.result_type(*parts)
    out = np.empty((rows, *parts[0].shape[1:]), dtype=dtype, order=order)
    at = 0
    for part in parts:
        out[at : at + part.shape[0]] = part
        at += part.shape[0]
    return out


class EpochReducer:
    """Per-sample vectors and summary of one epoch of (N, K) ``logits`` or ``probs``.

    Parameters
    ----------
    kind : {"logits", "probs"}
    labels : ndarray of int64, shape (N,)
    n_classes : int
    epoch : int
    """

    def __init__(
        self, kind: str, labels: np.ndarray, n_classes: int, epoch: int, dtype=np.float64
    ) -> None:
        if kind not in ("logits", "probs"):
            raise ValueError(f"EpochReducer reduces (N, K) scores, not {kind!r}")
        n = labels.shape[0]
        self.kind, self.labels, self.n_classes, self.epoch = kind, labels, n_classes, epoch
        self.compute = compute_dtype(dtype)
        self.step = block_rows(n_classes)
        self.pred = np.empty(n, dtype=np.int64)
        self.confidence = np.empty(n)
        self.classwise = ClasswiseAccumulator(n_classes)
        if kind == "logits":
            self.loss = np.empty(n)
            self.margin = np.empty(n)
            self.z_top = np.empty(n)  # row maxima, so that temperature passes need not find them
            self.d_true = np.empty(n)
            # each row's loss and its derivatives in beta at beta = 1, for the temperature fit
            self.terms = tuple(np.empty(n) for _ in range(4))
        else:
            self.true_prob = np.empty(n)

    # --- the streaming pass ------------------------------------------------------------------

    def reduce_chunk(self, start: int, chunk: np.ndarray) -> list[ClasswiseBlock]:
        """Reduce rows ``[start, start + len(chunk))``; ``start`` must be a multiple of ``step``.

        Safe to call from several threads on different chunks; pass the results to :meth:`merge`
        in row order.
        """
        work = _workspace(self.step, chunk.shape[1], _k_order(chunk), self.compute)
        reduce_block = self._logits_block if self.kind == "logits" else self._probs_block
        # float32 overflow is caught per block (and the block redone in float64): no warnings
        with np.errstate(over="ignore", invalid="ignore"):
            return [
                reduce_block(start + offset, chunk[offset : offset + self.step], work)
                for offset in range(0, chunk.shape[0], self.step)
            ]

    def merge(self, blocks: list[ClasswiseBlock]) -> None:
        """Add one chunk's class-wise sums (chunks in row order)."""
        for block in blocks:
            self.classwise.merge(block)

    def _logits_block(self, start: int, block: np.ndarray, work: _Workspace) -> ClasswiseBlock:
        # z = block in the compute dtype; d = z - z[top]; e = exp(d) with e[top] = 0 (the top's
        # own term is the 1 in 1 + rest, kept apart so that a near-certain row keeps its loss).
        r = block.shape[0]
        rows = slice(start, start + r)
        ar = np.arange(r)
        y = self.labels[rows]
        d, e, power, probs = work.views(r)
        k = block.shape[1]
        z = block
        if block.dtype != work.dtype:
            np.copyto(d, block)  # exact: float16 -> float32, float32 -> float64
            z = d
        top = _row_argmax(z)
        at_top = _Cells(ar, top, k)
        z_top = at_top.get(z)
        np.subtract(z, z_top[:, None], out=d)
        np.exp(d, out=e)
        at_top.put(e, 0.0)
        rest = _row_sum(e, work.sums(r))
        d_true = _Cells(ar, y, k).get(d).astype(np.float64)
        loss = np.log1p(rest) - d_true
        sums = np.empty((3, r), dtype=np.float64)
        _power_sums(e, d, power, sums, work.fit_sums(r))
        if work.dtype != np.float64 and not (
            np.isfinite(loss).all() and np.isfinite(sums).all()
        ):
            # float32 differences overflowed (scores beyond +-1.7e38): this block in float64
            return self._logits_block(start, block, _workspace(r, block.shape[1], work.order, np.float64))
        self.loss[rows] = loss
        self.pred[rows] = top
        self.confidence[rows] = confidence = 1.0 / (1.0 + rest)
        self.z_top[rows] = z_top
        self.d_true[rows] = d_true
        terms_into(1.0, rest, *sums, d_true, tuple(t[rows] for t in self.terms))
        at_top.put(d, -np.inf)
        runner_up = _row_max(d)
        if block.shape[1] > 1:
            # margin = z[y] - max over k != y: d[y] when the top is another class, else minus the
            # runner-up's d (ties give +0 either way)
            self.margin[rows] = np.where(top == y, 0.0 - runner_up.astype(np.float64), d_true)
        else:
            self.margin[rows] = np.inf
        at_top.put(e, 1.0)  # p = confidence * e, the top's included
        if not e.flags.c_contiguous:  # wide columns: the class-wise sums want rows contiguous
            e = probs
            np.copyto(e, work.views(r)[1])
        # the runner-up's e, computed as e itself was
        return classwise_block(y, e, confidence, top=top, second=np.exp(runner_up))

    def _probs_block(self, start: int, block: np.ndarray, work: _Workspace) -> ClasswiseBlock:
        # per_sample.from_probs and calibration.classwise_calibration_error on the same block.
        r = block.shape[0]
        rows = slice(start, start + r)
        ar = np.arange(r)
        y = self.labels[rows]
        probs = work.views(r)[3]
        np.copyto(probs, block)
        top = _row_argmax(probs if block.dtype == np.float16 else block)
        self.pred[rows] = top
        self.confidence[rows] = _Cells(ar, top, block.shape[1]).get(block)
        self.true_prob[rows] = _Cells(ar, y, block.shape[1]).get(block)
        return classwise_block(y, probs)

    # --- the temperature passes ----------------------------------------------------------------

    def fit_temperature(self, run_pass: PassRunner, release: Callable[[], None] | None = None
                        ) -> tuple[TemperatureFit, Recalibrated]:
        """T* from the moments at T = 1 (from the streaming pass for logits) and exact passes,
        with the per-sample loss and confidence at T*; ``release`` is called once no pass will
        follow (the caller lets the scores go)."""
        if self.kind == "logits":
            return temperature_passes(
                "logits", self.labels, run_pass, at_one=moments_of(self.terms), z_top=self.z_top,
                d_true=self.d_true, top=self.pred, dtype=self.compute,
                at_one_terms=self._hand_over_terms(), rows=True, release=release,
            )
        # z = ln max(p, eps): the first pass (at T = 1) finds its row maxima and true-class gaps
        return temperature_passes("probs", self.labels, run_pass, dtype=self.compute, rows=True,
                                  release=release)

    def _hand_over_terms(self) -> tuple[np.ndarray, ...]:
        """The terms at beta = 1, given up to the temperature fit: it lets them go once an exact
        pass has replaced them, so that they are not held through the recalibration."""
        terms, self.terms = self.terms, None
        return terms

    # --- results -------------------------------------------------------------------------------

    def sample_stats(self) -> SampleStats:
        """The per-sample vectors (identical to :func:`~lossacc_cli.metrics.per_sample.sample_stats`)."""
        if self.kind == "logits":
            return SampleStats(
                loss=self.loss,
                pred=self.pred,
                correct=self.pred == self.labels,
                confidence=self.confidence,
                true_prob=np.exp(-self.loss),
                margin=self.margin,
            )
        clipped = self.true_prob < PROB_FLOOR
        return SampleStats(
            loss=-np.log(np.maximum(self.true_prob, PROB_FLOOR)),
            pred=self.pred,
            correct=self.pred == self.labels,
            confidence=self.confidence,
            true_prob=self.true_prob,
            clipped=clipped,
        )

    def finish(self, run_pass: PassRunner, release: Callable[[], None] | None = None
               ) -> tuple[SampleStats, EpochSummary]:
        """Per-sample vectors and summary, once every chunk has been reduced and merged
        (``release``: as for :meth:`fit_temperature`)."""
        fit, recal = self.fit_temperature(run_pass, release)
        stats = with_recalibration(self.sample_stats(), recal)
        summary = summary_from_parts(
            epoch=self.epoch,
            labels=self.labels,
            n_classes=self.n_classes,
            stats=stats,
            classwise_ece=self.classwise.value(self.labels.shape[0]),
            fit=fit,
        )
        return stats, summary


def temperature_passes(
    kind: str,
    labels: np.ndarray,
    run_pass: PassRunner,
    *,
    at_one: Moments | None = None,
    z_top: np.ndarray | None = None,
    d_true: np.ndarray | None = None,
    top: np.ndarray | None = None,
    dtype=np.float64,
    at_one_terms: tuple[np.ndarray, ...] | None = None,
    rows: bool = False,
    release: Callable[[], None] | None = None,
) -> TemperatureFit | tuple[TemperatureFit, Recalibrated]:
    """T* of (N, K) scores seen through ``run_pass``: each evaluation is one exact pass.

    ``kind`` ``logits`` uses the scores as logits; ``probs`` uses ``ln max(p, eps)`` like
    :func:`~lossacc_cli.metrics.summary.summarize_epoch`. ``z_top`` (row maxima of those logits),
    ``d_true`` (true-class logit minus it) and ``top`` (where the maximum is) save work when the
    caller has them. ``dtype`` is the scores' dtype: the per-row work is done in
    :func:`compute_dtype` of it, the sums over rows in float64.

    With ``rows``, also the per-sample loss and confidence at T* (:mod:`.recalibration`), from
    the row terms of the last exact pass (``at_one_terms``, those the streaming pass made at
    T = 1, when no pass follows it), or from one more pass when T* is too far from it. Each pass
    turns a block's power sums into its rows' terms while they are in cache. ``release`` is
    called once the last pass is made (with ``rows``, before the recalibration's own arrays are
    allocated).
    """
    n = labels.shape[0]
    compute = compute_dtype(dtype)
    known = [z_top is not None and top is not None and d_true is not None]
    row_top = z_top if known[0] else np.empty(n)
    top_at = top if known[0] else np.empty(n, dtype=np.intp)
    d_y = d_true if known[0] else np.empty(n)

    def block_sums(start: int, block: np.ndarray, beta: float, work: _Workspace) -> None:
        r = block.shape[0]
        rows = slice(start, start + r)
        ar = np.arange(r)
        d, w, scratch = work.views(r)[:3]
        if kind == "logits" and known[0]:
            np.subtract(block, row_top[rows, None].astype(work.dtype), out=d)
        else:
            np.copyto(d, block)
            if kind == "probs":
                np.maximum(d, PROB_FLOOR, out=d)
                np.log(d, out=d)
            if not known[0]:
                top_at[rows] = _row_argmax(d)
                row_top[rows] = _Cells(ar, top_at[rows], d.shape[1]).get(d)
            d -= row_top[rows, None].astype(work.dtype)
            if not known[0]:
                d_y[rows] = _Cells(ar, labels[rows], d.shape[1]).get(d)
        np.multiply(d, beta, out=w)
        np.exp(w, out=w)
        _Cells(ar, top_at[rows], w.shape[1]).put(w, 0.0)  # the top's own term is the 1 in 1 + rest
        out = work.power(r)
        out[0] = _row_sum(w, work.sums(r))
        _power_sums(w, d, scratch, out[1:], work.sums(r))
        if work.dtype != np.float64 and not np.isfinite(out).all():
            # float32 differences overflowed (scores beyond +-1.7e38): this block in float64
            block_sums(start, block, beta, _workspace(r, block.shape[1], work.order, np.float64))
            return
        terms_into(beta, *out, d_y[rows], tuple(t[rows] for t in current[0]))

    def evaluate(beta: float) -> Moments:
        def fn(start: int, chunk: np.ndarray) -> None:
            step = block_rows(chunk.shape[1])
            # in the chunk's own layout: a row's sums then do not depend on the thread or block
            work = _workspace(step, chunk.shape[1], _k_order(chunk), compute)
            with np.errstate(over="ignore", invalid="ignore"):  # overflow is caught per block
                for offset in range(0, chunk.shape[0], step):
                    block_sums(start + offset, chunk[offset : offset + step], beta, work)

        nonlocal at_one_terms
        at_one_terms = None  # a pass replaces them (the recalibration reads the last pass's terms)
        last_rows[0] = None  # the last pass's terms go before this pass makes its own
        current[0] = tuple(np.empty(n) for _ in range(4))
        run_pass(fn)
        known[0] = True
        last_beta[0] = beta
        terms, current[0] = current[0], None
        last_rows[0] = terms if rows else None  # the recalibration expands the last pass's terms
        return moments_of(terms)

    last_beta = [None]
    last_rows = [None]
    current = [None]  # the terms the running pass writes

    exact_start = compute == np.float64
    if not known[0]:  # the pass at T = 1 finds each row's top and true class
        at_one, exact_start = evaluate(1.0), True
    tol = HALLEY_TOL_FLOAT32 if compute == np.float32 else HALLEY_TOL
    # the streaming pass's power sums may be float32-accumulated (FLOAT32_FIT_SUM_K): they only
    # choose where the first exact pass goes
    fit = fit_temperature_from_moments(
        evaluate, at_one, true_is_top=not d_y.any(), tol=tol, exact_start=exact_start
    )
    if not rows:
        if release is not None:
            release()
        return fit
    beta_star = 1.0 / fit.temperature
    if at_one_terms is not None:  # no pass was made (a pass lets them go): the terms at T = 1
        beta_l, terms = 1.0, at_one_terms
    else:
        beta_l, terms = last_beta[0], last_rows[0]
    at_one_terms = None
    if beta_l is None or abs(beta_star - beta_l) > TAYLOR_MAX_STEP * beta_star:
        terms = None  # let go before the pass makes its own
        evaluate(beta_star)
        beta_l, terms = beta_star, last_rows[0]
    last_rows[0] = None
    if release is not None:
        release()
    return fit, recalibrate(terms, beta_l, beta_star, d_y)


def compute_dtype(dtype) -> np.dtype:
    """The dtype of the per-row work for scores of ``dtype``: float32 for float16/float32 scores of
    either byte order (exact upcast; the float32 result is within float32 rounding of the float64
    one, as the scores themselves are), float64 otherwise. Sums are accumulated in float64."""
    dtype = np.dtype(dtype)  # any byte order
    return np.dtype(np.float32) if dtype.kind == "f" and dtype.itemsize <= 4 else np.dtype(np.float64)


FLOAT32_FIT_SUM_K = 4096
"""In the streaming pass, the power sums that start the temperature fit are accumulated in float32
(einsum's SIMD lanes) for row-major blocks of up to this many classes, in float64 otherwise. They
only choose where the fit's first exact pass goes: T* always comes from a pass whose sums are
float64-accumulated. (float32 sums moved a flat-curve T* by 1.1e-6; summing every pass in float64
cost 25-30% of an epoch's reduction, the streaming pass's share of it ~10%.)"""


def _row_sum(block: np.ndarray, wide: np.ndarray | None) -> np.ndarray:
    """Row sums in float64. With ``wide`` (a float64 block of the same shape and layout, for
    float32 terms) they are accumulated in float64: each sum is within float64 rounding of the exact
    sum of its float32 terms for any K and layout, and is not rounded to float32 again (copying into
    it and summing in float64 costs half of NumPy's casting reduction at K = 100). Without it, a
    float32 block is summed in float32 (einsum's order) and the sums converted."""
    if wide is None:
        return np.einsum("ij->i", block).astype(np.float64, copy=False)
    np.copyto(wide, block)
    return np.einsum("ij->i", wide)


def _power_sums(
    w: np.ndarray, d: np.ndarray, scratch: np.ndarray, out: np.ndarray, wide: np.ndarray | None
) -> None:
    """``out[j - 1] = sum_k w d^j`` for j = 1, 2, 3 (accumulated as :func:`_row_sum` does)."""
    np.multiply(w, d, out=scratch)
    out[0] = _row_sum(scratch, wide)
    scratch *= d
    out[1] = _row_sum(scratch, wide)
    scratch *= d
    out[2] = _row_sum(scratch, wide)


class _Cells:
    """The entries ``[i, cols[i]]`` of (rows, K) blocks: by flat position in a C-contiguous block
    (a quarter of the time of indexing with a row and a column array), by row and column
    otherwise (wide columns)."""

    def __init__(self, rows: np.ndarray, cols: np.ndarray, k: int) -> None:
        self.rows, self.cols = rows, cols
        self.flat = rows * k + cols

    def get(self, block: np.ndarray) -> np.ndarray:
        if block.flags.c_contiguous:
            return block.reshape(-1)[self.flat]
        return block[self.rows, self.cols]

    def put(self, block: np.ndarray, value: float) -> None:
        if block.flags.c_contiguous:
            block.reshape(-1)[self.flat] = value
        else:
            block[self.rows, self.cols] = value


def _row_argmax(block: np.ndarray) -> np.ndarray:
    """``block.argmax(axis=1)`` (first index on ties); for short rows from the row maxima
    (:func:`_row_max`) and one comparison per column, the columns taken from last to first so that
    the first one equal to the maximum is kept. Scores are finite, so a row's maximum equals
    exactly the entries argmax would pick (+0 and -0 alike). At K = 10 this is 2x the column loop
    that kept a running maximum and assigned through a mask (1.2 ms -> 0.56 ms a block of 2**18
    float32 scores) and 1.2x ``argmax(axis=1)``."""
    k = block.shape[1]
    if k > 32:
        return block.argmax(axis=1)
    best = _row_max(block)
    top = np.full(block.shape[0], k - 1, dtype=np.intp)
    for column in range(k - 2, -1, -1):
        np.putmask(top, block[:, column] == best, column)
    return top


def _row_max(block: np.ndarray) -> np.ndarray:
    """Row maxima (exact in any order); column by column when rows are short, which is faster."""
    if block.shape[1] > 32:
        return block.max(axis=1)
    out = block[:, 0].copy()
    for k in range(1, block.shape[1]):
        np.maximum(out, block[:, k], out=out)
    return out


_local = threading.local()


def _workspace(rows: int, cols: int, order: str, dtype=np.float64) -> _Workspace:
    """This thread's scratch blocks for (rows, cols) in ``order``, reused from chunk to chunk."""
    key = (rows, cols, order, np.dtype(dtype))
    cache = getattr(_local, "work", None)
    if cache is None:
        cache = _local.work = {}
    work = cache.get(key)
    if work is None:
        if len(cache) > 4:
            cache.clear()
        work = cache[key] = _Workspace(rows, cols, order, dtype)
    return work


class _Workspace:
    """Scratch blocks of the compute dtype reused across blocks and chunks (no allocation per
    block: a fresh array per operation would cost more in page faults than the operation).

    The first three follow ``order`` (the layout of the chunk, 'F' for wide columns); the fourth is
    C-ordered; a float32 workspace also has a float64 block for the sums.
    """

    def __init__(self, rows: int, cols: int, order: str, dtype=np.float64) -> None:
        self.order, self.dtype = order, np.dtype(dtype)
        self.buffers = (
            np.empty((rows, cols), dtype, order=order),
            np.empty((rows, cols), dtype, order=order),
            np.empty((rows, cols), dtype, order=order),
            np.empty((rows, cols), dtype) if order == "F" else None,
        )
        # float32 terms are summed from a float64 copy (see _row_sum)
        self.wide = None if self.dtype == np.float64 else np.empty((rows, cols), order=order)
        self.four = np.empty((4, rows))  # a temperature pass's power sums of each row
        self.fit_in_float32 = self.wide is not None and order == "C" and cols <= FLOAT32_FIT_SUM_K

    def power(self, r: int) -> np.ndarray:
        """A (4, r) float64 block for the power sums of a temperature pass."""
        return self.four[:, :r]

    def sums(self, r: int) -> np.ndarray | None:
        """The float64 buffer for :func:`_row_sum` (None when the work is float64 already)."""
        return None if self.wide is None else self.wide[:r]

    def fit_sums(self, r: int) -> np.ndarray | None:
        """The same for the streaming pass's power sums: None (float32 accumulation) for
        row-major blocks of at most :data:`FLOAT32_FIT_SUM_K` classes."""
        return None if self.fit_in_float32 else self.sums(r)

    def views(self, r: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        a, b, c, d = self.buffers
        return a[:r], b[:r], c[:r], (c if d is None else d)[:r]


def _k_order(block: np.ndarray) -> str:
    """The memory order of ``np.asarray(block, float64)`` ('K' order): 'F' when rows are the
    closer axis in memory, as for wide Parquet columns read through a (K, N) array."""
    two_d = block.ndim == 2 and block.shape[0] > 1 and block.shape[1] > 1
    return "F" if two_d and abs(block.strides[0]) < abs(block.strides[1]) else "C"


def matrix_passes(scores: np.ndarray) -> PassRunner:
    """A pass runner over an in-memory (N, K) matrix in cache-sized blocks of rows."""
    step = block_rows(scores.shape[1])

    def run_pass(fn: Callable[[int, np.ndarray], None]) -> None:
        for start in range(0, scores.shape[0], step):
            fn(start, scores[start : start + step])

    return run_pass


def reduce_rows(kind: str, labels: np.ndarray, scores: np.ndarray, n_classes: int | None = None,
                epoch: int = 0) -> EpochReducer:
    """The streaming pass over an in-memory (N, K) matrix, on one thread (no temperature fit)."""
    reducer = EpochReducer(kind, labels, n_classes or scores.shape[1], epoch, scores.dtype)
    step = reducer.step
    for start in range(0, scores.shape[0], step):
        reducer.merge(reducer.reduce_chunk(start, scores[start : start + step]))
    return reducer


def reduce_matrix(
    kind: str, labels: np.ndarray, scores: np.ndarray, n_classes: int, epoch: int
) -> tuple[SampleStats, EpochSummary]:
    """The streaming reduction of an in-memory (N, K) matrix, on one thread."""
    reducer = reduce_rows(kind, labels, scores, n_classes, epoch)
    return reducer.finish(matrix_passes(scores))


# --- the score kind of an epoch in memory: the one place that branches on it --------------------


def sample_stats(data: EpochData) -> SampleStats:
    """Per-sample vectors of an epoch in memory, whatever its score kind."""
    if data.kind == "logits":
        return reduce_rows("logits", data.labels, data.scores).sample_stats()
    if data.kind == "probs":
        return from_probs(data.labels, data.scores)
    if data.kind == "logit":
        return from_binary_logit(data.labels, data.scores)
    if data.kind == "prob":
        return from_binary_prob(data.labels, data.scores)
    st = data.stats
    return from_compact(data.labels, st.loss, st.pred, st.confidence, st.true_prob)


def temperature_logits(data: EpochData) -> np.ndarray | None:
    """The logits the temperature is fitted on (``ln max(p, eps)`` for probabilities); None for
    the compact form."""
    if data.kind == "logits":
        return data.scores
    if data.kind == "probs":
        return np.log(np.maximum(np.asarray(data.scores, dtype=np.float64), PROB_FLOOR))
    if data.kind == "logit":
        s = np.asarray(data.scores, dtype=np.float64)
        return np.column_stack([np.zeros_like(s), s])
    if data.kind == "prob":
        p = np.asarray(data.scores, dtype=np.float64)
        return np.log(np.maximum(np.column_stack([1.0 - p, p]), PROB_FLOOR))
    return None


def classwise_ece(data: EpochData) -> float:
    """Class-wise ECE of the epoch's scores (NaN for the compact form)."""
    if data.kind in ("logits", "probs"):  # block by block, as the streaming pass computes it
        reducer = reduce_rows(data.kind, data.labels, data.scores, data.n_classes)
        return reducer.classwise.value(data.n_samples)
    if data.kind == "logit":
        s = np.asarray(data.scores, dtype=np.float64)
        return classwise_from_binary(data.labels, 0.5 * (1.0 + np.tanh(0.5 * s)))
    if data.kind == "prob":
        return classwise_from_binary(data.labels, data.scores)
    return float("nan")


def fit_epoch(data: EpochData) -> tuple[TemperatureFit | None, Recalibrated | None]:
    """T* of the epoch's scores and the per-sample quantities at T* (None, None for the compact
    form). The same exact moment-based fit the streaming path runs (``metrics.stream``)."""
    if data.kind == "probs":  # on ln max(p, eps), computed pass by pass as the stream does
        return temperature_passes(
            "probs", data.labels, matrix_passes(data.scores), dtype=data.scores.dtype, rows=True
        )
    logits = temperature_logits(data)
    if logits is None:
        return None, None
    return temperature_passes(
        "logits", data.labels, matrix_passes(logits), dtype=logits.dtype, rows=True
    )


def fitted_summary(
    data: EpochData, stats: SampleStats, *, prior: np.ndarray | None = None
) -> tuple[SampleStats, EpochSummary]:
    """``stats`` with the per-sample values at T* added, and the epoch's summary."""
    fit, recal = fit_epoch(data)
    if recal is not None:
        stats = with_recalibration(stats, recal)
    return stats, summary_from_parts(
        epoch=data.epoch,
        labels=data.labels,
        n_classes=data.n_classes,
        stats=stats,
        classwise_ece=classwise_ece(data),
        fit=fit,
        prior=prior,
    )


def reduce_epoch_data(data: EpochData) -> tuple[SampleStats, EpochSummary]:
    """Per-sample vectors and summary of an epoch already in memory (any score layout)."""
    if data.kind in ("logits", "probs"):
        return reduce_matrix(data.kind, data.labels, data.scores, data.n_classes, data.epoch)
    return fitted_summary(data, sample_stats(data))
