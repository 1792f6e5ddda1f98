"""`lossacc check`: every rule, exit code and output format through the CLI."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from typer.testing import CliRunner

from lossacc_cli.cli.app import app

runner = CliRunner()


@pytest.fixture()
def run_dir(tmp_path, monkeypatch):
    """Two epochs of a balanced binary task, written as probabilities so every number is known:
    epoch 1: p[label] = 0.8 for all 10 samples -> loss -ln .8 = 0.223144, accuracy 1.0
    epoch 2: nine at 0.9 and one at 0.01 -> loss (9 * 0.105361 + 4.605170) / 10 = 0.555342, acc 0.9
    """
    folder = tmp_path / "preds"
    folder.mkdir()
    labels = np.array([0, 1] * 5)
    for e, p_true in ((1, [0.8] * 10), (2, [0.9] * 9 + [0.01])):
        p = np.array(p_true)
        probs = np.where(labels[:, None] == np.arange(2), p[:, None], 1 - p[:, None])
        np.savez(folder / f"epoch_{e}.npz", probs=probs, labels=labels, sample_ids=np.arange(10))
    monkeypatch.chdir(tmp_path)  # no pyproject.toml with rules above the test folder
    return folder


def _check(*args):
    return runner.invoke(app, ["check", *map(str, args)], env={"NO_COLOR": "1"})


def test_all_rules_pass_exit_0(run_dir):
    r = _check(run_dir, "--max-loss", "0.6", "--min-accuracy", "90%", "--max-loss-rise", "0.4",
               "--max-ece", "0.5", "--max-above-baseline", "0", "--max-top1pct-share", "1")
    assert r.exit_code == 0, r.stdout + r.stderr
    assert r.stdout.count("PASS") == 6 and "FAIL" not in r.stdout


def test_a_failing_rule_exits_1_with_value_and_threshold(run_dir):
    # loss rise 0.555342 - 0.223144 = 0.332198 nats = 148.87% of 0.223144
    r = _check(run_dir, "--max-loss-rise", "100%", "--format", "json")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["command"] == "check" and doc["passed"] is False and doc["epoch"] == 2
    rule = doc["rules"][0]
    assert rule["rule"] == "max-loss-rise" and rule["passed"] is False
    assert rule["value"] == pytest.approx(0.332198 / 0.223144, abs=1e-5)
    assert rule["threshold"] == 1.0
    r = _check(run_dir, "--max-loss-rise", "0.3")
    assert r.exit_code == 1 and "FAIL" in r.stdout and "0.3322" in r.stdout


def test_epoch_option_moves_the_rules(run_dir):
    # at epoch 1 the loss is 0.223144 and accuracy 1.0
    assert _check(run_dir, "--max-loss", "0.3", "--epoch", "1").exit_code == 0
    assert _check(run_dir, "--max-loss", "0.3").exit_code == 1  # last epoch: 0.555342
    assert _check(run_dir, "--max-loss", "0.3", "--epoch", "best").exit_code == 0


def test_above_baseline_rule(run_dir):
    # H(prior) = ln 2 = 0.693147; last loss 0.555342 -> excess -0.137805
    r = _check(run_dir, "--max-above-baseline", "-0.2", "--format", "json")
    assert r.exit_code == 1
    assert json.loads(r.stdout)["rules"][0]["value"] == pytest.approx(0.555342 - 0.693147, abs=1e-5)


def test_fail_on_verdict(run_dir):
    r = _check(run_dir, "--fail-on", "no divergence", "--format", "json")
    doc = json.loads(r.stdout)
    verdict_given = not doc["rules"][0]["passed"]
    assert r.exit_code == (1 if verdict_given else 0)
    bad = _check(run_dir, "--fail-on", "bananas")
    assert bad.exit_code == 2 and "not a verdict" in bad.stderr


def test_no_rules_or_bad_values_exit_2(run_dir):
    r = _check(run_dir)
    assert r.exit_code == 2 and "no rules given" in r.stderr and r.stdout == ""
    assert _check(run_dir, "--max-loss", "abc").exit_code == 2
    assert _check(run_dir, "--min-accuracy", "1.5").exit_code == 2
    assert _check(run_dir, "--max-loss", "5%").exit_code == 2  # a loss is not a percentage
    assert _check(run_dir.parent / "missing", "--max-loss", "1").exit_code == 2


def test_github_annotations(run_dir):
    r = _check(run_dir, "--max-loss", "0.3", "--min-accuracy", "0.5", "--format", "github")
    assert r.exit_code == 1
    lines = r.stdout.splitlines()
    assert lines[0].startswith("::error title=lossacc max-loss FAILED::loss 0.5553 nats at epoch 2")
    assert lines[1].startswith("::notice title=lossacc min-accuracy passed::")
    assert lines[-1] == "lossacc check: 1 passed, 1 failed"


def test_junit_report(run_dir, tmp_path):
    out = tmp_path / "report.xml"
    r = _check(run_dir, "--max-loss", "0.3", "--min-accuracy", "0.5", "--format", "junit", "--output", out)
    assert r.exit_code == 1 and r.stdout == ""
    suite = ET.parse(out).getroot()
    assert suite.tag == "testsuite" and suite.get("tests") == "2" and suite.get("failures") == "1"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["max-loss"].find("failure") is not None
    assert cases["min-accuracy"].find("failure") is None


def test_rules_from_pyproject_and_options_override(run_dir, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.lossacc.check]\nmax_loss = 0.3\nmin_accuracy = "80%"\n')
    r = _check(run_dir, "--format", "json")
    assert r.exit_code == 1
    rules = {x["rule"]: x for x in json.loads(r.stdout)["rules"]}
    assert set(rules) == {"max-loss", "min-accuracy"} and not rules["max-loss"]["passed"]
    assert _check(run_dir, "--max-loss", "0.6").exit_code == 0  # the option overrides the file


def test_rules_from_lossacc_toml_and_unknown_key(run_dir, tmp_path):
    (tmp_path / "lossacc.toml").write_text('[check]\nmax_loss_rise = "200%"\nfail_on = ["class-specific"]\n')
    assert _check(run_dir).exit_code == 0
    (tmp_path / "lossacc.toml").write_text("[check]\nmax_los = 1\n")
    r = _check(run_dir)
    assert r.exit_code == 2 and "unknown check rule" in r.stderr
