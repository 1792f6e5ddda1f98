"""Ids for datasets that have none: a map-style dataset's indices."""

from __future__ import annotations

from typing import Any


class WithIds:
    """A map-style dataset whose items are ``(index, item)``: each sample's index is its id.

    Works wherever a map-style dataset does (``torch.utils.data.DataLoader`` takes any object
    with ``__len__`` and ``__getitem__``); the default collate function then yields batches
    ``ids, item_batch``. An index names the same sample in every epoch as long as the wrapped
    dataset itself is not rebuilt in another order, so the loader may shuffle.
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[int, Any]:
        return index, self.dataset[index]

    def __repr__(self) -> str:
        return f"WithIds({self.dataset!r})"


def with_ids(dataset: Any) -> WithIds:
    """Wrap ``dataset`` so that each item comes with its index: ``(index, item)``.

    >>> data = with_ids(["a", "b"])
    >>> len(data), data[1]
    (2, (1, 'b'))
    """
    return WithIds(dataset)
