"""Shared validation: the raw arrays a reader found -> a checked :class:`EpochData`.

Readers only locate and convert columns; every rule about values lives here, so Parquet and
NPZ files are judged alike. Each failure is one line naming the file, the field, the first
offending sample ids and their count. Checks run on whole arrays; the happy path costs a few
reductions, and the rows at fault are located only once a check has failed.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace

import numpy as np

from lossacc_cli.errors import InputError, input_error
from lossacc_cli.readers.model import (
    CLASS_NAMES_KEY,
    CompactStats,
    EpochData,
    ReadOptions,
    ScoreKind,
)
from lossacc_cli.readers.score_check import (  # noqa: F401 - PROB_TOL, RENORMALIZE_HINT: shared
    PROB_TOL,
    RENORMALIZE_HINT,
    ScoreCheck,
    check_class_count,
)
from lossacc_cli.text import shown

LOSS_TOL = 1e-9
"""A stored loss may dip this far below 0 (rounding of ``-log(p)`` for p close to 1)."""

MAX_INFERRED_CLASSES = 1 << 20
"""Compact files without class names get K = max(label, pred) + 1; a larger K is damage, not data."""



def display_path(path: str | bytes | os.PathLike[str]) -> str:
    """A printable one-line form of a path: undecodable bytes in file names become ``\\xff``
    escapes, and so do control characters (a newline is ``\\x0a``); see :func:`lossacc_cli.text.shown`."""
    raw = os.fsencode(path)
    return shown(raw.decode("utf-8", errors="backslashreplace"))


PICKLE_REASON = "it holds pickled data (object arrays), which lossacc never loads"


def file_error(label: str, what: str, exc: BaseException | str) -> InputError:
    """One line for a file that cannot be opened or decoded at all (no field involved).

    A library's advice to load pickles ("... using the allow_pickle= keyword") is never passed on.
    """
    text = str(exc).strip()
    reason = text.splitlines()[0] if text else type(exc).__name__
    if "allow_pickle" in text or "pickle.load" in text:
        reason = PICKLE_REASON
    return InputError(f"{label}: cannot read {what}: {reason}")


def sorted_distinct(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` of a 1-D integer array, without the import of ``numpy.ma`` that
    np.unique makes on its first call (15-20 ms of start-up).

    >>> sorted_distinct(np.array([3, 1, 3, 2])).tolist()
    [1, 2, 3]
    """
    ordered = np.sort(values)
    keep = np.ones(ordered.shape[0], dtype=bool)
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def epoch_numbers(values: np.ndarray, label: str, name: str = "epoch") -> np.ndarray:
    """The sorted distinct epoch numbers in ``values``, as int64.

    Epochs are integers within the int64 range: an unsigned 2**64 - 1 is refused, not wrapped
    round to -1.
    """
    if values.dtype.kind not in "iu":
        raise input_error(label, name, f"must be integers, found {values.dtype}", hint="cast to int64")
    found = sorted_distinct(values)
    if found.dtype.kind == "u" and found.size and found[-1] > np.iinfo(np.int64).max:
        raise input_error(
            label, name, f"epoch {int(found[-1])} is beyond the int64 range (at most 2**63 - 1)"
        )
    return found.astype(np.int64)


@dataclass
class RawEpoch:
    """What a reader found in one epoch's file(s), converted to numpy but not yet checked.

    ``*_field`` attributes hold the column/array names actually used, so that messages name
    what the user wrote. ``nulls`` maps a field name to a boolean mask of null rows (Parquet).
    ``stats`` holds the compact columns ``loss``, ``pred``, ``confidence``, ``true_prob``.
    """

    source: str
    epoch: int
    labels: np.ndarray
    label_field: str
    kind: ScoreKind
    scores: np.ndarray | None = None
    score_field: str = ""
    ids: np.ndarray | None = None
    id_field: str = "sample_id"
    stats: dict[str, np.ndarray] = field(default_factory=dict)
    class_names: bytes | str | None = None
    nulls: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def build_epoch(raw: RawEpoch, options: ReadOptions) -> EpochData:
    """Check a :class:`RawEpoch` against the input contract and return the validated epoch.

    :func:`build_header` checks everything but the values; the (N, K) scores then go through a
    :class:`ScoreCheck` as one block, the binary and compact values through their own checks.

    Raises
    ------
    InputError
        On the first rule broken; the message names the file, the field, the first
        offending sample ids and the count.
    """
    header = build_header(raw)
    if raw.kind in ("logits", "probs", "logit"):
        check = ScoreCheck(header, raw.score_field, options)
        return check.finish(check.add(raw.scores))
    stats = None
    if raw.kind == "prob":
        _check_unit_interval(raw.source, raw.score_field, raw.scores, header.ids)
    else:
        stats = _checked_stats(raw, header.ids, header.n_classes)
    check_class_count(header)
    return replace(header, scores=raw.scores, stats=stats)


def build_header(
    raw: RawEpoch, shape: tuple[int, ...] | None = None, dtype: np.dtype | None = None
) -> EpochData:
    """Check everything of a :class:`RawEpoch` but its values: lengths, ids, nulls, class names,
    K and the labels against it.

    The scores count by their ``shape`` and ``dtype`` only: ``raw.scores`` when it holds them,
    else the arguments (a reader that streams the scores knows them before reading one), so that
    an epoch's header is judged alike whether its scores are read whole or in blocks. The result
    has ``scores`` and ``stats`` None; the values go through :class:`ScoreCheck` (or the checks of
    the binary and compact kinds), then :func:`check_class_count`.
    """
    if raw.scores is not None:
        shape, dtype = raw.scores.shape, raw.scores.dtype
    n_samples = _check_lengths(raw, shape)
    ids, ids_from_rows = _checked_ids(raw, n_samples)
    _check_nulls(raw, ids)
    class_names = _parse_class_names(raw)
    n_classes = _n_classes(raw, ids, class_names, shape, dtype)
    labels = _checked_labels(raw, ids, n_classes)
    return EpochData(
        epoch=int(raw.epoch),
        source=raw.source,
        ids=ids,
        labels=labels,
        kind=raw.kind,
        scores=None,
        n_classes=n_classes,
        stats=None,
        ids_from_rows=ids_from_rows,
        class_names=class_names,
        notes=tuple(raw.notes),
    )


def _check_lengths(raw: RawEpoch, score_shape: tuple[int, ...] | None) -> int:
    """Every per-sample array must have the labels' length, which must be > 0."""
    n_samples = int(raw.labels.shape[0]) if raw.labels.ndim else -1
    shapes = {raw.label_field: raw.labels.shape}
    if score_shape is not None:
        shapes[raw.score_field] = tuple(score_shape)
    if raw.ids is not None:
        shapes[raw.id_field] = raw.ids.shape
    shapes.update({k: v.shape for k, v in raw.stats.items()})
    for name, shape in shapes.items():
        if not shape:
            raise input_error(raw.source, name, "expected one value per sample, found a scalar")
    lengths = {name: int(shape[0]) for name, shape in shapes.items()}
    if len(set(lengths.values())) > 1:
        odd = next(name for name, n in lengths.items() if n != n_samples)
        shown = ", ".join(f"{name} {n}" for name, n in lengths.items())
        raise input_error(raw.source, odd, f"mismatched lengths ({shown})")
    if n_samples == 0:
        raise input_error(raw.source, raw.label_field, "epoch has no samples")
    return n_samples


def _checked_ids(raw: RawEpoch, n_samples: int) -> tuple[np.ndarray, bool]:
    """int64 or str-object ids, unique; row positions when the file has none."""
    if raw.ids is None:
        return np.arange(n_samples, dtype=np.int64), True
    name, ids = raw.id_field, raw.ids
    mask = raw.nulls.get(name)
    if mask is not None and mask.any():
        rows = np.flatnonzero(mask)
        raise input_error(
            raw.source, name, "null ids (ids shown are row numbers)", ids=rows[:5].tolist(),
            count=rows.size,
        )
    if ids.ndim != 1:
        raise input_error(raw.source, name, f"expected shape (N,), found {ids.shape}")
    if ids.dtype.kind in "iu":
        if ids.dtype.kind == "u" and ids.size and ids.max() > np.iinfo(np.int64).max:
            raise input_error(raw.source, name, "unsigned ids above the int64 range")
        ids = ids.astype(np.int64, copy=False)
    elif ids.dtype.kind == "U":
        _check_text(raw, name, ids)
        ids = ids.astype(object)
    elif ids.dtype.kind == "O":
        pass  # Arrow strings arrive as an object array of str
    else:
        raise input_error(
            raw.source,
            name,
            f"ids must be integers or strings, found {ids.dtype}",
            hint="cast the id column to int64 or string",
        )
    repeated = _repeated_rows(ids)
    if repeated is not None:
        raise input_error(
            raw.source,
            name,
            "ids are not unique (rows repeating an earlier id)",
            ids=list(dict.fromkeys(ids[repeated[:50]].tolist()))[:5],
            count=int(repeated.size),
        )
    return ids, False


def _check_text(raw: RawEpoch, name: str, ids: np.ndarray) -> None:
    """A fixed-width str array may hold lone surrogates (undecodable bytes smuggled into str),
    which no text encoding can write: refuse them (one look at the code points)."""
    points = np.ascontiguousarray(ids).view(np.uint32).reshape(ids.shape[0], -1)
    bad = ((points >= 0xD800) & (points <= 0xDFFF)).any(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise input_error(
            raw.source, name, "ids that are not valid Unicode text (lone surrogates)",
            ids=ids[rows[:5]].tolist(), count=int(rows.size), hint="save them as valid str",
        )


def _repeated_rows(ids: np.ndarray) -> np.ndarray | None:
    """Rows whose id already appeared on an earlier row (ascending), or None when unique."""
    if ids.dtype.kind == "i":
        if (ids[1:] > ids[:-1]).all():  # ascending, as most writers leave them: no sort needed
            return None
        sorted_ids = np.sort(ids)
        if not (sorted_ids[1:] == sorted_ids[:-1]).any():
            return None
        return _repeated_by_sorting(ids)
    if ids.dtype.kind != "U":
        return _repeated_by_sorting(ids)
    # text ids: sort a 64-bit hash of each (FNV-1a over the code points, one column of the fixed
    # width at a time), then compare the texts only among rows whose hashes collide
    points = np.ascontiguousarray(ids).view(np.uint32).reshape(ids.shape[0], -1)
    hashed = np.full(ids.shape[0], 14695981039346656037, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column in points.T:
            hashed = (hashed ^ column) * np.uint64(1099511628211)
    order = np.argsort(hashed, kind="stable")
    same = hashed[order][1:] == hashed[order][:-1]
    if not same.any():
        return None
    suspects = np.zeros(ids.shape[0], dtype=bool)
    suspects[order[1:][same]] = suspects[order[:-1][same]] = True
    rows = np.flatnonzero(suspects)
    repeated = _repeated_by_sorting(ids[rows])
    return None if repeated is None else rows[repeated]


def _repeated_by_sorting(ids: np.ndarray) -> np.ndarray | None:
    """:func:`_repeated_rows` by a stable sort: within a run of equal ids the rows keep their
    order, so every row of a run but its first repeats an earlier one."""
    order = np.argsort(ids, kind="stable")
    repeat = ids[order][1:] == ids[order][:-1]
    if not repeat.any():
        return None
    return np.sort(order[1:][repeat])


def _rows_ids(ids: np.ndarray, bad: np.ndarray) -> tuple[list[object], int]:
    """First offending ids and the count, from a boolean row mask."""
    rows = np.flatnonzero(bad)
    return ids[rows[:5]].tolist(), int(rows.size)


def _check_nulls(raw: RawEpoch, ids: np.ndarray) -> None:
    for name, mask in raw.nulls.items():
        if name != raw.id_field and mask.any():
            shown, count = _rows_ids(ids, mask)
            raise input_error(raw.source, name, "null values", ids=shown, count=count)


def _n_classes(raw: RawEpoch, ids: np.ndarray, class_names: tuple[str, ...] | None,
               shape: tuple[int, ...] | None, dtype: np.dtype | None) -> int:
    """K: the scores' width (2 for binary kinds); for compact stats the class names' count,
    else ``max(labels.max(), pred.max()) + 1`` and at least 2."""
    if raw.kind != "stats":
        return _score_classes(raw, shape, dtype)
    if class_names is not None:
        return len(class_names)
    labels = _checked_labels(raw, ids, 0)
    pred = _as_int(raw, "pred", ids)
    for name, values in ((raw.label_field, labels), ("pred", pred)):
        if values.max() >= MAX_INFERRED_CLASSES:  # per-class arrays would need K entries
            shown, count = _rows_ids(ids, values >= MAX_INFERRED_CLASSES)
            raise input_error(
                raw.source,
                name,
                f"class index {int(values.max())} above {MAX_INFERRED_CLASSES - 1}, the most a "
                "compact file without class names can use",
                ids=shown,
                count=count,
                hint=f"list the class names in schema metadata '{CLASS_NAMES_KEY}'",
            )
    return max(2, int(labels.max()) + 1, int(pred.max()) + 1)


def _score_classes(raw: RawEpoch, shape: tuple[int, ...] | None, dtype: np.dtype | None) -> int:
    """K from the score array's shape, after checking its dtype and rank."""
    name = raw.score_field
    if shape is None or dtype is None:
        raise input_error(raw.source, raw.kind, "no score values")
    shape = tuple(shape)
    if dtype.kind != "f":
        raise input_error(
            raw.source,
            name,
            f"scores must be floating point, found {dtype}",
            hint="cast to float32",
        )
    if raw.kind in ("logit", "prob"):
        if len(shape) != 1:
            raise input_error(raw.source, name, f"expected shape (N,), found {shape}")
        return 2
    if len(shape) != 2:
        raise input_error(raw.source, name, f"expected shape (N, K), found {shape}")
    n_classes = int(shape[1])
    if n_classes < 2:
        raise input_error(
            raw.source,
            name,
            f"{n_classes} score column(s); a classifier needs at least 2 classes",
            hint="for a binary task store one 'logit' or 'prob' value per sample",
        )
    return n_classes


def _checked_labels(raw: RawEpoch, ids: np.ndarray, n_classes: int) -> np.ndarray:
    """int64 labels in [0, n_classes); n_classes 0 checks only the dtype and sign."""
    labels, name = raw.labels, raw.label_field
    if labels.ndim != 1:
        raise input_error(raw.source, name, f"expected shape (N,), found {labels.shape}")
    kind = labels.dtype.kind
    if kind == "b":
        labels = labels.astype(np.int64)
    elif kind not in "iu":
        found = "strings" if kind in "OUS" else str(labels.dtype)
        hint = (
            "cast to int64 (e.g. labels.astype('int64'))"
            if kind == "f"
            else "map classes to integer indices; class names go in schema metadata "
            f"'{CLASS_NAMES_KEY}'"
        )
        raise input_error(raw.source, name, f"labels must be integers, found {found}", hint=hint)
    if kind == "i":
        negative = labels < 0
        if negative.any():
            shown, count = _rows_ids(ids, negative)
            raise input_error(raw.source, name, "negative labels", ids=shown, count=count)
    if n_classes and labels.max() >= n_classes:
        bad = labels >= n_classes
        shown, count = _rows_ids(ids, bad)
        allowed = "{0, 1}" if raw.kind in ("logit", "prob") else f"[0, {n_classes})"
        raise input_error(
            raw.source,
            name,
            f"labels outside {allowed} (max {int(labels.max())}, {n_classes} classes)",
            ids=shown,
            count=count,
        )
    return labels.astype(np.int64, copy=False)


def _check_unit_interval(source: str, name: str, values: np.ndarray, ids: np.ndarray) -> None:
    """Values in [0, 1] within PROB_TOL (NaN fails)."""
    low, high = values.min(), values.max()
    if low >= -PROB_TOL and high <= 1 + PROB_TOL:
        return
    bad = ~((values >= -PROB_TOL) & (values <= 1 + PROB_TOL))
    shown, count = _rows_ids(ids, bad)
    raise input_error(source, name, "values outside [0, 1] or NaN", ids=shown, count=count)


def _as_int(raw: RawEpoch, name: str, ids: np.ndarray) -> np.ndarray:
    values = raw.stats[name]
    if values.dtype.kind == "b":
        return values.astype(np.int64)
    if values.dtype.kind not in "iu":
        raise input_error(
            raw.source, name, f"must be integers, found {values.dtype}", hint="cast to int64"
        )
    negative = values < 0
    if negative.any():
        shown, count = _rows_ids(ids, negative)
        raise input_error(raw.source, name, "negative class indices", ids=shown, count=count)
    return values.astype(np.int64, copy=False)


def _as_float(raw: RawEpoch, name: str) -> np.ndarray:
    values = raw.stats[name]
    if values.dtype.kind != "f":
        raise input_error(
            raw.source, name, f"must be floating point, found {values.dtype}",
            hint="cast to float32",
        )
    return values


def _checked_stats(raw: RawEpoch, ids: np.ndarray, n_classes: int) -> CompactStats:
    """The compact columns: loss >= 0 and finite, pred in [0, K), probabilities in [0, 1]."""
    loss = _as_float(raw, "loss")
    if not (np.isfinite(loss.min()) and np.isfinite(loss.max()) and loss.min() >= -LOSS_TOL):
        bad = ~(np.isfinite(loss) & (loss >= -LOSS_TOL))
        shown, count = _rows_ids(ids, bad)
        raise input_error(
            raw.source, "loss", "losses must be finite and >= 0", ids=shown, count=count
        )
    pred = _as_int(raw, "pred", ids)
    if pred.max() >= n_classes:
        shown, count = _rows_ids(ids, pred >= n_classes)
        raise input_error(
            raw.source, "pred", f"predicted classes outside [0, {n_classes})", ids=shown,
            count=count,
        )
    confidence = _as_float(raw, "confidence")
    _check_unit_interval(raw.source, "confidence", confidence, ids)
    true_prob = None
    if "true_prob" in raw.stats:
        true_prob = _as_float(raw, "true_prob")
        _check_unit_interval(raw.source, "true_prob", true_prob, ids)
    return CompactStats(loss=loss, pred=pred, confidence=confidence, true_prob=true_prob)


def _parse_class_names(raw: RawEpoch) -> tuple[str, ...] | None:
    """Class names from the JSON metadata value: a list of strings (length checked later)."""
    if raw.class_names is None:
        return None
    try:
        names = json.loads(raw.class_names)
    except (ValueError, UnicodeDecodeError) as exc:
        raise input_error(raw.source, CLASS_NAMES_KEY, f"not valid JSON ({exc})") from None
    except RecursionError:  # "[[[[..." thousands deep
        raise input_error(
            raw.source, CLASS_NAMES_KEY, "JSON nested too deeply; expected a JSON list of strings"
        ) from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise input_error(raw.source, CLASS_NAMES_KEY, "expected a JSON list of strings")
    return tuple(names)


# --- choosing which columns/arrays hold what (shared by the Parquet and NPZ readers) -------

COMPACT_FIELDS = ("loss", "pred", "confidence")
OPTIONAL_COMPACT = ("true_prob",)


@dataclass(frozen=True)
class Layout:
    """Which columns (Parquet) or arrays (NPZ) of one epoch hold which field.

    ``scores`` is one name (list column, 2-D array or binary column) or, for wide Parquet
    columns, the class columns in class order; ``score_field`` is the name used in messages.
    """

    label: str
    id: str | None
    kind: ScoreKind
    scores: tuple[str, ...]
    score_field: str
    stats: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column this layout reads."""
        ids = (self.id,) if self.id else ()
        return (self.label, *ids, *self.scores, *self.stats)


def choose_layout(
    names: list[str] | tuple[str, ...],
    *,
    source: str,
    options: ReadOptions,
    label_aliases: tuple[str, ...],
    id_aliases: tuple[str, ...],
    wide: bool,
) -> Layout:
    """Pick the label, id and score fields among ``names`` (first alias wins, case-sensitive).

    Scores: ``logits`` before ``probs`` unless ``options.scores`` says otherwise (a note says
    which was used when both exist); within a form, a list/2-D field before wide
    ``logit_k`` columns before a binary ``logit`` column. The compact ``loss``/``pred``/
    ``confidence`` fields are used only when no scores exist.
    """
    present = set(names)
    label = _pick(present, options.label_col, label_aliases, source, "label", required=True)
    id_name = _pick(present, options.id_col, id_aliases, source, "sample_id", required=False)
    forms = {
        form: found
        for form in ("logits", "probs")
        if (found := _score_form(names, form, source, wide)) is not None
    }
    notes: tuple[str, ...] = ()
    if options.scores is not None:
        if options.scores not in forms:
            have = ", ".join(sorted(forms)) or "none"
            raise input_error(source, options.scores, f"not found (scores present: {have})")
        kind, cols, shown = forms[options.scores]
    elif forms:
        kind, cols, shown = forms["logits"] if "logits" in forms else forms["probs"]
        if len(forms) == 2:
            notes = (
                f"{source}: both logits and probabilities found; using logits "
                "(pass --scores probs to use the probabilities)",
            )
    else:
        missing = [name for name in COMPACT_FIELDS if name not in present]
        if missing:
            raise input_error(
                source,
                "logits",
                "no scores found: need logits or probs, or the compact fields "
                f"loss, pred, confidence (missing: {', '.join(missing)})",
            )
        stats = COMPACT_FIELDS + tuple(n for n in OPTIONAL_COMPACT if n in present)
        return Layout(label, id_name, "stats", (), "stats", stats)
    return Layout(label, id_name, kind, cols, shown, (), notes)


def _pick(
    present: set[str],
    forced: str | None,
    aliases: tuple[str, ...],
    source: str,
    field_name: str,
    *,
    required: bool,
) -> str | None:
    if forced is not None:
        if forced not in present:
            raise input_error(source, forced, f"{field_name} column not found")
        return forced
    found = next((name for name in aliases if name in present), None)
    if found is None and required:
        raise input_error(
            source, field_name, f"not found (looked for {', '.join(aliases)})",
            hint="pass --label-col to name it",
        )
    return found


def _score_form(
    names: list[str] | tuple[str, ...], form: str, source: str, wide: bool
) -> tuple[ScoreKind, tuple[str, ...], str] | None:
    """``(kind, columns, name for messages)`` of the logits or probs form, if present."""
    binary = form[:-1]  # "logit" / "prob"
    if form in names:
        return form, (form,), form  # type: ignore[return-value]
    if wide:
        cols = _wide_columns(names, binary, source)
        if cols:
            return form, cols, f"{cols[0]}..{cols[-1]}"  # type: ignore[return-value]
    if binary in names:
        return binary, (binary,), binary  # type: ignore[return-value]
    return None


def _wide_columns(names: list[str] | tuple[str, ...], prefix: str, source: str) -> tuple[str, ...]:
    """``prefix_0 .. prefix_{K-1}`` in class order (numeric, not lexical); gaps are an error."""
    pattern = re.compile(rf"{prefix}_(0|[1-9][0-9]*)")
    index = {int(m.group(1)): name for name in names if (m := pattern.fullmatch(name))}
    if not index:
        return ()
    n_classes = max(index) + 1
    if len(index) < n_classes:
        # The names claim K = max index + 1; only the first few gaps are listed (a name such as
        # logit_99999999 must not make a list of 10**8 missing names).
        missing = []
        for k in range(n_classes):
            if k not in index:
                missing.append(f"{prefix}_{k}")
                if len(missing) > 5:
                    break
        n_missing = n_classes - len(index)
        raise input_error(
            source,
            f"{prefix}_k",
            f"wide columns {prefix}_0..{prefix}_{n_classes - 1} expected; missing "
            f"{', '.join(missing[:5])}" + (" ..." if n_missing > 5 else "")
            + f" ({n_missing:,} of {n_classes:,})",
        )
    return tuple(index[k] for k in range(n_classes))
