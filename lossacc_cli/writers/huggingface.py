"""Hugging Face ``Trainer``: save the evaluation predictions the Trainer already computed.

>>> from lossacc_cli.writers.huggingface import SavePredictions         # doctest: +SKIP
>>> save = SavePredictions("preds", ids=eval_ds["id"])                  # doctest: +SKIP
>>> trainer = Trainer(model, args, train_dataset=train_ds, eval_dataset=eval_ds,
...                   compute_metrics=save, callbacks=[save])           # doctest: +SKIP

One object, given twice: as ``compute_metrics`` it receives the gathered logits and labels of
every evaluation (and passes them on to your own ``compute_metrics=``, whose metrics it
returns); as a callback it learns the epoch or step, which process writes (process 0 of a
multi-process run: the Trainer has already gathered and de-duplicated the predictions there)
and when training starts and ends. Only evaluations during ``trainer.train()`` are saved: a
final ``trainer.evaluate()`` would evaluate the last or the best checkpoint again under an
epoch already written.

The Trainer evaluates ``eval_dataset`` in order (a ``SequentialSampler``; sharded by batches
and gathered back in order on several processes), so row ``i`` of the predictions is
``eval_dataset[i]``: ``ids`` are the dataset's ids in its own order (a column such as
``eval_ds["id"]``), or the positions 0..N-1 when not given. Length-grouped evaluation
(``train_sampling_strategy="group_by_length"`` / ``group_by_length=True``) reorders the
samples, and is refused.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import transformers
from transformers import TrainerCallback

from lossacc_cli.writers.errors import PredictionError
from lossacc_cli.writers.writer import PredictionWriter


class SavePredictions(TrainerCallback):
    """A ``compute_metrics`` hook and ``TrainerCallback`` that saves every evaluation.

    Parameters
    ----------
    directory : str or path-like
        Folder for the epoch files (see :class:`~lossacc_cli.writers.PredictionWriter`).
    ids : array-like, shape (N,), optional
        The eval dataset's sample ids in dataset order; positions 0..N-1 by default.
    compute_metrics : callable, optional
        Your own ``compute_metrics``; called with the same argument(s), its dict is returned.
    scores : {"logits", "probs"}
        What the model's first output is (``logits`` for ``...ForSequenceClassification``).
    number_by : {"epoch", "step"}, optional
        File numbers: the epoch (``eval_strategy="epoch"``, the default then) or the global step
        (the default for any other evaluation schedule).
    format, class_names, model_name, split
        As for :class:`~lossacc_cli.writers.PredictionWriter`. ``class_names`` default to the
        model config's ``id2label`` unless those are the generic ``LABEL_0``, ...;
        ``model_name`` to the config's ``name_or_path`` or architecture.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        ids: Any = None,
        compute_metrics: Callable[..., dict] | None = None,
        scores: Literal["logits", "probs"] = "logits",
        number_by: Literal["epoch", "step"] | None = None,
        format: Literal["parquet", "npz"] = "parquet",
        class_names: Sequence[str] | None = None,
        model_name: str | None = None,
        split: str = "eval",
    ) -> None:
        if scores not in ("logits", "probs"):
            raise PredictionError(f"scores must be 'logits' or 'probs', not {scores!r}")
        if number_by not in (None, "epoch", "step"):
            raise PredictionError(f"number_by must be 'epoch' or 'step', not {number_by!r}")
        self.directory = os.fspath(directory)
        self.ids = None if ids is None else np.asarray(ids)
        self.compute_metrics = compute_metrics
        self.scores = scores
        self.number_by = number_by
        self.format = format
        self.class_names = class_names
        self.model_name = model_name
        self.split = split
        self.writer: PredictionWriter | None = None
        self._args: Any = None
        self._state: Any = None
        self._offset = 0  # rows seen so far in this evaluation (batch_eval_metrics)

    # -- callback events ---------------------------------------------------------------------

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        self._args, self._state, self._offset = args, state, 0
        if _groups_by_length(args):
            raise PredictionError(
                "group_by_length also reorders the evaluation samples, so prediction rows "
                "cannot be matched to eval_dataset rows; turn it off to save predictions"
            )
        if state.is_world_process_zero:
            self.writer = PredictionWriter(
                self.directory,
                format=self.format,
                class_names=self.class_names or _class_names(model),
                split=self.split,
                model_name=self.model_name or _model_name(model),
                framework=f"transformers {transformers.__version__}",
                prefix=self._number_by(args),
            )

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        self._state = None

    # -- compute_metrics ---------------------------------------------------------------------

    def __call__(self, eval_pred: Any, compute_result: bool | None = None) -> dict:
        """Save ``eval_pred`` (the whole evaluation, or one batch with ``batch_eval_metrics``),
        then return your ``compute_metrics``' result (``{}`` without one)."""
        if self._state is not None:  # inside trainer.train()
            self._save(eval_pred, last=compute_result is None or bool(compute_result))
        if self.compute_metrics is None:
            return {}
        if compute_result is None:
            return self.compute_metrics(eval_pred)
        return self.compute_metrics(eval_pred, compute_result=compute_result)

    def _save(self, eval_pred: Any, *, last: bool) -> None:
        predictions, labels = eval_pred.predictions, eval_pred.label_ids
        if isinstance(predictions, (tuple, list)) and not isinstance(predictions, np.ndarray):
            predictions = predictions[0]  # further model outputs (hidden states, ...) follow
        if isinstance(labels, (tuple, list)) and not isinstance(labels, np.ndarray):
            labels = labels[0]
        if labels is None:
            raise PredictionError("the evaluation has no labels: give eval_dataset a 'labels' column")
        ids = self._ids(len(labels))
        if self.writer is not None:  # process 0
            self.writer.add(ids, labels, **{self.scores: predictions})
        if last:
            self._offset = 0
            if self.writer is not None:
                self.writer.end_epoch(self._number())

    def _ids(self, n_rows: int) -> Any:
        start, self._offset = self._offset, self._offset + n_rows
        if self.ids is None:
            return np.arange(start, start + n_rows)
        if start + n_rows > len(self.ids):
            raise PredictionError(
                f"the evaluation has more rows ({start + n_rows}) than the ids given ({len(self.ids)}): "
                "give one id per eval_dataset row"
            )
        if start == 0 and n_rows != len(self.ids) and not _batched(self._args):
            raise PredictionError(
                f"the evaluation has {n_rows} rows but {len(self.ids)} ids were given: "
                "give one id per eval_dataset row"
            )
        return self.ids[start : start + n_rows]

    def _number_by(self, args: Any) -> str:
        if self.number_by is not None:
            return self.number_by
        strategy = getattr(args, "eval_strategy", None) or getattr(args, "evaluation_strategy", None)
        return "epoch" if str(getattr(strategy, "value", strategy)) == "epoch" else "step"

    def _number(self) -> int:
        if self._number_by(self._args) == "step":
            return int(self._state.global_step)
        return int(round(self._state.epoch))


def _batched(args: Any) -> bool:
    return bool(getattr(args, "batch_eval_metrics", False))


def _groups_by_length(args: Any) -> bool:
    return bool(getattr(args, "group_by_length", False)) or (
        getattr(args, "train_sampling_strategy", None) == "group_by_length"
    )


def _class_names(model: Any) -> list[str] | None:
    id2label = getattr(getattr(model, "config", None), "id2label", None) or {}
    names = [str(id2label[k]) for k in sorted(id2label)]
    if len(names) < 2 or names == [f"LABEL_{i}" for i in range(len(names))]:
        return None
    return names


def _model_name(model: Any) -> str | None:
    config = getattr(model, "config", None)
    if config is None:
        return type(model).__name__ if model is not None else None
    name = getattr(config, "name_or_path", None) or getattr(config, "_name_or_path", None)
    architectures = getattr(config, "architectures", None)
    return name or (architectures[0] if architectures else type(model).__name__)
