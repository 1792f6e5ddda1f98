"""One cache entry: an epoch's reduction in one ``.npz`` file, never pickled.

The per-sample vectors, labels and ids are arrays of the archive; everything else (the summary,
the scalars, the notes) is one small JSON document stored as its ``meta`` member, so that the entry
is one file, written with one atomic rename, and the zip checksums cover all of it. String ids are
stored as a fixed-width unicode array and become Python strings again on loading.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math

import numpy as np

from lossacc_cli import __version__
from lossacc_cli.cache.key import FORMAT
from lossacc_cli.metrics.per_sample import SampleStats
from lossacc_cli.metrics.summary import EpochSummary

_ARRAYS = ("loss", "pred", "correct", "confidence", "true_prob", "margin", "clipped",
           "recal_loss", "recal_confidence")
_SOURCE = "\x00source\x00"  # where the epoch's label stood in its notes (labels never hold NUL)


class Unusable(Exception):
    """The entry cannot be stored or was not written by this lossacc: rebuild it."""


def encode(fields: dict) -> bytes:
    """The bytes of an entry for a ReducedEpoch's fields (``dataclasses.asdict``-like, shallow)."""
    stats: SampleStats = fields["stats"]
    summary: EpochSummary = fields["summary"]
    ids = fields["ids"]
    if ids.dtype == object:
        if not all(type(i) is str and not i.endswith("\x00") for i in ids.tolist()):
            raise Unusable("ids that a unicode array would not keep")  # numpy drops trailing NULs
        ids_kind, ids = "str", ids.astype(str) if ids.size else np.zeros(0, "<U1")
    else:
        ids_kind = "array"
    arrays = {"ids": ids, "labels": fields["labels"]}
    for name in _ARRAYS:
        value = getattr(stats, name)
        if value is not None:
            arrays[f"stats.{name}"] = value
    source = fields["source"]
    meta = {
        "format": FORMAT, "lossacc": __version__, "ids_kind": ids_kind,
        "epoch": fields["epoch"], "kind": fields["kind"], "n_classes": fields["n_classes"],
        "class_names": list(fields["class_names"]) if fields["class_names"] is not None else None,
        "ids_from_rows": bool(fields["ids_from_rows"]), "streamed": bool(fields["streamed"]),
        "notes": [n.replace(source, _SOURCE) for n in fields["notes"]],
        "stats": {"recal_crossfit_loss": float(stats.recal_crossfit_loss),
                  "recal_as_given": bool(stats.recal_as_given)},
        "summary": {f.name: _plain(getattr(summary, f.name)) for f in dataclasses.fields(summary)},
    }
    if any(a.dtype == object for a in arrays.values()):
        raise Unusable("object arrays")
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **arrays)
    return buffer.getvalue()


def _plain(value: object) -> object:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    return float(value)  # json keeps every float exactly (shortest repr), NaN and inf included


def decode(data: io.BufferedIOBase, source: str) -> dict:
    """The ReducedEpoch fields of an entry, its notes naming ``source``; raises on any doubt."""
    with np.load(data, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(arrays.pop("meta").tobytes().decode())
    if meta.get("format") != FORMAT or meta.get("lossacc") != __version__:
        raise Unusable("written by another lossacc")
    ids = arrays.pop("ids")
    _check_shapes(ids, arrays)
    if meta["ids_kind"] == "str":
        ids = ids.astype(object)
    stats = SampleStats(**{n: arrays.get(f"stats.{n}") for n in _ARRAYS},
                        recal_crossfit_loss=float(meta["stats"]["recal_crossfit_loss"]),
                        recal_as_given=bool(meta["stats"]["recal_as_given"]))
    summary = EpochSummary(**{f.name: _typed(f.type, meta["summary"][f.name])
                              for f in dataclasses.fields(EpochSummary)})
    names = meta["class_names"]
    return {
        "epoch": int(meta["epoch"]), "source": source, "kind": meta["kind"],
        "n_classes": int(meta["n_classes"]), "class_names": tuple(names) if names is not None else None,
        "ids": ids, "ids_from_rows": meta["ids_from_rows"], "labels": arrays.pop("labels"),
        "notes": tuple(n.replace(_SOURCE, source) for n in meta["notes"]),
        "summary": summary, "stats": stats, "streamed": meta["streamed"],
    }


_KINDS = {"labels": "iu", "stats.loss": "f", "stats.pred": "iu", "stats.correct": "b", "stats.confidence": "f",
          "stats.true_prob": "f", "stats.margin": "f", "stats.clipped": "b", "stats.recal_loss": "f",
          "stats.recal_confidence": "f"}


def _check_shapes(ids: np.ndarray, arrays: dict[str, np.ndarray]) -> None:
    """Every vector has one value per sample, of the kind it holds; else the entry is foreign."""
    n = ids.shape[0] if ids.ndim == 1 else -1
    for name, kinds in _KINDS.items():
        value = arrays.get(name)
        if value is None:
            if name in ("labels", "stats.loss", "stats.pred", "stats.correct", "stats.confidence",
                        "stats.true_prob"):
                raise Unusable(f"no {name}")
            continue
        if value.shape != (n,) or value.dtype.kind not in kinds:
            raise Unusable(f"{name}: shape {value.shape}, dtype {value.dtype}")
    if set(arrays) - set(_KINDS):
        raise Unusable("unknown members")


def _typed(annotation: object, value: object) -> object:
    kind = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return int(value)
    value = float(value)
    return value if not math.isnan(value) else float("nan")
