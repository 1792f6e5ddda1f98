"""Load a whole run: every epoch read, validated and reduced to per-sample vectors and a summary
(or, for a command that shows some epochs, those reduced and the others read and checked only).

Each epoch streams: its scores arrive in blocks (Parquet record batches, an NPZ memory map) and are
reduced to per-sample vectors and summary sums as they come, so no score matrix is ever held twice
and what crosses epochs is per-sample vectors (N floats each) and small summaries. Epochs are
independent until the cross-epoch analysis: with ``jobs > 1`` several epochs are reduced at once in
worker processes, or one large epoch on several threads. The result is identical whatever ``jobs``
is (same blocks, same summation order, results assembled in epoch order).
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from functools import partial

import numpy as np

from lossacc_cli.analysis.workers import in_order
from lossacc_cli.cache import EpochCache
from lossacc_cli.errors import InputError, UsageError, format_ids
from lossacc_cli.metrics.per_sample import SampleStats
from lossacc_cli.metrics.stream import EpochReducer, aligned_chunks, reduce_epoch_data
from lossacc_cli.metrics.summary import EpochSummary
from lossacc_cli.metrics.vectors import clipped_rows
from lossacc_cli.readers import (
    EpochStream,
    close_passes,
    discover,
    forget_passes,
    read_epoch,
    remote,
    source_label,
    stream_epoch,
)
from lossacc_cli.readers.consistency import LabelLedger
from lossacc_cli.readers.model import EpochData, EpochSource, ReadOptions

PARALLEL_MIN_BYTES = 4 << 20
"""Below this many bytes of input in all, worker processes cost more than they save."""

THREAD_MIN_BYTES = 8 << 20
"""An epoch gets one extra thread per this many bytes of scores (up to ``jobs``)."""


CACHE_MIN_VALUES = 1024
"""Epochs with fewer scores (N x K) are not cached: reducing them costs less than the ~1 ms an
entry costs to write and read (a long-format file of 3,000 epochs of 3 samples: 3.6 s more)."""


@dataclass(frozen=True, eq=False)
class EpochRecord:
    """One epoch after reduction: its summary and per-sample vectors in file order.

    ``rows[i]`` is the position of the file's i-th sample in ``Run.ids``.
    """

    summary: EpochSummary
    stats: SampleStats
    labels: np.ndarray
    rows: np.ndarray
    source: str
    kind: str

    @property
    def epoch(self) -> int:
        return self.summary.epoch


@dataclass(frozen=True, eq=False)
class Run:
    """All epochs of one run, sorted by epoch, with a shared sample-id table.

    A run loaded for the epochs a command shows (``load_run(..., epochs=...)``) holds only those
    in ``records``; ``unreduced`` names the sources of the others, which were read and checked
    (and count in ``ids``, ``n_classes``, ``class_names`` and ``notes`` as in the whole run).
    """

    path: str
    records: tuple[EpochRecord, ...]
    ids: np.ndarray
    n_classes: int
    class_names: tuple[str, ...] | None
    notes: tuple[str, ...]
    unreduced: tuple[str, ...] = ()

    @property
    def epochs(self) -> list[int]:
        return [r.epoch for r in self.records]

    @property
    def summaries(self) -> list[EpochSummary]:
        return [r.summary for r in self.records]

    def record(self, epoch: int, option: str = "epoch") -> EpochRecord:
        for r in self.records:
            if r.epoch == epoch:
                return r
        where = f"{option} {epoch}" if option.startswith("--") else f"epoch {epoch}"
        raise UsageError(f"{where}: epoch {epoch} is not in {self.path} (epochs: {_epoch_list(self.epochs)})")

    def resolve_epoch(self, spec: str | int, option: str = "--epoch") -> int:
        """``best`` (lowest mean loss), ``last``, or an epoch number present in the run."""
        parsed = parse_epoch(spec)
        if parsed == "last":
            return self.records[-1].epoch
        if parsed == "best":
            from lossacc_cli.analysis.overview import overview  # overview decides "best", once

            return overview(self.summaries).best_loss_epoch
        if parsed is None:
            raise UsageError(f"{option} must be a number, 'best' or 'last', not {spec!r}")
        return self.record(parsed, option).epoch


def parse_epoch(spec: str | int) -> str | int | None:
    """What an epoch option names: ``"best"``, ``"last"``, an epoch number, or None (neither)."""
    text = str(spec).strip().lower()
    if text in ("best", "last"):
        return text
    try:
        return int(text)
    except ValueError:
        return None


def epochs_to_reduce(specs: Iterable[str | int], epochs: Sequence[int]) -> frozenset[int] | None:
    """The epochs (of those discovery found) that a command showing ``specs`` needs reduced, or
    None when it needs every one: ``best`` compares the mean loss of every epoch, which is their
    reduction, and a spec that names no epoch of the run is refused only once every epoch was
    read (a bad value anywhere is the error to show first, then the message listing the epochs).
    ``last`` needs the epoch numbers alone."""
    wanted = set()
    for spec in specs:
        parsed = parse_epoch(spec)
        if parsed == "last" and epochs:
            wanted.add(max(epochs))
        elif isinstance(parsed, int) and parsed in epochs:
            wanted.add(parsed)
        else:
            return None
    return frozenset(wanted)


def _epoch_list(epochs: list[int]) -> str:
    if len(epochs) <= 8:
        return ", ".join(map(str, epochs))
    return ", ".join(map(str, epochs[:3])) + ", ..., " + ", ".join(map(str, epochs[-3:]))


class _IdTable:
    """Grows the union of sample ids (in order of first appearance) and maps each epoch's ids to
    rows of it: by a binary search in a sorted copy (C-level for integers and, as fixed-width
    unicode, for strings), so no hashing library is needed. An int id and a string id are never
    the same sample."""

    def __init__(self) -> None:
        self.ids: np.ndarray | None = None
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None  # (sorted keys, their rows)
        self._last: tuple[np.ndarray, np.ndarray] | None = None  # (ids, rows) of the last epoch
        self._mixed = False  # the union holds int and string ids

    def rows_for(self, ids: np.ndarray) -> np.ndarray:
        last = self._last
        if last is not None and last[0].dtype == ids.dtype and np.array_equal(last[0], ids):
            return last[1]  # the same ids in the same order as the last epoch: no lookup
        self._last = (ids, rows := self._lookup(ids))
        return rows

    def _keys(self, ids: np.ndarray) -> np.ndarray:
        if ids.dtype != object:
            return ids
        if self._mixed:  # int and string ids in one run (rare): the type is part of the key
            return np.array([f"{type(x).__name__}:{x}" for x in ids.tolist()])
        return ids.astype(str)

    def _lookup(self, ids: np.ndarray) -> np.ndarray:
        if self.ids is None:
            self.ids = ids
            return np.arange(len(ids))
        rows = np.full(len(ids), -1, dtype=np.int64)
        if ((ids.dtype == object) == (self.ids.dtype == object) or self._mixed) and len(ids):
            if self._sorted is None:
                keys = self._keys(self.ids)
                order = np.argsort(keys, kind="stable")
                self._sorted = (keys[order], order)
            sorted_keys, order = self._sorted
            wanted = self._keys(ids)
            at = np.minimum(np.searchsorted(sorted_keys, wanted), len(sorted_keys) - 1)
            hit = sorted_keys[at] == wanted
            rows[hit] = order[at[hit]]
        new = rows < 0
        if new.any():
            start = len(self.ids)
            if (self.ids.dtype == object) != (ids.dtype == object):
                self._mixed = True
                self.ids = np.concatenate([self.ids.astype(object), ids[new].astype(object)])
            else:
                self.ids = np.concatenate([self.ids, ids[new]])
            rows[new] = np.arange(start, start + int(new.sum()))
            self._sorted = None
        return rows


def reduce_epoch(
    data: EpochData | EpochStream, threads: int = 1
) -> tuple[EpochSummary, SampleStats]:
    """Per-sample vectors and the summary of one epoch (the unit of work per epoch).

    ``data`` is an epoch in memory, or one whose scores stream in blocks; ``threads`` may reduce
    a large streaming epoch on several threads (the result does not depend on it).
    """
    if isinstance(data, EpochStream):
        return _reduce_stream(data, threads)
    stats, summary = reduce_epoch_data(data)
    return summary, stats


@dataclass(frozen=True, eq=False)
class EpochHeader:
    """What the checks across epochs and the run's notes need of an epoch read (picklable)."""

    epoch: int
    source: str
    kind: str
    n_classes: int
    class_names: tuple[str, ...] | None
    ids: np.ndarray
    ids_from_rows: bool
    labels: np.ndarray
    notes: tuple[str, ...]

    @property
    def n_samples(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True, eq=False)
class ReducedEpoch(EpochHeader):
    """What one epoch contributes to a run once its scores are gone (picklable, for workers)."""

    summary: EpochSummary
    stats: SampleStats
    streamed: bool = False


def _reduced(data: EpochData, stats: SampleStats, summary: EpochSummary, streamed: bool) -> ReducedEpoch:
    return ReducedEpoch(
        epoch=data.epoch,
        source=data.source,
        kind=data.kind,
        n_classes=data.n_classes,
        class_names=data.class_names,
        ids=data.ids,
        ids_from_rows=data.ids_from_rows,
        labels=data.labels,
        notes=data.notes,
        summary=summary,
        stats=stats,
        streamed=streamed,
    )


def reduce_source(source: EpochSource, options: ReadOptions, threads: int = 1) -> ReducedEpoch:
    """Read and reduce one epoch, streaming its scores when the layout allows (the readers decide
    before reading a score; either path raises the same error for the same file)."""
    stream = stream_epoch(source, options, threads=threads > 1)
    if stream is None:
        data = read_epoch(source, options)
        summary, stats = reduce_epoch(data)
        return _reduced(data, stats, summary, streamed=False)
    with stream:
        # one argument when one thread: reduce_epoch is the per-epoch hook wrappers replace
        summary, stats = reduce_epoch(stream) if threads == 1 else reduce_epoch(stream, threads)
        return _reduced(stream.epoch, stats, summary, streamed=True)


def reduce_cached(source: EpochSource, options: ReadOptions, threads: int = 1,
                  cache: EpochCache | None = None) -> ReducedEpoch:
    """:func:`reduce_source`, through the cache when one is given: a file reduced before is not
    read again (its reduction comes back field for field), a new one is reduced and stored."""
    if cache is None:
        return reduce_source(source, options, threads)
    key = cache.key(source, options)
    found = cache.get(key, source_label(source))
    if found is not None:
        return ReducedEpoch(**found)
    reduced = reduce_source(source, options, threads)
    if reduced.n_samples * max(1, reduced.n_classes) >= CACHE_MIN_VALUES:
        cache.put(key, {f.name: getattr(reduced, f.name) for f in fields(ReducedEpoch)})
    return reduced


@dataclass(frozen=True, eq=False)
class CheckedEpoch(EpochHeader):
    """One epoch read and checked but not reduced (a command shows other epochs): its header and
    no per-sample vectors. ``clipped`` marks the rows whose p[label] the reduction would clip
    (None: none can be)."""

    clipped: np.ndarray | None


def _checked(data: EpochData, clipped: np.ndarray | None) -> CheckedEpoch:
    return CheckedEpoch(epoch=data.epoch, source=data.source, kind=data.kind, n_classes=data.n_classes,
                        class_names=data.class_names, ids=data.ids, ids_from_rows=data.ids_from_rows,
                        labels=data.labels, notes=data.notes, clipped=clipped)


def check_source(source: EpochSource, options: ReadOptions) -> CheckedEpoch:
    """Read and check one epoch exactly as :func:`reduce_source` does (its scores streamed block by
    block when the layout allows, else read whole), without reducing it: the values are checked,
    the scores not reduced."""
    stream = stream_epoch(source, options)
    if stream is None:
        data = read_epoch(source, options)
        return _checked(data, clipped_rows(data.kind, data.labels, data.scores))
    with stream:
        header = stream.header
        clipped: list[np.ndarray] | None = [np.zeros(0, dtype=bool)] if header.kind == "probs" else None
        start = 0
        for block in stream.blocks():
            if clipped is not None:
                clipped.append(clipped_rows(header.kind, header.labels[start : start + block.shape[0]], block))
            start += block.shape[0]
        return _checked(stream.epoch, None if clipped is None else np.concatenate(clipped))


def check_cached(source: EpochSource, options: ReadOptions,
                 cache: EpochCache | None = None) -> ReducedEpoch | CheckedEpoch:
    """An epoch that is not shown: its reduction from the cache when the cache holds it (cheaper
    than reading the file), else :func:`check_source` (nothing is stored: nothing was reduced)."""
    if cache is not None:
        found = cache.get(cache.key(source, options), source_label(source))
        if found is not None:
            return ReducedEpoch(**found)
    return check_source(source, options)


def _reduce_stream(stream: EpochStream, threads: int) -> tuple[EpochSummary, SampleStats]:
    header = stream.header
    reducer = EpochReducer(header.kind, header.labels, header.n_classes, header.epoch, stream.dtype)
    threads = max(1, min(threads, stream.nbytes // THREAD_MIN_BYTES))
    # the blocks as they came (decoded batches, memory-mapped rows): the temperature fit passes
    # over them again, so the scores are held once and never copied
    kept: list[tuple[int, np.ndarray]] = []
    # While the scores are decoded, the decoder has a thread of its own: one core fewer reduces.
    # The temperature passes use every thread.
    reducing = max(1, threads - 1) if stream.decoded else threads
    with _workers(reducing) as pool:
        batches = stream.blocks()
        if threads > 1:
            batches = _prefetch(batches)
        pending: deque[Future] = deque()
        for start, chunk in aligned_chunks(batches, reducer.step, order=stream.order):
            kept.append((start, chunk))
            pending.append(pool.submit(reducer.reduce_chunk, start, chunk))
            while len(pending) > 2 * reducing:
                reducer.merge(pending.popleft().result())
        while pending:
            reducer.merge(pending.popleft().result())
    with _workers(threads) as pool:

        def run_pass(fn: Callable[[int, np.ndarray], None]) -> None:
            for future in [pool.submit(fn, start, chunk) for start, chunk in kept]:
                future.result()

        # the scores go once the last pass is made: the recalibration and the summary need
        # only the per-sample vectors (one epoch's scores less at the epoch's peak)
        stats, summary = reducer.finish(run_pass, release=kept.clear)
    return summary, stats


class _Inline(Executor):
    """Runs each task at once, on the calling thread (jobs = 1: no threads at all)."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[override]
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever reads the future
            future.set_exception(exc)
        return future


def _workers(threads: int) -> Executor:
    return ThreadPoolExecutor(threads) if threads > 1 else _Inline()


_DONE = object()


def _prefetch(items: Iterator, depth: int = 2) -> Iterator:
    """Run a generator ahead on its own thread (Arrow decodes without the GIL meanwhile)."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put((_DONE, None))
        except BaseException as exc:  # noqa: BLE001 - re-raised on the consuming thread
            buffer.put((_DONE, exc))
        finally:
            _close(items)  # a generator's own clean-up runs here, on its thread

    thread = threading.Thread(target=produce, name="lossacc-read", daemon=True)
    thread.start()
    try:
        while True:
            item, error = buffer.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                buffer.get(timeout=0.1)
            except queue.Empty:
                pass


def _clip_note(reduced: ReducedEpoch | CheckedEpoch) -> str | None:
    clipped = reduced.clipped if isinstance(reduced, CheckedEpoch) else reduced.stats.clipped
    n_clipped = 0 if clipped is None else int(clipped.sum())
    if n_clipped == 0:
        return None
    ids = reduced.ids[clipped]
    return (
        f"{reduced.source}: p[label] = 0 for {format_ids(ids, n_clipped)}; "
        "clipped at float64 eps (loss 36.04 nats)"
    )


def load_run(
    path: str,
    options: ReadOptions = ReadOptions(),
    *,
    on_epoch: Callable[[int, int], None] | None = None,
    jobs: int = 1,
    cache: bool | EpochCache = False,
    epochs: Sequence[str | int] | None = None,
) -> Run:
    """Discover, read and reduce every epoch under ``path`` (a folder, a file or a remote URL).

    ``on_epoch(done, total)`` is called after each epoch (for a progress bar); nothing here prints.
    ``jobs`` is how many cores to use (0 or less: all of them); the result does not depend on it.
    ``cache`` (True, or an :class:`~lossacc_cli.cache.EpochCache`) takes each epoch's reduction
    from the user's cache folder when that file was reduced before, and stores it otherwise; the
    result is the same either way (a cache that cannot be written is its ``problem``, not a note
    of the run).

    ``epochs`` are the epochs a command shows (numbers, ``last``, ``best``): only those are reduced
    when :func:`epochs_to_reduce` allows it, and every other epoch is read and checked as for its
    reduction (a bad value in any epoch fails the same way) or taken from the cache; the run's
    ``records`` are then the shown epochs alone, and everything else is as in the whole run.
    """
    store = (EpochCache() if cache is True else cache) or None
    if cache is True:
        store.check_writable()  # a folder that cannot be written: the run goes on without it
    if store is not None:
        store.new_pass()
    with remote.opened(path) as copy, _passes_closed():  # a remote run: from a private local copy
        sources, notes = discover(copy.root or path, options)
        wanted = None if epochs is None else epochs_to_reduce(epochs, [s.epoch for s in sources])
        if wanted is None or all(s.epoch in wanted for s in sources):
            run = load_sources(copy.root or path, sources, options, notes=notes, on_epoch=on_epoch,
                               jobs=jobs, cache=store)
        else:
            run = _load_shown(copy.root or path, sources, options, wanted, notes=notes,
                              on_epoch=on_epoch, jobs=jobs, cache=store)
    if store is not None:
        store.prune()
    return _relabelled(run, copy) if copy.root else run


@contextmanager
def _passes_closed() -> Iterator[None]:
    """Long-format passes opened while reading a run are closed when it has been read."""
    try:
        yield
    finally:
        close_passes()


def _relabelled(run: Run, copy: remote.Copy) -> Run:
    """The run read from a remote copy, its sources and notes naming the URL."""
    records = tuple(replace(r, source=copy.relabel(r.source)) for r in run.records)
    return replace(run, path=copy.url, records=records, notes=tuple(map(copy.relabel, run.notes)),
                   unreduced=tuple(map(copy.relabel, run.unreduced)))


def _load_shown(
    path: str,
    sources: list[EpochSource],
    options: ReadOptions,
    wanted: frozenset[int],
    *,
    notes: tuple[str, ...],
    on_epoch: Callable[[int, int], None] | None,
    jobs: int,
    cache: EpochCache | None,
) -> Run:
    """The epochs in ``wanted`` read and reduced, the others read and checked (in worker processes
    when it pays, as :func:`load_sources`), in reading order so that the first bad epoch is the one
    reported."""
    jobs = jobs if jobs > 0 else available_cores()
    total = len(sources)
    workers = min(jobs, total) if total > 1 and _input_bytes(sources) >= PARALLEL_MIN_BYTES else 1
    task = partial(_shown_or_checked, wanted=wanted)
    if workers > 1:
        items = _in_processes(sources, options, workers, max(1, jobs // workers), cache, task=task)
    else:
        items = (task(source, options, jobs, cache) for source in sources)
    return _assemble(path, _counted(items, total, on_epoch), notes=notes, shown=wanted)


def _shown_or_checked(source: EpochSource, options: ReadOptions, threads: int, cache: EpochCache | None,
                      *, wanted: frozenset[int]) -> ReducedEpoch | CheckedEpoch:
    if source.epoch in wanted:
        return reduce_cached(source, options, threads, cache)
    return check_cached(source, options, cache)


def load_sources(
    path: str,
    sources: list[EpochSource],
    options: ReadOptions,
    *,
    notes: tuple[str, ...] = (),
    on_epoch: Callable[[int, int], None] | None = None,
    jobs: int = 1,
    cache: EpochCache | None = None,
) -> Run:
    """Read and reduce the given epochs (in worker processes when it pays) and build the run."""
    jobs = jobs if jobs > 0 else available_cores()
    total = len(sources)
    workers = _worker_count(sources, jobs)
    found: dict[int, ReducedEpoch] = {}
    if workers > 1 and cache is not None:
        # epochs reduced before come from the cache here: a worker would only decode them and
        # send them back through a pipe, which costs more than decoding them (100 cached epochs
        # of 10,000 x 10: 0.40 s on two workers, 0.22 s here)
        found = _cached_epochs(sources, options, cache)
        missing = [source for i, source in enumerate(sources) if i not in found]
        workers = _worker_count(missing, jobs)
    else:
        missing = sources
    if workers > 1:
        fresh = _in_processes(missing, options, workers, max(1, jobs // workers), cache)
    else:
        fresh = (reduce_cached(source, options, jobs, cache) for source in missing)
    reduced = _in_order(total, found, fresh) if found else fresh
    return _assemble(path, _counted(reduced, total, on_epoch), notes=notes)


def _counted(items: Iterator, total: int, on_epoch: Callable[[int, int], None] | None) -> Iterator:
    """``items``, ``on_epoch(done, total)`` called after each; closing this closes ``items``."""
    try:
        for done, item in enumerate(items, start=1):
            yield item
            if on_epoch is not None:
                on_epoch(done, total)
    finally:
        _close(items)


def _worker_count(sources: list[EpochSource], jobs: int) -> int:
    """Worker processes for reducing ``sources``: one per epoch up to ``jobs``, none (1) for a
    single epoch or less input than :data:`PARALLEL_MIN_BYTES`."""
    total = len(sources)
    return min(jobs, total) if total > 1 and _input_bytes(sources) >= PARALLEL_MIN_BYTES else 1


def _cached_epochs(sources: list[EpochSource], options: ReadOptions,
                   cache: EpochCache) -> dict[int, ReducedEpoch]:
    """The epochs (by position in ``sources``) whose reduction the cache holds."""
    found = {}
    for i, source in enumerate(sources):
        fields_ = cache.get(cache.key(source, options), source_label(source))
        if fields_ is not None:
            found[i] = ReducedEpoch(**fields_)
    return found


def _close(items: Iterable) -> None:
    """Close ``items`` if it can be closed (a generator: its clean-up runs now, not when freed)."""
    close = getattr(items, "close", None)
    if close is not None:
        close()


def _in_order(total: int, found: dict[int, ReducedEpoch],
              fresh: Iterator[ReducedEpoch]) -> Iterator[ReducedEpoch]:
    """Every epoch in reading order: position i from ``found``, else the next of ``fresh``."""
    try:
        for i in range(total):
            yield found[i] if i in found else next(fresh)
    finally:
        _close(fresh)  # workers still running are stopped (an error, Ctrl-C)


def available_cores() -> int:
    """The cores this process may run on (what ``jobs=0`` means)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _input_bytes(sources: list[EpochSource]) -> int:
    total = 0
    for path in {s.path for s in sources}:
        try:
            if os.path.isdir(path):
                total += sum(e.stat().st_size for e in os.scandir(path) if e.is_file())
            else:
                total += os.path.getsize(path)
        except OSError:
            pass  # reading it will report the problem
    return total


def _in_processes(
    sources: list[EpochSource], options: ReadOptions, workers: int, threads: int,
    cache: EpochCache | None = None, task: Callable = reduce_cached,
) -> Iterator[ReducedEpoch]:
    """Reduce epochs in ``workers`` processes (:mod:`.workers`); results come back in epoch order,
    with at most two epochs per worker in flight, so memory stays flat whatever the number of
    epochs. ``task`` is the per-epoch work (:func:`reduce_cached`'s arguments and result)."""
    tasks = [(source, options, threads, cache) for source in sources]
    return in_order(task, tasks, workers, start=forget_passes)


def build_run(path: str, epochs: Iterable[EpochData], *, notes: tuple[str, ...] = ()) -> Run:
    """Reduce epochs already in memory, one after the other, and build the run."""

    def reduced() -> Iterator[ReducedEpoch]:
        for data in epochs:
            summary, stats = reduce_epoch(data)
            item = _reduced(data, stats, summary, streamed=False)
            del data  # release the score matrix before the next epoch is read
            yield item

    return _assemble(path, reduced(), notes=notes)


def _assemble(path: str, epochs: Iterable[ReducedEpoch | CheckedEpoch], *, notes: tuple[str, ...] = (),
              shown: frozenset[int] | None = None) -> Run:
    """The run from reduced epochs in reading order: the checks across epochs, the id table.
    With ``shown``, only those epochs become records (the others, reduced or only checked, count
    in the checks, the id table and the notes alike). A check that fails closes ``epochs`` at
    once (worker processes still reducing later epochs are stopped then, not when it is freed)."""
    try:
        return _assembled(path, epochs, notes=notes, shown=shown)
    finally:
        _close(epochs)


def _assembled(path: str, epochs: Iterable[ReducedEpoch | CheckedEpoch], *, notes: tuple[str, ...],
               shown: frozenset[int] | None) -> Run:
    notes = list(notes)
    unreduced: list[tuple[int, str, int]] = []  # (epoch, source, rows) of the epochs not shown
    table = _IdTable()
    ledger = LabelLedger()  # every sample keeps its label across epochs
    records: list[EpochRecord] = []
    n_classes = None
    class_names = None
    first_n = None
    first_source = None
    row_ids_seen = False
    for data in epochs:
        if n_classes is None:
            n_classes, first_source = data.n_classes, data.source
        elif data.n_classes != n_classes and data.kind != "stats":
            raise InputError(
                f"{data.source}: field 'scores': {data.n_classes} classes, but "
                f"{first_source} has {n_classes}; every epoch must have the same K"
            )
        n_classes = max(n_classes, data.n_classes)
        class_names = class_names or data.class_names
        if data.ids_from_rows:
            if first_n is not None and data.n_samples != first_n:
                raise InputError(
                    f"{data.source}: field 'sample_id': no id column and {data.n_samples} rows "
                    f"where {first_source} has {first_n}; rows cannot be aligned across epochs "
                    "without ids"
                )
            row_ids_seen = True
        first_n = data.n_samples if first_n is None else first_n
        notes.extend(data.notes)
        clip = _clip_note(data)
        if clip:
            notes.append(clip)
        rows = table.rows_for(data.ids)
        labels = data.labels
        ledger.check(rows, labels, source=data.source, ids=data.ids, ids_from_rows=data.ids_from_rows)
        if records:  # epochs usually share labels and row order: keep one copy of each
            previous = records[-1]
            if np.array_equal(rows, previous.rows):
                rows = previous.rows
            if labels.dtype == previous.labels.dtype and np.array_equal(labels, previous.labels):
                labels = previous.labels
        if isinstance(data, CheckedEpoch) or (shown is not None and data.epoch not in shown):
            unreduced.append((data.epoch, data.source, rows.shape[0]))
            continue
        records.append(
            EpochRecord(
                summary=data.summary,
                stats=data.stats,
                labels=labels,
                rows=rows,
                source=data.source,
                kind=data.kind,
            )
        )
    if not records and not unreduced:
        raise InputError(f"{path}: no epochs found")
    records.sort(key=lambda r: r.epoch)
    unreduced.sort(key=lambda u: u[0])
    if row_ids_seen and len(records) + len(unreduced) > 1:
        notes.append(
            "no sample id column: row positions are used as ids, so rows must be in "
            "the same order in every epoch"
        )
    ids = table.ids if table.ids is not None else np.zeros(0, dtype=np.int64)
    sizes = [(r.epoch, r.rows.shape[0]) for r in records] + [(e, n) for e, _, n in unreduced]
    missing = _missing_note(sorted(sizes, key=lambda s: s[0]), len(ids))
    if missing:
        notes.append(missing)
    return Run(
        path=str(path),
        records=tuple(records),
        ids=ids,
        n_classes=int(n_classes),
        class_names=class_names,
        notes=tuple(notes),
        unreduced=tuple(source for _, source, _ in unreduced),
    )


def _missing_note(sizes: list[tuple[int, int]], n_ids: int) -> str | None:
    """The note on ids missing from some epochs, from each epoch's (number, rows) in epoch order."""
    partial = [(e, n_ids - n) for e, n in sizes if n < n_ids]
    if not partial:
        return None
    shown = ", ".join(f"epoch {e}: {m}" for e, m in partial[:5])
    more = f" and {len(partial) - 5} more epochs" if len(partial) > 5 else ""
    return (
        f"{n_ids} sample ids in all, but some are missing from some epochs ({shown}{more}); "
        "comparisons between two epochs use the ids present at both"
    )
