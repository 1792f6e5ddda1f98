"""Batches from any framework -> NumPy arrays, without importing the framework.

A torch tensor is recognised by its type's module, detached and copied to the host; everything
else goes through ``np.asarray`` (JAX and TensorFlow arrays, Keras outputs, lists, NumPy).
bfloat16 has no NumPy dtype: it is widened to float32, which is exact (a bfloat16 is the upper
half of a float32). float16, float32 and float64 are kept as they are.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from lossacc_cli.writers.errors import PredictionError

_KEPT_FLOATS = (np.float16, np.float32, np.float64)


def framework_of(value: Any) -> str | None:
    """``"torch 2.13.0"``-style name of the library ``value`` comes from; None for NumPy/lists."""
    root = type(value).__module__.split(".")[0]
    if root in ("numpy", "builtins"):
        return None
    module = sys.modules.get(root)
    version = getattr(module, "__version__", None)
    return f"{root} {version}" if version else root


def to_numpy(value: Any, field: str) -> np.ndarray:
    """``value`` as a host NumPy array; bfloat16 and other non-NumPy floats widened to float32."""
    if _is_torch_tensor(value):
        return _torch_to_numpy(value)
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise PredictionError(f"{field}: cannot convert {type(value).__name__} to an array: {exc}") from None
    if array.dtype.kind == "V" and array.dtype.names is None:
        # ml_dtypes' bfloat16 / float8 (JAX, Keras): extension float dtypes, all exactly
        # representable in float32.
        try:
            array = array.astype(np.float32)
        except (TypeError, ValueError):
            raise PredictionError(f"{field}: unsupported dtype {array.dtype}") from None
    return array


def _is_torch_tensor(value: Any) -> bool:
    return type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach")


def _torch_to_numpy(tensor: Any) -> np.ndarray:
    torch = sys.modules["torch"]
    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:
        # Move the 16 bits as they are (half the bytes of a float32 copy) and widen on the host.
        bits = tensor.contiguous().view(torch.int16).cpu().numpy().view(np.uint16)
        return (bits.astype(np.uint32) << 16).view(np.float32)
    if tensor.dtype.is_floating_point and tensor.dtype not in (
        torch.float16, torch.float32, torch.float64
    ):
        tensor = tensor.float()  # float8 variants: exact in float32
    return tensor.cpu().resolve_conj().resolve_neg().numpy()


def ids_array(value: Any) -> np.ndarray:
    """1-D int64 or unicode ids."""
    ids = to_numpy(value, "ids")
    if ids.ndim == 2 and ids.shape[1] == 1:
        ids = ids[:, 0]
    if ids.ndim != 1:
        raise PredictionError(f"ids: expected shape (N,), found {ids.shape}")
    if ids.dtype.kind == "O":
        ids = _object_ids(ids)
    if ids.dtype.kind == "u":
        if ids.size and ids.max() > np.iinfo(np.int64).max:
            raise PredictionError("ids: unsigned ids above the int64 range")
        return ids.astype(np.int64)
    if ids.dtype.kind == "i":
        return ids.astype(np.int64, copy=False)
    if ids.dtype.kind == "U":
        return ids
    if ids.dtype.kind == "S":
        try:
            return np.char.decode(ids, "utf-8")
        except UnicodeDecodeError:
            raise PredictionError("ids: byte strings that are not UTF-8") from None
    raise PredictionError(
        f"ids must be integers or strings, found {ids.dtype}; "
        "give each sample a stable identifier (its index in the validation dataset, a file name)"
    )


def _object_ids(ids: np.ndarray) -> np.ndarray:
    values = ids.tolist()
    if all(isinstance(v, str) for v in values):
        return np.array(values, dtype=str) if values else np.empty(0, dtype="<U1")
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        return np.array(values, dtype=np.int64)
    kinds = sorted({type(v).__name__ for v in values})
    raise PredictionError(f"ids must be all integers or all strings, found {', '.join(kinds)}")


def labels_array(value: Any) -> np.ndarray:
    """1-D int64 class indices; bool and integral floats (Keras' 0./1. targets) are accepted."""
    labels = to_numpy(value, "labels")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise PredictionError(
            f"labels: expected class indices of shape (N,), found {labels.shape}"
            + ("; for one-hot targets pass labels.argmax(1)" if labels.ndim == 2 else "")
        )
    kind = labels.dtype.kind
    if kind in "biu":
        if kind == "u" and labels.size and labels.max() > np.iinfo(np.int64).max:
            raise PredictionError("labels: values above the int64 range")
        labels = labels.astype(np.int64, copy=False)
    elif kind == "f":
        whole = np.isfinite(labels) & (labels == np.round(labels))
        if not whole.all():
            raise PredictionError(
                f"labels must be class indices, found {int((~whole).sum())} non-integer values "
                f"(first: {labels[~whole][0]!r})"
            )
        labels = labels.astype(np.int64)
    else:
        raise PredictionError(f"labels must be integer class indices, found {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise PredictionError(
            f"labels: {int((labels < 0).sum())} negative values (first: {int(labels.min())}); "
            "drop ignored samples (label -100) before adding them"
        )
    return labels


def scores_array(value: Any, field: str) -> np.ndarray:
    """(N, K) float scores with K >= 2, or (N,) for a binary task ((N, 1) is read as (N,))."""
    scores = to_numpy(value, field)
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.ndim not in (1, 2):
        raise PredictionError(
            f"{field}: expected shape (N, K), or (N,) for a binary task, found {scores.shape}"
        )
    if scores.dtype.kind in "iub":
        raise PredictionError(f"{field} must be floating point, found {scores.dtype}")
    if scores.dtype.type not in _KEPT_FLOATS:
        raise PredictionError(f"{field}: unsupported dtype {scores.dtype}")
    return scores
