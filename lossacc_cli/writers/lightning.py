"""Lightning: a Callback that saves what ``validation_step`` returns, one file per epoch.

>>> from lossacc_cli.writers.lightning import PredictionCallback      # doctest: +SKIP
>>> def validation_step(self, batch, batch_idx):                      # doctest: +SKIP
...     x, y = batch
...     logits = self(x)
...     self.log("val_loss", F.cross_entropy(logits, y))
...     return {"logits": logits, "labels": y}
>>> trainer = L.Trainer(callbacks=[PredictionCallback("preds")])     # doctest: +SKIP

``validation_step`` returns a dict with ``logits`` (or ``probs``), ``labels`` and, optionally,
``ids``. Without ``ids`` the samples' indices in the validation dataset are used, read from the
loader's sampler, which is allowed only when it does not shuffle (a ``SequentialSampler``, or
the ``DistributedSampler(shuffle=False)`` Lightning puts in on several devices); otherwise the
callback asks for ids.

On several devices every rank collects its own batches; at the end of the validation epoch they
are gathered to rank 0 (``torch.distributed.gather_object``), which drops the repeats a
``DistributedSampler`` pads the last batches with (same id, same label) and writes one file. A
failure on rank 0 is broadcast, so every rank raises it instead of waiting.

Only validation inside ``trainer.fit()`` is saved (not the sanity check, not a separate
``trainer.validate()``), numbered by ``trainer.current_epoch`` as in Lightning's checkpoint
names (``number_by="step"``: by ``trainer.global_step``, for several validations per epoch).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import lightning
import numpy as np
import torch
from lightning.pytorch import Callback
from torch.utils.data import DistributedSampler, SequentialSampler

from lossacc_cli.writers.errors import PredictionError, ValidationSetChanged
from lossacc_cli.writers.writer import Batches, PredictionWriter, Rows

_KEYS_HINT = (
    "return a dict from validation_step, e.g. {'logits': logits, 'labels': y} "
    "(and 'ids' when the validation loader shuffles)"
)


class PredictionCallback(Callback):
    """Save each validation epoch's predictions during ``trainer.fit()``.

    Parameters
    ----------
    directory : str or path-like
        Folder for the epoch files (see :class:`~lossacc_cli.writers.PredictionWriter`).
    format : {"parquet", "npz"}
    class_names : sequence of str, optional
    model_name : str, optional
        Stored as provenance; defaults to the LightningModule's class name.
    split : str
        Stored as provenance.
    number_by : {"epoch", "step"}
        File numbers: ``trainer.current_epoch`` (``epoch_003``) or ``trainer.global_step``
        (``step_01200``).
    dataloader_idx : int
        With several validation loaders, the one to save.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        format: Literal["parquet", "npz"] = "parquet",
        class_names: Sequence[str] | None = None,
        model_name: str | None = None,
        split: str = "val",
        number_by: Literal["epoch", "step"] = "epoch",
        dataloader_idx: int = 0,
    ) -> None:
        if number_by not in ("epoch", "step"):
            raise PredictionError(f"number_by must be 'epoch' or 'step', not {number_by!r}")
        self.directory = os.fspath(directory)
        self.format = format
        self.class_names = class_names
        self.model_name = model_name
        self.split = split
        self.number_by = number_by
        self.dataloader_idx = dataloader_idx
        self.writer: PredictionWriter | None = None
        self._batches = Batches(None if class_names is None else len(class_names))
        self._indices: np.ndarray | None = None
        self._offset = 0
        self._error: str | None = None

    # -- collecting --------------------------------------------------------------------------

    def on_validation_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._batches.discard()
        self._indices, self._offset, self._error = None, 0, None

    def on_validation_batch_end(
        self,
        trainer: Any,
        pl_module: Any,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not self._saving(trainer) or dataloader_idx != self.dataloader_idx or self._error:
            return
        try:
            self._collect(trainer, outputs)
        except PredictionError as exc:
            if _world_size() == 1:
                raise
            self._error = str(exc)  # raised on every rank at the epoch's end, not here alone

    def _collect(self, trainer: Any, outputs: Any) -> None:
        if not isinstance(outputs, Mapping):
            raise PredictionError(f"validation_step returned {type(outputs).__name__}; {_KEYS_HINT}")
        if "labels" not in outputs or ("logits" not in outputs and "probs" not in outputs):
            raise PredictionError(f"validation_step returned keys {sorted(outputs)}; {_KEYS_HINT}")
        labels = outputs["labels"]
        ids = outputs.get("ids")
        if ids is None:
            ids = self._sampler_ids(trainer, len(labels))
        self._batches.add(ids, labels, logits=outputs.get("logits"), probs=outputs.get("probs"))

    def _saving(self, trainer: Any) -> bool:
        return trainer.state.fn == "fit" and not trainer.sanity_checking

    def _sampler_ids(self, trainer: Any, n_rows: int) -> np.ndarray:
        """The dataset indices of the next ``n_rows`` validation samples, from the sampler."""
        if self._indices is None:
            self._indices = _loader_indices(trainer.val_dataloaders, self.dataloader_idx)
        ids = self._indices[self._offset : self._offset + n_rows]
        if len(ids) != n_rows:
            raise PredictionError(
                "the validation batches hold more samples than the loader's sampler gives; "
                "return 'ids' from validation_step"
            )
        self._offset += n_rows
        return ids

    # -- writing -----------------------------------------------------------------------------

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if not self._saving(trainer):
            return
        rows, error = self._batches.take(), self._error
        world = _world_size()
        if world > 1:
            # Every rank takes part in both collectives, whatever went wrong where.
            parts: list[Any] | None = [None] * world if trainer.is_global_zero else None
            torch.distributed.gather_object((rows, error), parts, dst=0)
            if trainer.is_global_zero:
                errors = [f"on rank {r}: {e}" for r, (_, e) in enumerate(parts or []) if e]
                error = errors[0] if errors else None
        failure: PredictionError | None = None
        if trainer.is_global_zero and error is None:
            try:
                if world > 1:
                    rows = _merged([part for part, _ in parts or []])
                self._write(trainer, pl_module, rows)
            except PredictionError as exc:
                failure = exc
        if world > 1:
            message = [(type(failure).__name__, str(failure)) if failure else error]
            torch.distributed.broadcast_object_list(message, src=0)
            if failure is None and message[0] is not None:
                failure = _rebuilt(message[0])
        self._error = None
        if failure is not None:
            raise failure

    def _write(self, trainer: Any, pl_module: Any, rows: Rows | None) -> None:
        if rows is None:
            raise PredictionError("no validation predictions were collected in this epoch")
        if self.writer is None:
            self.writer = PredictionWriter(
                self.directory,
                format=self.format,
                class_names=self.class_names,
                split=self.split,
                model_name=self.model_name or type(pl_module).__name__,
                framework=f"lightning {lightning.__version__}, torch {torch.__version__}",
                prefix=self.number_by,
            )
        number = trainer.current_epoch if self.number_by == "epoch" else trainer.global_step
        self.writer.add(rows.ids, rows.labels, **{_score_arg(rows.kind): rows.scores})
        self.writer.end_epoch(number)

    # -- lifetime ----------------------------------------------------------------------------

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        self._close()

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self._batches.discard()
        self._close()

    def _close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def state_dict(self) -> dict[str, Any]:
        return {}  # nothing to resume: the files are the state

    def __getstate__(self) -> dict[str, Any]:
        # ddp_spawn pickles callbacks; an open writer is rebuilt in the process that writes.
        return {**self.__dict__, "writer": None}


def _rebuilt(message: str | tuple[str, str]) -> PredictionError:
    """The error rank 0 raised (or a rank's collection error), to raise on this rank too."""
    if isinstance(message, tuple):
        name, text = message
        return (ValidationSetChanged if name == "ValidationSetChanged" else PredictionError)(text)
    return PredictionError(message)


def _score_arg(kind: str) -> str:
    return "logits" if kind in ("logits", "logit") else "probs"


def _world_size() -> int:
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _loader_indices(loaders: Any, dataloader_idx: int) -> np.ndarray:
    """Dataset indices in the order a non-shuffling loader yields them."""
    loader = loaders
    if isinstance(loaders, (list, tuple)):
        loader = loaders[dataloader_idx]
    elif isinstance(loaders, Mapping):
        loader = list(loaders.values())[dataloader_idx]
    sampler = getattr(loader, "sampler", None)
    batch_sampler = getattr(loader, "batch_sampler", None)
    # A custom batch_sampler decides the order itself; DataLoader then keeps a default sampler.
    own_batches = batch_sampler is None or getattr(batch_sampler, "sampler", None) is sampler
    fixed = isinstance(sampler, SequentialSampler) or (
        type(sampler) is DistributedSampler and not sampler.shuffle
    )
    if not (own_batches and fixed):
        kind = type(batch_sampler if not own_batches else sampler).__name__
        raise PredictionError(
            f"the validation loader's {kind} may not keep the samples in dataset order, so "
            "batch positions cannot stand in for ids; return 'ids' from validation_step "
            "(e.g. wrap the dataset with lossacc_cli.writers.with_ids)"
        )
    return np.fromiter(iter(sampler), dtype=np.int64)


def _merged(parts: list[Rows | None] | None) -> Rows | None:
    """The ranks' rows in rank order, without the repeats a DistributedSampler pads with."""
    found = [p for p in parts or [] if p is not None]
    if not found:
        return None
    ids = np.concatenate([p.ids for p in found])
    labels = np.concatenate([p.labels for p in found])
    scores = np.concatenate([p.scores for p in found])
    rank = np.concatenate([np.full(len(p), r) for r, p in enumerate(found)])
    order = np.argsort(ids, kind="stable")  # stable: the lowest rank first among equal ids
    sorted_ids, sorted_rank = ids[order], rank[order]
    repeat = np.zeros(len(ids), dtype=bool)
    # A repeat from another rank is padding; a repeat within one rank is the writer's to report.
    repeat[order[1:]] = (sorted_ids[1:] == sorted_ids[:-1]) & (sorted_rank[1:] != sorted_rank[:-1])
    if repeat.any():
        first = order[np.searchsorted(sorted_ids, ids[repeat], side="left")]
        relabelled = labels[repeat] != labels[first]
        if relabelled.any():
            shown = ", ".join(map(str, ids[repeat][relabelled][:5].tolist()))
            raise PredictionError(
                f"ranks disagree on the labels of {int(relabelled.sum())} ids (first: {shown})"
            )
    keep = ~repeat
    return Rows(ids[keep], labels[keep], scores[keep], found[0].kind)
