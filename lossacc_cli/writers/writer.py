"""PredictionWriter: batches of one epoch in, one checked epoch file out."""

from __future__ import annotations

import datetime
import json
import operator
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from lossacc_cli import __version__
from lossacc_cli.writers.convert import framework_of, ids_array, labels_array, scores_array
from lossacc_cli.writers.errors import PredictionError, ValidationSetChanged
from lossacc_cli.writers.files import WRITERS, write_atomically

_SHOWN = 5
_SAME_SET_HINT = (
    "save predictions on one fixed evaluation set every epoch "
    "(no drop_last, no random subset, no re-split)"
)


@dataclass(frozen=True, eq=False)
class Rows:
    """The rows of one epoch: ids (N,), labels (N,), scores (N, K) or (N,), in one order."""

    ids: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    kind: str

    def __len__(self) -> int:
        return int(self.ids.shape[0])


class Batches:
    """Rows added since the last :meth:`take`, converted to NumPy and checked batch by batch.

    The score kind (``logits``/``probs``, or ``logit``/``prob`` for binary tasks), the number of
    classes and the id type are fixed by the first batch, for every later batch and epoch.
    """

    def __init__(self, n_classes: int | None = None) -> None:
        self.kind: str | None = None
        self.n_classes = n_classes
        self._expected_classes = n_classes
        self.id_kind: str | None = None
        self.framework: str | None = None
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._rows = 0

    def __len__(self) -> int:
        return self._rows

    def add(self, ids: Any, labels: Any, logits: Any = None, probs: Any = None) -> None:
        if (logits is None) == (probs is None):
            raise PredictionError("give exactly one of logits= or probs=")
        field = "logits" if logits is not None else "probs"
        raw = logits if logits is not None else probs
        scores = scores_array(raw, field)
        ids_, labels_ = ids_array(ids), labels_array(labels)
        lengths = {"ids": len(ids_), "labels": len(labels_), field: len(scores)}
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{name} {n}" for name, n in lengths.items())
            raise PredictionError(f"one batch with mismatched lengths ({shown})")
        if len(ids_) == 0:
            return
        self._check_like_before(field, scores, ids_)
        if self.framework is None:
            self.framework = framework_of(raw)
        _check_label_range(labels_, ids_, self.n_classes or 2)
        self._parts.append((ids_, labels_, scores))
        self._rows += len(ids_)

    def _check_like_before(self, field: str, scores: np.ndarray, ids: np.ndarray) -> None:
        kind = field if scores.ndim == 2 else field[:-1]
        n_classes = scores.shape[1] if scores.ndim == 2 else 2
        if scores.ndim == 2 and n_classes < 2:
            raise PredictionError(f"{field}: {n_classes} columns; a classifier needs at least 2")
        if self.kind is None:
            if self._expected_classes is not None and n_classes != self._expected_classes:
                raise PredictionError(
                    f"{field}: {n_classes} classes, but {self._expected_classes} class names were given"
                )
            self.kind, self.n_classes, self.id_kind = kind, n_classes, ids.dtype.kind
            return
        if kind != self.kind:
            raise PredictionError(f"scores are {kind} here but were {self.kind} before; keep one kind")
        if n_classes != self.n_classes:
            raise PredictionError(f"{field}: {n_classes} classes here but {self.n_classes} before")
        if ids.dtype.kind != self.id_kind:
            raise PredictionError(
                f"ids are {_id_type(ids.dtype.kind)} here but were {_id_type(self.id_kind)} before"
            )

    def take(self) -> Rows | None:
        """Everything added since the last call, in the order added (None when nothing was)."""
        if not self._parts:
            return None
        ids, labels, scores = (
            np.concatenate(arrays) if len(arrays) > 1 else arrays[0] for arrays in zip(*self._parts)
        )
        self._parts, self._rows = [], 0
        return Rows(ids, labels, scores, str(self.kind))

    def discard(self) -> int:
        """Drop the rows added since the last :meth:`take`; returns how many there were."""
        dropped, self._parts, self._rows = self._rows, [], 0
        return dropped


def _id_type(kind: str | None) -> str:
    return "strings" if kind == "U" else "integers"


def _check_label_range(labels: np.ndarray, ids: np.ndarray, n_classes: int) -> None:
    bad = labels >= n_classes
    if bad.any():
        shown = ", ".join(str(i) for i in ids[bad][:_SHOWN].tolist())
        raise PredictionError(
            f"labels: {int(bad.sum())} values >= {n_classes}, the number of score columns "
            f"(first ids: {shown})"
        )


@dataclass(frozen=True, eq=False)
class _Reference:
    """The evaluation set as first saved: ids sorted ascending, labels aligned with them."""

    epoch: int
    source: str
    ids: np.ndarray
    labels: np.ndarray
    n_classes: int


class PredictionWriter:
    """Save a model's predictions on a fixed evaluation set, one file per epoch.

    Parameters
    ----------
    directory : str or path-like
        Folder for the epoch files (created if missing). One folder per run: files already
        there are kept, and new epochs are checked against them (resuming a run).
    format : {"parquet", "npz"}
        ``epoch_007.parquet`` (columns ``sample_id``, ``label``, ``logits``/``probs``) or
        ``epoch_007.npz`` (arrays ``sample_ids``, ``labels``, ``logits``/``probs``).
    class_names : sequence of str, optional
        One name per class, in class-index order. Stored in the file's metadata.
    split, model_name, framework : str, optional
        Provenance stored in the file's metadata. ``framework`` defaults to the library the
        scores came from (``"torch 2.13.0"``), when not NumPy.
    prefix : str
        File names are ``{prefix}_{number:03d}.{format}``.

    Notes
    -----
    Per batch, :meth:`add` takes ids, labels and either logits or probabilities as NumPy
    arrays, lists, or tensors of any framework on any device (torch tensors are detached and
    copied to the host; bfloat16 is widened to float32 exactly; float16/32/64 are kept).
    :meth:`end_epoch` sorts the rows by id, checks that the ids and their labels are those of
    the epochs already written (raising :class:`ValidationSetChanged` otherwise) and writes the
    file atomically: a temporary file in the same folder, renamed when complete, so a reader
    never sees half an epoch.

    Ids are required: rows are matched across epochs by id, so a shuffled evaluation loader is
    fine as long as each sample keeps its id. :func:`~lossacc_cli.writers.with_ids` gives a
    map-style dataset's indices as ids.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> folder = tempfile.mkdtemp()
    >>> with PredictionWriter(folder, class_names=["cat", "dog"]) as writer:
    ...     for epoch in (1, 2):
    ...         writer.add([10, 11], [0, 1], logits=np.array([[2.0, 0.0], [0.5, 1.0]]))
    ...         path = writer.end_epoch(epoch)
    >>> os.path.basename(path)
    'epoch_002.parquet'
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        format: Literal["parquet", "npz"] = "parquet",
        class_names: Sequence[str] | None = None,
        split: str | None = None,
        model_name: str | None = None,
        framework: str | None = None,
        prefix: str = "epoch",
    ) -> None:
        if format not in WRITERS:
            raise PredictionError(f"format must be 'parquet' or 'npz', not {format!r}")
        if not prefix or any(c.isdigit() or c in "/\\" for c in prefix) or prefix.startswith((".", "_")):
            # Digits would be read as the epoch number; '.'/'_' names are skipped by readers.
            raise PredictionError(f"prefix {prefix!r}: use letters, without digits or a leading '.'/'_'")
        self.directory = os.fspath(directory)
        self.format = format
        self.class_names = _checked_class_names(class_names)
        self.split = split
        self.model_name = model_name
        self.framework = framework
        self.prefix = prefix
        self._batches = Batches(None if self.class_names is None else len(self.class_names))
        self._reference: _Reference | None = None
        self._looked_for_files = False
        self._found: dict[int, str] = {}  # epochs already in the folder -> their paths
        self._written: dict[int, str] = {}
        self._closed = False
        os.makedirs(self.directory, exist_ok=True)

    # -- per batch ---------------------------------------------------------------------------

    def add(self, ids: Any, labels: Any, logits: Any = None, probs: Any = None) -> None:
        """Add one batch of predictions to the current epoch.

        Parameters
        ----------
        ids : array-like, shape (n,)
            A stable identifier per sample: integers or strings, unique within the epoch.
        labels : array-like of int, shape (n,)
            True class indices in ``[0, K)`` (binary: 0/1).
        logits, probs : array-like, shape (n, K), or (n,) / (n, 1) for a binary task
            Exactly one of the two: raw scores, or probabilities (rows summing to 1; binary:
            probability of class 1).
        """
        self._check_open()
        self._batches.add(ids, labels, logits=logits, probs=probs)

    @property
    def pending(self) -> int:
        """Rows added since the last :meth:`end_epoch`."""
        return len(self._batches)

    def discard(self) -> int:
        """Drop the rows added since the last :meth:`end_epoch` (an interrupted evaluation)."""
        return self._batches.discard()

    # -- per epoch ---------------------------------------------------------------------------

    def end_epoch(self, epoch: int) -> str:
        """Check the rows added since the last call and write them as epoch ``epoch``.

        Returns
        -------
        str
            The path written, e.g. ``preds/epoch_007.parquet``.

        Raises
        ------
        ValidationSetChanged
            The ids, or the label of some id, differ from the epochs already written.
        PredictionError
            No rows were added, an id repeats, or ``epoch`` was already written by this writer.
        """
        self._check_open()
        number = _epoch_number(epoch)
        if number in self._written:
            raise PredictionError(
                f"epoch {number} was already written ({self._written[number]}); "
                "number each evaluation differently (evaluating several times per epoch? "
                "number them by step)"
            )
        rows = self._batches.take()
        if rows is None:
            raise PredictionError(f"epoch {number}: no predictions were added since the last end_epoch()")
        rows = _sorted_unique(rows, number)
        self._check_same_set(rows, number)
        path = os.path.join(self.directory, f"{self.prefix}_{number:03d}.{self.format}")
        other = self._found.get(number)
        if other is not None and os.path.abspath(other) != os.path.abspath(path):
            raise PredictionError(
                f"epoch {number} is already in the folder as {other}; two files of one epoch "
                "cannot be read: write each run to a new folder"
            )
        encode = WRITERS[self.format](
            rows.ids, rows.labels, rows.kind, rows.scores,
            class_names=self.class_names, provenance=self._provenance(number),
        )
        write_atomically(path, encode)
        self._written[number] = path
        if self._reference is None:
            self._reference = _Reference(number, path, rows.ids, rows.labels, self._n_classes())
        return path

    @property
    def written(self) -> dict[int, str]:
        """Epoch number -> path of every epoch this writer wrote."""
        return dict(self._written)

    def _n_classes(self) -> int:
        return self._batches.n_classes or 2

    def _provenance(self, epoch: int) -> dict[str, object]:
        return {
            "writer": f"lossacc {__version__}",
            "framework": self.framework or self._batches.framework or "numpy",
            "model": self.model_name,
            "split": self.split,
            "epoch": epoch,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }

    def _check_same_set(self, rows: Rows, epoch: int) -> None:
        if self._reference is None and not self._looked_for_files:
            self._looked_for_files = True
            self._reference, self._found = _reference_from_folder(self.directory)
        reference = self._reference
        if reference is None:
            return
        where = f"epoch {epoch}"
        since = f"epoch {reference.epoch} ({os.path.basename(reference.source)})"
        if self._n_classes() != reference.n_classes:
            raise ValidationSetChanged(
                f"{where}: {self._n_classes()} classes, but {reference.n_classes} at {since}"
            )
        if rows.ids.dtype.kind != reference.ids.dtype.kind:
            raise ValidationSetChanged(
                f"{where}: ids are {_id_type(rows.ids.dtype.kind)}, but "
                f"{_id_type(reference.ids.dtype.kind)} at {since}"
            )
        same_ids = rows.ids.shape == reference.ids.shape and bool((rows.ids == reference.ids).all())
        if not same_ids:
            raise ValidationSetChanged(_set_change(rows.ids, reference.ids, where, since))
        changed = rows.labels != reference.labels
        if changed.any():
            raise ValidationSetChanged(_label_change(rows, reference, changed, where, since))

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Finish: rows added after the last :meth:`end_epoch` are dropped, with a warning."""
        if self._closed:
            return
        self._closed = True
        dropped = self._batches.discard()
        if dropped:
            warnings.warn(
                f"{dropped} rows added after the last end_epoch() were not written",
                RuntimeWarning,
                stacklevel=2,
            )

    def _check_open(self) -> None:
        if self._closed:
            raise PredictionError("this PredictionWriter is closed")

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if exc_type is not None:
            self._batches.discard()  # an interrupted epoch is not an epoch; the error says why
        self.close()

    def __repr__(self) -> str:
        return (
            f"PredictionWriter({self.directory!r}, format={self.format!r}, "
            f"epochs written={sorted(self._written)})"
        )


def _checked_class_names(names: Sequence[str] | None) -> tuple[str, ...] | None:
    if names is None:
        return None
    if isinstance(names, str):
        raise PredictionError("class_names: give a list of names, not one string")
    values = tuple(names)
    if len(values) < 2 or not all(isinstance(n, str) for n in values):
        raise PredictionError("class_names: expected a list of at least 2 strings, one per class")
    return values


def _epoch_number(epoch: object) -> int:
    if isinstance(epoch, bool):
        raise PredictionError(f"epoch must be an integer, not {epoch!r}")
    try:
        number = operator.index(epoch)  # type: ignore[arg-type]
    except TypeError:
        if isinstance(epoch, float) and epoch.is_integer():
            number = int(epoch)
        else:
            raise PredictionError(f"epoch must be an integer, not {epoch!r}") from None
    if number < 0:
        raise PredictionError(f"epoch must be >= 0, not {number}")
    return number


def _sorted_unique(rows: Rows, epoch: int) -> Rows:
    """The rows ordered by id (every epoch file then lists samples alike); ids must not repeat."""
    ids = rows.ids
    if len(ids) > 1 and not (ids[1:] > ids[:-1]).all():
        order = np.argsort(ids, kind="stable")
        ids = ids[order]
        repeated = ids[1:] == ids[:-1]
        if repeated.any():
            shown = list(dict.fromkeys(ids[1:][repeated][: 10 * _SHOWN].tolist()))[:_SHOWN]
            raise PredictionError(
                f"epoch {epoch}: {int(repeated.sum())} rows repeat an id already added in this "
                f"epoch (first ids: {', '.join(map(str, shown))}); ids must identify samples "
                "(the same batch added twice? a sampler that pads with repeats?)"
            )
        rows = Rows(ids, rows.labels[order], rows.scores[order], rows.kind)
    return rows


def _shown(values: np.ndarray) -> str:
    text = ", ".join(str(v) for v in values[:_SHOWN].tolist())
    return text + (", ..." if values.size > _SHOWN else "")


def _set_change(ids: np.ndarray, reference: np.ndarray, where: str, since: str) -> str:
    missing = reference[~np.isin(reference, ids, assume_unique=True)]
    new = ids[~np.isin(ids, reference, assume_unique=True)]
    parts = []
    if missing.size:
        parts.append(f"{missing.size} ids of {since.split(' (')[0]} are missing (first: {_shown(missing)})")
    if new.size:
        parts.append(f"{new.size} ids are new (first: {_shown(new)})")
    return (
        f"{where}: the evaluation set changed since {since}: {len(ids)} samples instead of "
        f"{len(reference)}; " + " and ".join(parts) + f"; {_SAME_SET_HINT}"
    )


def _label_change(rows: Rows, reference: _Reference, changed: np.ndarray, where: str, since: str) -> str:
    at = np.flatnonzero(changed)
    shown = ", ".join(
        f"{rows.ids[i]}: {reference.labels[i]} -> {rows.labels[i]}" for i in at[:_SHOWN].tolist()
    )
    return (
        f"{where}: labels changed since {since} for {at.size} of {len(rows)} samples "
        f"(id: before -> now; {shown}{', ...' if at.size > _SHOWN else ''}); an id must name the "
        "same sample in every epoch: are the ids batch positions of a shuffled loader?"
    )


def _reference_from_folder(directory: str) -> tuple[_Reference | None, dict[int, str]]:
    """The newest epoch already in ``directory`` (a resumed run), read with lossacc's reader,
    and the path of every epoch found there."""
    if not _holds_epoch_files(directory):
        return None, {}
    from lossacc_cli.errors import InputError
    from lossacc_cli.readers import discover, read_epoch

    try:
        sources, _ = discover(directory)
        epoch = read_epoch(sources[-1])
    except InputError as exc:
        raise PredictionError(
            f"{directory} already holds prediction files that cannot be checked against ({exc}); "
            "write each run to a new folder"
        ) from None
    if epoch.ids_from_rows:
        raise PredictionError(
            f"{epoch.source} has no sample ids, so new epochs cannot be matched to it; "
            "write each run to a new folder"
        )
    ids = epoch.ids.astype(str) if epoch.ids.dtype.kind == "O" else epoch.ids
    order = np.argsort(ids, kind="stable")
    reference = _Reference(epoch.epoch, epoch.source, ids[order], epoch.labels[order], epoch.n_classes)
    return reference, {source.epoch: source.path for source in sources}


def _holds_epoch_files(directory: str) -> bool:
    from lossacc_cli.readers.discover import data_format

    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.startswith((".", "_")):
                continue
            if data_format(entry.name) or (entry.is_dir() and entry.name.startswith("epoch=")):
                return True
    return False


def metadata_of(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The class names and provenance a :class:`PredictionWriter` stored in ``path``.

    Returns
    -------
    dict
        ``{"class_names": [...] or None, "provenance": {...}}``.
    """
    from lossacc_cli.writers import files

    path = os.fspath(path)
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as archive:
            names = archive[files.NPZ_CLASS_NAMES].tolist() if files.NPZ_CLASS_NAMES in archive.files else None
            provenance = json.loads(str(archive[files.NPZ_PROVENANCE])) if files.NPZ_PROVENANCE in archive.files else {}
        return {"class_names": names, "provenance": provenance}
    import pyarrow.parquet as pq

    metadata = pq.read_schema(path).metadata or {}
    names = metadata.get(files.CLASS_NAMES_KEY.encode())
    provenance = metadata.get(files.PROVENANCE_KEY.encode())
    return {
        "class_names": json.loads(names) if names else None,
        "provenance": json.loads(provenance) if provenance else {},
    }
