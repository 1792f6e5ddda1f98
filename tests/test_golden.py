"""Golden snapshots of the plain (piped) output for a tiny run. The numbers in them are checked
independently elsewhere; this guards the layout. Update deliberately: LOSSACC_UPDATE_GOLDEN=1 pytest
tests/test_golden.py, then read the diff before committing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lossacc_cli.cli.app import app

GOLDEN = Path(__file__).parent / "golden"


def _tiny_run(folder: Path) -> None:
    # 12 samples, 3 classes; epoch 2 is best; by epoch 3 sample "s07" is confidently wrong.
    labels = np.array([0, 1, 2] * 4)
    ids = np.array([f"s{i:02d}" for i in range(12)])
    for e, margin in ((1, 1.0), (2, 2.0), (3, 3.0)):
        z = np.zeros((12, 3))
        z[np.arange(12), labels] = margin
        if e == 3:
            z[7] = [6.0, 0.0, 0.0]  # label 1, predicted 0 with margin 6
        np.savez(folder / f"epoch_{e}.npz", logits=z.astype(np.float32), labels=labels, sample_ids=ids)


@pytest.mark.parametrize("command", [["analyze", "preds"], ["calibration", "preds", "--epoch", "3"],
                                     ["outliers", "preds"], ["compare", "preds", "--from", "1", "--to", "3"]])
def test_plain_output_matches_snapshot(command, tmp_path, monkeypatch):
    (tmp_path / "preds").mkdir()
    _tiny_run(tmp_path / "preds")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, command, env={"NO_COLOR": "1"})
    assert r.exit_code == 0, r.stderr
    snapshot = GOLDEN / f"{command[0]}_tiny.txt"
    if os.environ.get("LOSSACC_UPDATE_GOLDEN"):
        snapshot.write_text(r.stdout, encoding="utf-8")
    assert r.stdout == snapshot.read_text(encoding="utf-8")
