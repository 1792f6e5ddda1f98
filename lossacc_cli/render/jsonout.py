"""Results -> JSON-ready dicts (stable schema; see README "JSON output")."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

SCHEMA_VERSION = 2


def clean(value):
    """Recursively turn dataclasses/NumPy scalars into plain JSON values; NaN and inf become None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: clean(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return [clean(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def document(command: str, body: dict) -> dict:
    """Wrap a command's body with the envelope every JSON output shares."""
    return {"schema_version": SCHEMA_VERSION, "command": command, "units": {"loss": "nats"}, **clean(body)}


def dumps(doc: dict) -> str:
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"
