"""Commands that show one or two epochs (outliers, calibration, compare) reduce only those: the
other epochs are read and checked, so a bad value anywhere still fails the command with its
message, and the output is the whole run's, byte for byte."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import lossacc_cli.analysis.run as run_module
from lossacc_cli.analysis.calibration import calibration_report
from lossacc_cli.analysis.compare import compare_epochs
from lossacc_cli.analysis.outliers import outlier_report
from lossacc_cli.analysis.run import epochs_to_reduce, load_run
from lossacc_cli.cli.app import app
from lossacc_cli.cli.loading import collapse_notes
from lossacc_cli.metrics.vectors import clipped_rows, from_binary_prob, from_probs
from lossacc_cli.render.bodies import calibration_json, outliers_json
from lossacc_cli.render.jsonout import document, dumps
from lossacc_cli.report_dict import rise_dict

runner = CliRunner()
K = 4


def _list(matrix: np.ndarray) -> pa.Array:
    n, k = matrix.shape
    return pa.ListArray.from_arrays(pa.array(np.arange(0, n * k + 1, k, dtype=np.int32)),
                                    pa.array(matrix.reshape(-1)))


def _probs(rng, n: int) -> np.ndarray:
    p = rng.dirichlet(np.ones(K) * 0.7, size=n)
    return p


def parquet_run(tmp: Path) -> Path:
    """String ids, some missing from some epochs and some new, class names in the third file
    only, float32 logits."""
    folder = tmp / "parquet"
    folder.mkdir()
    rng = np.random.default_rng(5)
    ids = np.array([f"s{i:03d}" for i in range(60)], dtype=object)
    labels = rng.integers(0, K, 60)
    for e in range(1, 6):
        keep = np.ones(60, dtype=bool)
        if e == 2:
            keep[[3, 17, 40]] = False
        if e < 4:
            keep[55:] = False  # ids s055.. arrive at epoch 4
        logits = (rng.normal(size=(60, K)) * e).astype(np.float32)
        table = pa.table({"sample_id": pa.array(ids[keep].tolist()), "label": labels[keep],
                          "logits": _list(logits[keep])})
        if e == 3:
            table = table.replace_schema_metadata({"lossacc.class_names": json.dumps(["a", "b", "c", "d"])})
        pq.write_table(table, folder / f"epoch_{e:03d}.parquet")
    return folder


def npz_probs_run(tmp: Path) -> Path:
    """Probabilities with p[label] = 0 in epochs 1 and 3 (a note each, also for an epoch not
    shown), int ids in a different order each epoch."""
    folder = tmp / "npz"
    folder.mkdir()
    rng = np.random.default_rng(6)
    labels = rng.integers(0, K, 50)
    for e in range(1, 5):
        p = _probs(rng, 50)
        if e in (1, 3):
            for row in (4, 9) if e == 1 else (30,):
                p[row, labels[row]] = 0.0
                p[row] /= p[row].sum()
        order = rng.permutation(50)
        np.savez(folder / f"epoch_{e}.npz", probs=p[order], labels=labels[order],
                 sample_ids=np.arange(1000, 1050)[order])
    return folder


def long_run(tmp: Path) -> Path:
    """One long-format file, epochs in shuffled row order."""
    rng = np.random.default_rng(7)
    n, epochs = 8, 12
    e = np.repeat(np.arange(1, epochs + 1), n)
    order = rng.permutation(e.size)
    logits = rng.normal(size=(e.size, K)).astype(np.float32)
    table = pa.table({"epoch": e[order], "sample_id": np.tile(np.arange(n), epochs)[order],
                      "label": np.tile(np.arange(n) % K, epochs)[order], "logits": _list(logits[order])})
    path = tmp / "long.parquet"
    pq.write_table(table, path)
    return path


def rowids_run(tmp: Path) -> Path:
    """No id column (row positions stand in for ids): the note that says so counts every epoch."""
    folder = tmp / "rows"
    folder.mkdir()
    rng = np.random.default_rng(8)
    labels = rng.integers(0, K, 30)
    for e in (1, 2, 3):
        np.savez(folder / f"epoch_{e}.npz", logits=rng.normal(size=(30, K)), labels=labels)
    return folder


RUNS = {"parquet": parquet_run, "npz": npz_probs_run, "long": long_run, "rows": rowids_run}


def _stderr_notes(run) -> list[str]:
    return collapse_notes(run.notes, [r.source for r in run.records] + list(run.unreduced))


def _bodies(run, command: str, specs: tuple[str, ...]) -> str:
    if command == "outliers":
        body = outliers_json(outlier_report(run, run.resolve_epoch(specs[0]), top=5))
    elif command == "calibration":
        body = calibration_json(calibration_report(run, run.resolve_epoch(specs[0])))
    else:
        both = compare_epochs(run, run.resolve_epoch(specs[0]), run.resolve_epoch(specs[1]))
        body = rise_dict(run, both, 5)
    return dumps(document(command, body))


@pytest.mark.parametrize("name", sorted(RUNS))
@pytest.mark.parametrize("command, specs", [
    ("outliers", ("2",)), ("outliers", ("last",)), ("calibration", ("3",)), ("calibration", ("last",)),
    ("compare", ("1", "last")), ("compare", ("3", "2")),
])
def test_the_shown_epochs_alone_give_the_whole_runs_output(tmp_path, name, command, specs):
    path = RUNS[name](tmp_path)
    whole = load_run(str(path))
    shown = load_run(str(path), epochs=specs)
    assert len(shown.records) == len({whole.resolve_epoch(s) for s in specs}) < len(whole.records)
    assert _bodies(shown, command, specs) == _bodies(whole, command, specs)
    assert shown.notes == whole.notes and _stderr_notes(shown) == _stderr_notes(whole)
    assert shown.ids.dtype == whole.ids.dtype and shown.ids.tolist() == whole.ids.tolist()
    assert shown.n_classes == whole.n_classes and shown.class_names == whole.class_names
    assert sorted(shown.unreduced + tuple(r.source for r in shown.records)) == sorted(
        r.source for r in whole.records)


def test_notes_of_epochs_not_shown_are_kept(tmp_path):
    """The hand-made zeros of npz_probs_run: epoch 1 clips ids 1004 and 1009, epoch 3 id 1030."""
    shown = load_run(str(npz_probs_run(tmp_path)), epochs=("4",))
    clip = [n for n in shown.notes if "p[label] = 0" in n]
    assert len(clip) == 2
    assert "epoch_1.npz" in clip[0] and "1004" in clip[0] and "1009" in clip[0]
    assert "epoch_3.npz" in clip[1] and "1030" in clip[1]
    assert [r.epoch for r in shown.records] == [4]


def test_parquet_run_notes_by_hand(tmp_path):
    """Missing ids (epoch 2: 3 + 5, epoch 1 and 3: 5) and the third file's class names, from
    epochs that are not shown."""
    shown = load_run(str(parquet_run(tmp_path)), epochs=("5",))
    assert shown.class_names == ("a", "b", "c", "d")
    missing = [n for n in shown.notes if "missing" in n]
    assert missing and "epoch 1: 5, epoch 2: 8, epoch 3: 5" in missing[0]
    assert len(shown.ids) == 60


def test_epochs_to_reduce():
    epochs = [1, 2, 5, 9]
    assert epochs_to_reduce(("last",), epochs) == {9}
    assert epochs_to_reduce((" 5 ",), epochs) == {5}
    assert epochs_to_reduce(("2", "LAST"), epochs) == {2, 9}
    assert epochs_to_reduce(("best",), epochs) is None  # every epoch's loss is compared
    assert epochs_to_reduce(("2", "best"), epochs) is None
    assert epochs_to_reduce(("3",), epochs) is None  # not in the run: refused after the whole read
    assert epochs_to_reduce(("x",), epochs) is None
    assert epochs_to_reduce(("last",), []) is None


def test_clipped_rows_match_the_vectors():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 40)
    p = rng.dirichlet(np.ones(3), size=40)
    p[[2, 7], labels[[2, 7]]] = 1e-17
    p[11, labels[11]] = 0.0
    assert np.array_equal(clipped_rows("probs", labels, p), from_probs(labels, p).clipped)
    assert np.flatnonzero(clipped_rows("probs", labels, p)).tolist() == [2, 7, 11]
    b = rng.random(40)
    b[[0, 5]] = np.where(labels[[0, 5]] % 2 == 1, 0.0, 1.0)
    y = labels % 2
    assert np.array_equal(clipped_rows("prob", y, b), from_binary_prob(y, b).clipped)
    assert clipped_rows("logits", labels, p) is None and clipped_rows("stats", labels, None) is None


@pytest.fixture
def reduced(monkeypatch):
    """The epochs whose scores are reduced (reduce_epoch, the per-epoch hook, counted)."""
    calls: list[int] = []
    original = run_module.reduce_epoch

    def counting(data, *args):
        calls.append(data.header.epoch if hasattr(data, "header") else data.epoch)
        return original(data, *args)

    monkeypatch.setattr(run_module, "reduce_epoch", counting)
    return calls


def invoke(*args):
    return runner.invoke(app, [*map(str, args)], env={"NO_COLOR": "1"})


@pytest.mark.parametrize("name", ["parquet", "npz"])
def test_the_cli_reduces_only_the_shown_epochs(tmp_path, reduced, name):
    path = RUNS[name](tmp_path)
    whole = load_run(str(path))
    reduced.clear()
    out = invoke("calibration", path, "--epoch", "3", "--format", "json", "--no-cache")
    assert out.exit_code == 0, out.stderr
    assert reduced == [3]
    assert out.stdout == _bodies(whole, "calibration", ("3",))
    reduced.clear()
    out = invoke("compare", path, "--from", "2", "--to", "last", "--format", "json", "--top", "5", "--no-cache")
    assert out.exit_code == 0, out.stderr
    assert sorted(reduced) == [2, 4 if name == "npz" else 5]
    assert out.stdout == _bodies(whole, "compare", ("2", "last"))
    reduced.clear()
    out = invoke("outliers", path, "--epoch", "best", "--format", "json", "--no-cache")
    assert out.exit_code == 0 and len(reduced) == len(whole.records)  # best: every epoch's loss


def test_the_cache_stands_in_for_a_read(tmp_path, monkeypatch):
    """Epochs not shown come from the cache when it holds them: no file is read for them."""
    monkeypatch.setenv("LOSSACC_CACHE_DIR", str(tmp_path / "cache"))
    # bigger than the smallest epoch worth caching
    folder = tmp_path / "run"
    folder.mkdir()
    rng = np.random.default_rng(2)
    labels = rng.integers(0, K, 400)
    for e in (1, 2, 3):
        np.savez(folder / f"epoch_{e}.npz", logits=rng.normal(size=(400, K)), labels=labels)
    first = invoke("outliers", folder, "--epoch", "2", "--format", "json")
    assert invoke("analyze", folder, "--format", "json").exit_code == 0  # fills the cache
    checked: list[str] = []
    original = run_module.check_source
    monkeypatch.setattr(run_module, "check_source",
                        lambda source, options: checked.append(source.path) or original(source, options))
    again = invoke("outliers", folder, "--epoch", "2", "--format", "json")
    assert again.exit_code == 0 and checked == [] and again.stdout == first.stdout


def _bad_run(tmp: Path, fmt: str) -> Path:
    folder = tmp / f"bad_{fmt}"
    folder.mkdir()
    rng = np.random.default_rng(3)
    labels = rng.integers(0, K, 20)
    for e in (1, 2, 3, 4):
        logits = rng.normal(size=(20, K)).astype(np.float32)
        if e == 2:
            logits[[5, 11], 1] = np.nan
        if fmt == "npz":
            np.savez(folder / f"epoch_{e}.npz", logits=logits, labels=labels, sample_ids=np.arange(20) + 100)
        else:
            pq.write_table(pa.table({"sample_id": np.arange(20) + 100, "label": labels, "logits": _list(logits)}),
                           folder / f"epoch_{e}.parquet")
    return folder


@pytest.mark.parametrize("fmt", ["npz", "parquet"])
@pytest.mark.parametrize("args", [("outliers", "--epoch", "4"), ("calibration", "--epoch", "last"),
                                  ("compare", "--from", "3", "--to", "4"), ("outliers", "--epoch", "99")])
def test_a_bad_value_in_an_epoch_not_shown_fails_as_before(tmp_path, fmt, args):
    folder = _bad_run(tmp_path, fmt)
    whole = invoke("analyze", folder, "--no-cache")  # every epoch reduced
    shown = invoke(args[0], folder, *args[1:], "--no-cache")
    assert whole.exit_code == shown.exit_code == 2
    assert shown.stdout == "" and shown.stderr == whole.stderr
    line = shown.stderr.strip().splitlines()[-1]
    assert f"epoch_2.{fmt}" in line and "101" not in line and "105" in line and "111" in line


def test_an_epoch_not_in_the_run_is_refused_with_every_epoch_listed(tmp_path):
    folder = rowids_run(tmp_path)
    out = invoke("outliers", folder, "--epoch", "7", "--no-cache")
    assert out.exit_code == 2
    assert "--epoch 7: epoch 7 is not in" in out.stderr and "(epochs: 1, 2, 3)" in out.stderr
    assert os.path.basename(folder) in out.stderr


def test_worker_processes_give_the_same_run(tmp_path):
    """A run large enough for worker processes (jobs=2): the epochs checked there give the same
    output, notes and ids; a bad value in an epoch not shown fails in the same way."""
    folder = tmp_path / "big"
    folder.mkdir()
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 100, 4000)
    for e in (1, 2, 3, 4):
        p = rng.dirichlet(np.ones(100), size=4000)
        p[e, labels[e]] = 0.0  # a clipped row in every epoch: a note each
        np.savez(folder / f"epoch_{e}.npz", probs=p / p.sum(axis=1, keepdims=True), labels=labels)
    assert sum(f.stat().st_size for f in folder.iterdir()) >= run_module.PARALLEL_MIN_BYTES
    whole = load_run(str(folder), jobs=2)
    shown = load_run(str(folder), epochs=("3",), jobs=2)
    assert [r.epoch for r in shown.records] == [3]
    assert _bodies(shown, "calibration", ("3",)) == _bodies(whole, "calibration", ("3",))
    assert shown.notes == whole.notes and len([n for n in shown.notes if "p[label] = 0" in n]) == 4
    bad = np.load(folder / "epoch_2.npz")
    probs = bad["probs"].copy()
    probs[7] = np.nan
    np.savez(folder / "epoch_2.npz", probs=probs, labels=bad["labels"])
    with pytest.raises(Exception) as full_error:
        load_run(str(folder), jobs=2)
    with pytest.raises(Exception) as shown_error:
        load_run(str(folder), epochs=("4",), jobs=2)
    assert type(shown_error.value) is type(full_error.value)
    assert str(shown_error.value) == str(full_error.value) and "epoch_2.npz" in str(full_error.value)
