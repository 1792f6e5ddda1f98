"""`lossacc check --format markdown`: a table for a CI step summary or a PR comment."""

from __future__ import annotations

import re

import numpy as np
import pytest
from typer.testing import CliRunner

from lossacc_cli.analysis.check import CheckResult, RuleResult
from lossacc_cli.cli.app import app
from lossacc_cli.render.check import check_markdown

runner = CliRunner()


@pytest.fixture()
def run_dir(tmp_path, monkeypatch):
    """epoch 1: p[label] = 0.8 for all 10 samples (loss 0.223144, accuracy 1.0); epoch 2: nine at
    0.9 and one at 0.01 (loss (9 * 0.105361 + 4.605170) / 10 = 0.555342, accuracy 0.9)."""
    folder = tmp_path / "preds"
    folder.mkdir()
    labels = np.array([0, 1] * 5)
    for e, p_true in ((1, [0.8] * 10), (2, [0.9] * 9 + [0.01])):
        p = np.array(p_true)
        probs = np.where(labels[:, None] == np.arange(2), p[:, None], 1 - p[:, None])
        np.savez(folder / f"epoch_{e}.npz", probs=probs, labels=labels, sample_ids=np.arange(10))
    monkeypatch.chdir(tmp_path)
    return folder


def test_markdown_table_one_row_per_rule(run_dir, tmp_path):
    r = runner.invoke(app, ["check", str(run_dir), "--max-loss", "0.3", "--min-accuracy", "0.5", "--format", "markdown"])
    assert r.exit_code == 1 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert lines[0] == "### ❌ lossacc check 1 of 2 rules failed"
    assert lines[4] == "| result | rule | value | threshold | detail |"
    assert lines[5] == "| --- | --- | ---: | ---: | --- |"
    assert lines[6] == "| ❌ FAIL | max-loss | 0.5553 | 0.3 | loss 0.5553 nats at epoch 2 &gt; 0.3 |"
    assert lines[7].startswith("| ✅ PASS | min-accuracy | 0.9000 | 0.5 | accuracy 90.00% at epoch 2 &gt;= 0.5")
    assert lines[-1] == "1 passed, 1 failed."
    out = tmp_path / "summary.md"
    r = runner.invoke(app, ["check", str(run_dir), "--max-loss", "1", "--format", "markdown", "-o", str(out)])
    assert r.exit_code == 0 and r.stdout == ""
    assert out.read_text(encoding="utf-8").startswith("### ✅ lossacc check passed\n")


def test_markdown_cells_are_literal_text():
    res = CheckResult(path="runs/<img src=x>|`a`*b*_[c](d)", epoch=3, rules=(
        RuleResult("fail-on x|y", None, "x|y", False, "line one\nline two | <script>alert(1)</script>"),))
    text = check_markdown(res)
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(table) == 3 and all(len(re.findall(r"(?<!\\)\|", line)) == 6 for line in table)  # 5 cells each
    assert "<" not in text and ">" not in text.replace("&gt;", "")
    assert "Run runs/&lt;img src=x&gt;\\|\\`a\\`\\*b\\*\\_\\[c\\](d), epoch 3." in text
    assert "line one line two \\| &lt;script&gt;" in text


def test_markdown_is_documented():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "--format markdown" in readme and "GITHUB_STEP_SUMMARY" in readme
