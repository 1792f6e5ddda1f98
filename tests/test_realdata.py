"""Published predictions the team did not make (cleanlab's label-error data), when the shared data
folder sits beside the project (CI); skipped in a user's clone.

Each set is written as a one-epoch NPZ with `probs`/`labels` and `analyze --format json` must equal
a plain NumPy computation to 1e-6.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lossacc_cli.cli.app import app
from tests.reference import ece_loop

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "cleanlab_label_errors"
pytestmark = pytest.mark.skipif(not REALDATA.is_dir(), reason="shared real-data folder not present")

EPS = np.finfo(np.float64).eps


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "20news", "imdb", "mnist"])
def test_analyze_equals_numpy_on_published_predictions(name, tmp_path):
    probs = np.load(REALDATA / name / "pred_probs.npy")
    labels = np.load(REALDATA / name / "labels.npy")
    folder = tmp_path / name
    folder.mkdir()
    np.savez(folder / "epoch_1.npz", probs=probs, labels=labels)
    r = CliRunner().invoke(app, ["analyze", str(folder), "--format", "json"])
    assert r.exit_code == 0, r.stderr
    row = json.loads(r.stdout)["epochs"][0]

    p = probs.astype(np.float64)
    n = len(labels)
    true_p = p[np.arange(n), labels]
    loss = -np.log(np.maximum(true_p, EPS))
    pred = p.argmax(axis=1)
    conf = p[np.arange(n), pred]
    assert row["n_samples"] == n
    assert row["loss"] == pytest.approx(loss.mean(), abs=1e-6)
    assert row["accuracy"] == pytest.approx(np.mean(pred == labels), abs=1e-12)
    assert row["loss_p50"] == pytest.approx(np.median(loss), abs=1e-6)
    assert row["loss_max"] == pytest.approx(loss.max(), abs=1e-6)
    assert row["ece"] == pytest.approx(ece_loop(conf, pred == labels)[0], abs=1e-6)
    prior = np.bincount(labels) / n
    prior = prior[prior > 0]
    assert row["baseline_loss"] == pytest.approx(-(prior * np.log(prior)).sum(), abs=1e-9)
    assert row["n_clipped"] == int((true_p < EPS).sum())
    if name == "20news":
        # 61 rows have p[label] = 0 exactly: each is clipped to 36.04 nats and reported
        assert row["n_clipped"] == 61
        assert "p[label] = 0 for 61 rows" in r.stderr
