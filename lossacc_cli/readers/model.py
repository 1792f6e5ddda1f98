"""The validated form of one epoch: what every reader returns and every metric consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

CLASS_NAMES_KEY = "lossacc.class_names"
"""Parquet schema metadata key holding a JSON list of class names."""

ScoreKind = Literal["logits", "probs", "logit", "prob", "stats"]
"""How an epoch's scores are stored.

``logits``/``probs``: (N, K) float array. ``logit``/``prob``: (N,) float array for binary
tasks (score of class 1). ``stats``: no scores, only the compact per-sample columns.
"""


@dataclass(frozen=True)
class ReadOptions:
    """User choices that change how files are read (all optional)."""

    label_col: str | None = None
    id_col: str | None = None
    scores: Literal["logits", "probs"] | None = None
    split: str | None = None
    renormalize: bool = False
    strict: bool = False
    """Refuse, rather than skip with a warning, a newest epoch file still being written."""


@dataclass(frozen=True, eq=False)
class CompactStats:
    """The compact per-sample form, for data too large to keep full scores.

    ``loss`` (nats, >= 0), ``pred`` (int64 in [0, K)), ``confidence`` (top-label probability
    in [0, 1]) and, when the file has it, ``true_prob`` (p[label] in [0, 1]).
    """

    loss: np.ndarray
    pred: np.ndarray
    confidence: np.ndarray
    true_prob: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class EpochData:
    """One epoch of predictions on the evaluation set, validated.

    Attributes
    ----------
    epoch : int
        Epoch number (from an ``epoch`` column/array or the file name).
    source : str
        Where it came from, for messages (a file path, or ``path[epoch=N]`` for long format).
    ids : ndarray, shape (N,)
        Sample ids, int64 or object (str); unique. Row indices when the file has none.
    labels : ndarray of int64, shape (N,)
        True class, in [0, n_classes).
    kind : ScoreKind
        Layout of ``scores``.
    scores : ndarray or None
        (N, K) float16/32/64 for ``logits``/``probs``; (N,) for ``logit``/``prob``; None for
        ``stats``. Kept in the input dtype (no copy); metrics upcast block-wise.
    n_classes : int
        K (2 for binary kinds).
    stats : CompactStats or None
        Only for ``kind == "stats"``.
    ids_from_rows : bool
        True when the file had no id column and row positions stand in for ids.
    class_names : tuple of str or None
        From Parquet schema metadata ``lossacc.class_names`` when present.
    notes : tuple of str
        Warnings for the user (renormalised rows, ...); readers never print.
    """

    epoch: int
    source: str
    ids: np.ndarray
    labels: np.ndarray
    kind: ScoreKind
    scores: np.ndarray | None
    n_classes: int
    stats: CompactStats | None = None
    ids_from_rows: bool = False
    class_names: tuple[str, ...] | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def n_samples(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class EpochSource:
    """One epoch found by discovery, not yet read.

    ``fmt`` is ``parquet`` or ``npz`` (one epoch per file, or per hive folder of parts) or
    ``long`` (a Parquet file/folder holding many epochs in an ``epoch`` column; ``epoch``
    selects the rows).
    """

    epoch: int
    path: str
    fmt: Literal["parquet", "npz", "long"]
