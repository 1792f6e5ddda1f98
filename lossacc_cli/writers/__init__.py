"""Save per-epoch predictions from a training loop, in the layout lossacc reads.

>>> from lossacc_cli.writers import PredictionWriter, with_ids    # doctest: +SKIP
>>> with PredictionWriter("preds", class_names=classes) as writer: # doctest: +SKIP
...     for epoch in range(epochs):
...         ...  # train
...         for ids, (x, y) in val_loader:                          # over with_ids(val_set)
...             writer.add(ids, y, logits=model(x))
...         writer.end_epoch(epoch)

Adapters for the frameworks live in their own modules, imported only when used:
``lossacc_cli.writers.lightning.PredictionCallback``,
``lossacc_cli.writers.keras.PredictionCallback`` and
``lossacc_cli.writers.huggingface.SavePredictions``. Importing this package imports no framework.
"""

from __future__ import annotations

from lossacc_cli.writers.datasets import WithIds, with_ids
from lossacc_cli.writers.errors import PredictionError, ValidationSetChanged
from lossacc_cli.writers.writer import PredictionWriter, metadata_of

__all__ = [
    "PredictionError",
    "PredictionWriter",
    "ValidationSetChanged",
    "WithIds",
    "metadata_of",
    "with_ids",
]
