"""Keras 3 (any backend): a Callback that predicts on given validation data after each epoch.

>>> from lossacc_cli.writers.keras import PredictionCallback                 # doctest: +SKIP
>>> model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=20,   # doctest: +SKIP
...           callbacks=[PredictionCallback("preds", (x_val, y_val), scores="logits")])

Keras does not hand its own validation predictions to callbacks, so this one runs
``model.predict`` on the data it is given (one more forward pass over it per epoch), in order:
the row positions of ``validation_data`` are the ids unless ``ids=`` names the samples.
Epochs are numbered as Keras shows them and as ``ModelCheckpoint`` names its files (from 1).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

import keras
import numpy as np

from lossacc_cli.writers.convert import to_numpy
from lossacc_cli.writers.errors import PredictionError
from lossacc_cli.writers.writer import PredictionWriter


class PredictionCallback(keras.callbacks.Callback):
    """Save the model's predictions on ``validation_data`` at the end of every epoch.

    Parameters
    ----------
    directory : str or path-like
        Folder for the epoch files (see :class:`~lossacc_cli.writers.PredictionWriter`).
    validation_data : tuple (x, y)
        What ``model.predict`` takes as ``x`` (an array, or a list/dict of arrays for several
        inputs) and the labels ``y``: class indices (N,) or (N, 1), or one-hot (N, K).
    scores : {"logits", "probs"}
        What the model outputs: ``"logits"`` when its last layer has no activation (and the
        loss has ``from_logits=True``), ``"probs"`` after a softmax or sigmoid.
    ids : array-like, shape (N,), optional
        Sample ids; by default the row positions 0..N-1 of ``validation_data``.
    batch_size : int, optional
        For ``model.predict`` (Keras' default when None).
    format, class_names, model_name, split
        As for :class:`~lossacc_cli.writers.PredictionWriter`; ``model_name`` defaults to
        ``model.name``.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        validation_data: tuple[Any, Any],
        *,
        scores: Literal["logits", "probs"],
        ids: Any = None,
        batch_size: int | None = None,
        format: Literal["parquet", "npz"] = "parquet",
        class_names: Sequence[str] | None = None,
        model_name: str | None = None,
        split: str = "val",
    ) -> None:
        super().__init__()
        if scores not in ("logits", "probs"):
            raise PredictionError(f"scores must be 'logits' or 'probs', not {scores!r}")
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise PredictionError("validation_data must be a tuple (x, y) of arrays")
        self.directory = os.fspath(directory)
        self.x, y = validation_data
        self.labels = _class_indices(to_numpy(y, "labels"))
        self.ids = np.arange(len(self.labels)) if ids is None else ids
        self.scores = scores
        self.batch_size = batch_size
        self.format = format
        self.class_names = class_names
        self.model_name = model_name
        self.split = split
        self.writer: PredictionWriter | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.writer = PredictionWriter(
            self.directory,
            format=self.format,
            class_names=self.class_names,
            split=self.split,
            model_name=self.model_name or self.model.name,
            framework=f"keras {keras.__version__} ({keras.backend.backend()} backend)",
        )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.writer is None:
            self.on_train_begin()
        outputs = self.model.predict(self.x, batch_size=self.batch_size, verbose=0)
        if isinstance(outputs, (list, tuple, dict)):
            raise PredictionError(
                "the model has several outputs; save one with a model that returns only the "
                "classifier's output"
            )
        self.writer.add(self.ids, self.labels, **{self.scores: outputs})
        self.writer.end_epoch(epoch + 1)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _class_indices(y: np.ndarray) -> np.ndarray:
    """Class indices from (N,), (N, 1) or one-hot (N, K) labels; soft labels are refused."""
    if y.ndim == 2 and y.shape[1] > 1:
        is_one_hot = np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()
        if not is_one_hot:
            raise PredictionError(
                "labels: (N, K) targets that are not one-hot (soft labels?); pass class indices"
            )
        return y.argmax(axis=1)
    return y
