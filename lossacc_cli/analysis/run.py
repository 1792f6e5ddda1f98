"""Load a whole run: every epoch read, validated and reduced to per-sample vectors and a summary.

Only one epoch's score matrix is alive at a time; what crosses epochs is per-sample vectors
(N floats each) and small summaries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lossacc_cli.errors import InputError, UsageError, format_ids
from lossacc_cli.metrics.per_sample import SampleStats, sample_stats
from lossacc_cli.metrics.summary import EpochSummary, summarize_epoch
from lossacc_cli.readers import discover, read_epoch
from lossacc_cli.readers.model import EpochData, EpochSource, ReadOptions


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
    """All epochs of one run, sorted by epoch, with a shared sample-id table."""

    path: str
    records: tuple[EpochRecord, ...]
    ids: np.ndarray
    n_classes: int
    class_names: tuple[str, ...] | None
    notes: tuple[str, ...]

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
        text = str(spec).strip().lower()
        if text == "last":
            return self.records[-1].epoch
        if text == "best":
            return min(self.records, key=lambda r: r.summary.loss).epoch
        try:
            epoch = int(text)
        except ValueError:
            raise UsageError(f"{option} must be a number, 'best' or 'last', not {spec!r}") from None
        return self.record(epoch, option).epoch

    def n_common(self, epoch_a: int, epoch_b: int) -> int:
        """How many sample ids are present at both epochs."""
        present = np.zeros(len(self.ids), dtype=np.int8)
        present[self.record(epoch_a).rows] += 1
        present[self.record(epoch_b).rows] += 1
        return int((present == 2).sum())


def _epoch_list(epochs: list[int]) -> str:
    if len(epochs) <= 8:
        return ", ".join(map(str, epochs))
    return ", ".join(map(str, epochs[:3])) + ", ..., " + ", ".join(map(str, epochs[-3:]))


class _IdTable:
    """Grows the union of sample ids; maps each epoch's ids to rows with a hash lookup."""

    def __init__(self) -> None:
        self.index = pd.Index([])

    def rows_for(self, ids: np.ndarray) -> np.ndarray:
        if len(self.index) == 0:
            self.index = pd.Index(ids)
            return np.arange(len(ids))
        rows = self.index.get_indexer(ids)
        new = rows < 0
        if new.any():
            start = len(self.index)
            self.index = self.index.append(pd.Index(ids[new]))
            rows[new] = np.arange(start, start + int(new.sum()))
        return rows


def reduce_epoch(data: EpochData) -> tuple[EpochSummary, SampleStats]:
    """Per-sample vectors and the summary of one epoch (the unit of work per epoch)."""
    stats = sample_stats(data)
    return summarize_epoch(data, stats), stats


def _clip_note(data: EpochData, stats: SampleStats) -> str | None:
    if stats.n_clipped == 0:
        return None
    ids = data.ids[stats.clipped]
    return (
        f"{data.source}: p[label] = 0 for {format_ids(ids, stats.n_clipped)}; "
        "clipped at float64 eps (loss 36.04 nats)"
    )


def load_run(
    path: str,
    options: ReadOptions = ReadOptions(),
    *,
    on_epoch: Callable[[int, int], None] | None = None,
) -> Run:
    """Discover, read and reduce every epoch under ``path``.

    ``on_epoch(done, total)`` is called after each epoch (for a progress bar); nothing here prints.
    """
    sources, notes = discover(path, options)
    return load_sources(path, sources, options, notes=notes, on_epoch=on_epoch)


def load_sources(
    path: str,
    sources: list[EpochSource],
    options: ReadOptions,
    *,
    notes: tuple[str, ...] = (),
    on_epoch: Callable[[int, int], None] | None = None,
) -> Run:
    """Read the given epochs one at a time and build the run."""
    total = len(sources)

    def epochs():
        for done, source in enumerate(sources, start=1):
            yield read_epoch(source, options)
            if on_epoch is not None:
                on_epoch(done, total)

    return build_run(path, epochs(), notes=notes)


def build_run(path: str, epochs: Iterable[EpochData], *, notes: tuple[str, ...] = ()) -> Run:
    """Reduce each epoch as it arrives (its score matrix is dropped before the next one is read)."""
    notes = list(notes)
    table = _IdTable()
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
        summary, stats = reduce_epoch(data)
        clip = _clip_note(data, stats)
        if clip:
            notes.append(clip)
        records.append(
            EpochRecord(
                summary=summary,
                stats=stats,
                labels=data.labels,
                rows=table.rows_for(data.ids),
                source=data.source,
                kind=data.kind,
            )
        )
        del data  # release the score matrix before the next epoch is read
    if not records:
        raise InputError(f"{path}: no epochs found")
    records.sort(key=lambda r: r.epoch)
    if row_ids_seen and len(records) > 1:
        notes.append(
            "no sample id column: row positions are used as ids, so rows must be in "
            "the same order in every epoch"
        )
    ids = table.index.to_numpy()
    missing = _missing_note(records, len(ids))
    if missing:
        notes.append(missing)
    return Run(
        path=str(path),
        records=tuple(records),
        ids=ids,
        n_classes=int(n_classes),
        class_names=class_names,
        notes=tuple(notes),
    )


def _missing_note(records: list[EpochRecord], n_ids: int) -> str | None:
    partial = [(r.epoch, n_ids - r.rows.shape[0]) for r in records if r.rows.shape[0] < n_ids]
    if not partial:
        return None
    shown = ", ".join(f"epoch {e}: {m}" for e, m in partial[:5])
    more = f" and {len(partial) - 5} more epochs" if len(partial) > 5 else ""
    return (
        f"{n_ids} sample ids in all, but some are missing from some epochs ({shown}{more}); "
        "comparisons between two epochs use the ids present at both"
    )
