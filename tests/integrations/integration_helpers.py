"""Shared helpers of the framework integration tests (``make test-integrations``).

Each test module imports its framework through :func:`require`: a missing framework skips the
module with a reason, except under ``make test-integrations``, which names the frameworks it
installed in ``LOSSACC_REQUIRED_FRAMEWORKS``; a missing one is then an error, not a skip.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from types import ModuleType

import pytest

REQUIRED = set(os.environ.get("LOSSACC_REQUIRED_FRAMEWORKS", "").split())


def require(name: str) -> ModuleType:
    """Import ``name``, or skip the calling module (fail when the target requires it)."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        if name.split(".")[0] in REQUIRED:
            pytest.fail(f"{name} must be installed for this target but does not import: {exc}",
                        pytrace=False)
        pytest.skip(f"{name} is not installed (make test-integrations installs it)",
                    allow_module_level=True)


def lossacc_command() -> list[str]:
    found = shutil.which("lossacc", path=os.path.dirname(sys.executable))
    return [found] if found else [sys.executable, "-m", "lossacc_cli"]


def analyze(path: os.PathLike[str] | str) -> dict:
    """``lossacc analyze PATH --format json`` in a subprocess; its JSON document."""
    done = subprocess.run(
        [*lossacc_command(), "analyze", os.fspath(path), "--format", "json"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def check_report(report: dict, *, epochs: list[int], n_samples: int, n_classes: int,
                 ids: set | None = None, class_names: list[str] | None = None) -> None:
    """The analysis covers the epochs, samples and classes written, and gives a diagnosis."""
    assert [e["epoch"] for e in report["epochs"]] == epochs
    assert report["n_epochs"] == len(epochs)
    assert report["n_samples"] == n_samples
    assert report["n_classes"] == n_classes
    if class_names is not None:
        assert report["class_names"] == class_names
    assert report["diagnosis"]["verdicts"], report["diagnosis"]
    assert report["headline"]
    rise = report["diagnosis"]["rise"]
    if ids is not None and rise is not None:
        shown = {s["id"] for s in rise["top_samples"]}
        assert shown and shown <= ids
        assert rise["n_samples"] == len(ids)


def task(*, n_train: int = 600, n_val: int = 240, n_features: int = 10, n_classes: int = 3,
         label_noise: float = 0.15, seed: int = 0):
    """A small Gaussian-blob task with noisy labels: a model overfits it within a few epochs,
    so the validation loss rises while accuracy holds. Returns float32 x and int64 y arrays
    ``(x_train, y_train, x_val, y_val)``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=1.2, size=(n_classes, n_features))

    def draw(n):
        y = rng.integers(n_classes, size=n)
        x = centres[y] + rng.normal(size=(n, n_features))
        flip = rng.random(n) < label_noise
        y = np.where(flip, rng.integers(n_classes, size=n), y)
        return x.astype(np.float32), y.astype(np.int64)

    return (*draw(n_train), *draw(n_val))
