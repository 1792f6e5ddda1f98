"""Every command through the CLI: exit codes, stdout and stderr apart, JSON equal to the table."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from lossacc_cli import __version__
from lossacc_cli.cli.app import app
from tests.reference import ce_from_logits, tolerance

runner = CliRunner()


def _write_run(folder, n=60, k=4, epochs=(1, 2, 3, 5), seed=0):
    """Logit NPZ files; the last epoch has one confidently wrong sample (id 1007) getting worse."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    labels = rng.integers(0, k, n)
    ids = np.arange(1000, 1000 + n)
    truth = {}
    for i, e in enumerate(epochs):
        logits = rng.normal(size=(n, k))
        logits[np.arange(n), labels] += 1.0 + i  # gets more accurate and more confident
        logits[7, labels[7]] -= 3.0 * i * i  # sample 7 (id 1007) goes badly wrong
        np.savez(folder / f"epoch_{e:03d}.npz", logits=logits.astype(np.float32), labels=labels, sample_ids=ids)
        truth[e] = (labels, logits.astype(np.float32))
    return truth


def _invoke(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env or {"NO_COLOR": "1"})


@pytest.fixture()
def run_dir(tmp_path):
    folder = tmp_path / "preds"
    truth = _write_run(folder)
    return folder, truth


def test_version():
    r = _invoke("--version")
    assert r.exit_code == 0
    assert r.stdout.strip() == f"lossacc {__version__}"


def test_every_command_has_help():
    for command in ("analyze", "outliers", "compare", "calibration"):
        r = _invoke(command, "--help")
        assert r.exit_code == 0, command
        assert "Example" in r.stdout, command


def test_analyze_json_matches_an_independent_computation(run_dir):
    folder, truth = run_dir
    r = _invoke("analyze", folder, "--format", "json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema_version"] == 2 and doc["command"] == "analyze"
    assert doc["units"]["loss"] == "nats"
    assert [e["epoch"] for e in doc["epochs"]] == [1, 2, 3, 5]
    for row in doc["epochs"]:
        labels, logits = truth[row["epoch"]]
        loss, p = ce_from_logits(labels, logits)
        assert row["loss"] == pytest.approx(loss.mean(), rel=tolerance(logits.dtype))
        assert row["accuracy"] == pytest.approx(np.mean(p.argmax(1) == labels))
        prior = np.bincount(labels, minlength=4) / len(labels)
        assert row["baseline_loss"] == pytest.approx(-(prior * np.log(prior)).sum())
    best = min(doc["epochs"], key=lambda e: e["loss"])["epoch"]
    assert doc["summary"]["best_loss_epoch"] == best
    assert doc["diagnosis"]["rise"]["top_samples"][0]["id"] == 1007
    assert doc["diagnosis"]["verdicts"]
    assert doc["headline"].endswith(".")


def test_analyze_table_equals_json(run_dir):
    folder, _ = run_dir
    table = _invoke("analyze", folder)
    doc = json.loads(_invoke("analyze", folder, "--format", "json").stdout)
    assert table.exit_code == 0
    assert "\x1b[" not in table.stdout  # NO_COLOR / not a terminal: no escape codes
    rows = {}
    for line in table.stdout.splitlines():
        m = re.match(r"^\s*(\d+)\s+(\d+\.\d{4})\s+(\d+\.\d{2})%\s+(\d+\.\d{4})\s+(\d+\.\d{4})\s+(\d+\.\d{4})", line)
        if m:
            rows[int(m.group(1))] = [float(x) for x in m.groups()[1:]]
    assert sorted(rows) == [1, 2, 3, 5]
    for e in doc["epochs"]:
        loss, acc, p50, p99, ece = rows[e["epoch"]]
        assert loss == pytest.approx(e["loss"], abs=5e-5)
        assert acc == pytest.approx(100 * e["accuracy"], abs=5e-3)
        assert p50 == pytest.approx(e["loss_p50"], abs=5e-5)
        assert p99 == pytest.approx(e["loss_p99"], abs=5e-5)
        assert ece == pytest.approx(e["ece"], abs=5e-5)


def test_outliers_compare_calibration_run(run_dir):
    folder, _ = run_dir
    for args in (
        ("outliers", folder, "--epoch", "last"),
        ("outliers", folder, "--epoch", "best"),
        ("outliers", folder, "--epoch", "3"),
        ("compare", folder),
        ("compare", folder, "--from", "1", "--to", "last"),
        ("calibration", folder, "--epoch", "best"),
    ):
        r = _invoke(*args)
        assert r.exit_code == 0, (args, r.stderr)
        assert r.stdout.strip()
        j = _invoke(*args, "--format", "json")
        assert j.exit_code == 0
        assert json.loads(j.stdout)["command"] == args[0]


def test_compare_json_names_the_bad_sample(run_dir):
    folder, truth = run_dir
    doc = json.loads(_invoke("compare", folder, "--from", "1", "--to", "5", "--format", "json").stdout)
    assert doc["from_epoch"] == 1 and doc["to_epoch"] == 5
    assert doc["top_samples"][0]["id"] == 1007
    l1 = ce_from_logits(*truth[1])[0]
    l5 = ce_from_logits(*truth[5])[0]
    assert doc["rise"] == pytest.approx((l5 - l1).mean(), abs=tolerance(truth[1][1].dtype))
    for part in doc["parts"]:
        assert sum(g["contribution"] for g in part["groups"]) == pytest.approx(part["value"], abs=1e-12)
    assert doc["parts"][0]["value"] == doc["rise"]


def test_unknown_epoch_is_a_usage_error(run_dir):
    folder, _ = run_dir
    r = _invoke("outliers", folder, "--epoch", "4")
    assert r.exit_code == 2
    assert "epoch 4 is not in" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    r = _invoke("outliers", folder, "--epoch", "first")
    assert r.exit_code == 2 and "'best' or 'last'" in r.stderr


def test_missing_path_exits_2_with_one_line(tmp_path):
    r = _invoke("analyze", tmp_path / "nope")
    assert r.exit_code == 2
    assert r.stdout == ""
    assert r.stderr.startswith("error: ")
    assert "Traceback" not in r.stderr


def test_bad_option_value_exits_2(run_dir):
    folder, _ = run_dir
    assert _invoke("analyze", folder, "--format", "xml").exit_code == 2
    assert _invoke("analyze", folder, "--top", "0").exit_code == 2


def test_output_file_is_written_atomically_and_input_untouched(run_dir, tmp_path):
    folder, _ = run_dir
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    out_dir = tmp_path / "reports"
    out_dir.mkdir()
    r = _invoke("analyze", folder, "--format", "json", "--output", out_dir / "report.json")
    assert r.exit_code == 0 and r.stdout == ""
    assert json.loads((out_dir / "report.json").read_text())["command"] == "analyze"
    assert sorted(os.listdir(out_dir)) == ["report.json"]  # no temporary file left behind
    r = _invoke("compare", folder, "--output", out_dir / "compare.txt")
    assert r.exit_code == 0
    assert "outcome group" in (out_dir / "compare.txt").read_text()
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    assert after == before


def test_a_report_written_in_parts_is_all_or_nothing(tmp_path):
    """A document written as it comes (a long JSON report) is the parts joined; a part that fails
    midway leaves the earlier report in place and no temporary file."""
    from lossacc_cli.cli.output import write_report

    target = tmp_path / "report.json"
    write_report(str(target), iter(["{\n", '  "k": "é"', "\n}\n"]))
    assert target.read_text(encoding="utf-8") == '{\n  "k": "é"\n}\n'

    def failing():
        yield "{"
        raise RuntimeError("a bug while encoding")

    with pytest.raises(RuntimeError):
        write_report(str(target), failing())
    assert target.read_text(encoding="utf-8") == '{\n  "k": "é"\n}\n'
    assert os.listdir(tmp_path) == ["report.json"]


def test_json_to_stdout_and_to_a_file_are_the_same_bytes(run_dir, tmp_path):
    folder, _ = run_dir
    r = _invoke("analyze", folder, "--format", "json")
    _invoke("analyze", folder, "--format", "json", "--output", tmp_path / "r.json")
    assert r.exit_code == 0 and r.stdout == (tmp_path / "r.json").read_text(encoding="utf-8")


def test_output_into_missing_folder_is_a_usage_error(run_dir, tmp_path):
    folder, _ = run_dir
    r = _invoke("analyze", folder, "--output", tmp_path / "no" / "r.txt")
    assert r.exit_code == 2 and "does not exist" in r.stderr


def test_default_path_is_preds_folder(run_dir, monkeypatch):
    folder, _ = run_dir
    monkeypatch.chdir(folder.parent)
    r = _invoke("analyze", "--format", "json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["path"] == "preds"


def test_class_names_file(run_dir, tmp_path):
    folder, _ = run_dir
    names = tmp_path / "names.txt"
    names.write_text("cat\ndog\nbird\nfish\n")
    doc = json.loads(_invoke("analyze", folder, "--format", "json", "--class-names", names).stdout)
    assert doc["class_names"] == ["cat", "dog", "bird", "fish"]
    names.write_text("cat\ndog\n")
    r = _invoke("analyze", folder, "--class-names", names)
    assert r.exit_code == 2 and "2 names for 4 classes" in r.stderr


def test_a_note_repeated_by_every_file_is_printed_once(tmp_path):
    folder = tmp_path / "both"
    folder.mkdir()
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 20)
    for e in range(1, 6):
        z = rng.normal(size=(20, 3))
        p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        np.savez(folder / f"epoch_{e}.npz", logits=z, probs=p, labels=labels, sample_ids=np.arange(20))
    r = _invoke("analyze", folder, "--format", "json")
    assert r.exit_code == 0
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    repeated = [w for w in warnings if "5 files" in w]
    assert len(repeated) == 1, r.stderr
    assert "epoch_1.npz" in repeated[0] and "epoch_5.npz" not in repeated[0]  # first three named, then ...


def test_jobs_do_not_change_the_result(run_dir):
    folder, _ = run_dir
    one = _invoke("analyze", folder, "--format", "json", "--jobs", "1")
    two = _invoke("analyze", folder, "--format", "json", "--jobs", "2")
    every = _invoke("analyze", folder, "--format", "json")  # 0: all cores
    assert one.exit_code == two.exit_code == every.exit_code == 0
    assert one.stdout == two.stdout == every.stdout
    assert _invoke("analyze", folder, "--jobs", "-1").exit_code == 2


def test_table_output_of_every_command_on_one_epoch_and_on_equal_epochs(tmp_path):
    # one epoch: nothing to compare, yet every view renders (the label issues are still listed)
    folder = tmp_path / "one"
    _write_run(folder, epochs=(4,))
    for args in (("analyze", folder), ("analyze", folder, "--brief"), ("outliers", folder),
                 ("calibration", folder), ("compare", folder)):
        r = _invoke(*args)
        assert r.exit_code == 0, (args, r.stderr)
        assert "Traceback" not in r.stdout + r.stderr
    assert "One epoch only" in _invoke("analyze", folder).stdout
    # --from and --to the same epoch of a longer run
    folder = tmp_path / "run"
    _write_run(folder)
    for args in (("analyze", folder, "--from", "3", "--to", "3"), ("compare", folder, "--from", "2", "--to", "2")):
        r = _invoke(*args)
        assert r.exit_code == 0, (args, r.stderr)
