"""Lightning: PredictionCallback on one CPU process and on two (DDP, gathered to rank 0)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from integration_helpers import analyze, check_report, require

require("torch")
require("lightning")

import lightning_run  # noqa: E402

from lossacc_cli.readers import discover, read_epoch  # noqa: E402
from lossacc_cli.writers import PredictionError, metadata_of  # noqa: E402

HERE = Path(__file__).resolve().parent
EPOCHS = list(range(lightning_run.EPOCHS))  # trainer.current_epoch, as in checkpoint names


def _check(out: Path, ids: list[int]) -> None:
    report = analyze(out)
    check_report(report, epochs=EPOCHS, n_samples=lightning_run.N_VAL, n_classes=3,
                 ids=set(ids), class_names=["a", "b", "c"])
    epoch = read_epoch(discover(out)[0][-1])
    assert epoch.ids.tolist() == ids


def test_one_device_ids_from_the_sampler(tmp_path):
    out = tmp_path / "preds"
    lightning_run.run(str(out))
    assert sorted(p.name for p in out.iterdir()) == [f"epoch_{e:03d}.parquet" for e in EPOCHS]
    _check(out, list(range(lightning_run.N_VAL)))  # the sanity check wrote nothing
    provenance = metadata_of(out / "epoch_000.parquet")["provenance"]
    assert provenance["framework"].startswith("lightning ")
    assert provenance["model"] == "Classifier" and provenance["split"] == "val"


def test_ids_returned_by_validation_step_with_a_shuffled_loader(tmp_path):
    out = tmp_path / "preds"
    lightning_run.run(str(out), return_ids=True, shuffle_val=True, epochs=2)
    epoch = read_epoch(discover(out)[0][-1])
    assert epoch.ids.tolist() == [10 * i for i in range(lightning_run.N_VAL)]


def test_a_shuffled_loader_without_ids_is_refused(tmp_path):
    with pytest.raises(PredictionError, match="return 'ids' from validation_step"):
        lightning_run.run(str(tmp_path / "preds"), shuffle_val=True, epochs=1)


def _two_processes(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(HERE / "lightning_run.py"), *args],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert "Starting with 2 processes" in done.stdout + done.stderr, done.stderr[-3000:]
    return done


def test_two_processes_gather_to_rank_zero(tmp_path):
    out = tmp_path / "preds"
    done = _two_processes(tmp_path, str(out), "2")
    assert done.returncode == 0, done.stderr[-3000:]
    # One file per epoch (no per-rank parts), every sample once despite the sampler's padding.
    assert sorted(p.name for p in out.iterdir()) == [f"epoch_{e:03d}.parquet" for e in EPOCHS]
    _check(out, list(range(lightning_run.N_VAL)))


def test_two_processes_all_stop_when_the_validation_set_changes(tmp_path):
    """Rank 0 finds the change; rank 1 learns it by broadcast and stops too (no hang)."""
    out = tmp_path / "preds"
    done = _two_processes(tmp_path, str(out), "2", "relabel")
    assert done.returncode != 0
    assert "ValidationSetChanged" in done.stderr and "labels changed since epoch 0" in done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["epoch_000.parquet"]
