"""Acceptance on real training runs kept as fixtures (tests/fixtures/runs; each truth.json says what
was done to the run and carries an answer key computed independently by the generator, key.py).

For every run: the first finding is one the key accepts, no finding the key forbids is given, and
where validation labels were flipped, the label-issue list finds them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lossacc_cli.cli.app import app

RUNS = Path(__file__).parent / "fixtures" / "runs"
KEYED = sorted(p.name for p in RUNS.iterdir()
               if (p / "truth.json").is_file() and "expected" in json.loads((p / "truth.json").read_text()))

KNOWN_MISSES = {
    # 10 flipped labels in 250 binary samples: the likelihood-ratio test gives p = 2.5e-4, short of
    # the 1e-5 it needs (a clean-label run with corrupted features reaches 9e-5); the samples are
    # still listed, as "inspect these ids"
    "flipval_cancer": "the label-noise test lacks the power on 250 binary samples",
    # 40 training points leave a region the model never learns: validation samples there are
    # contradicted from the first epoch on, exactly as flipped labels are (nothing in the
    # predictions tells them apart)
    "rule_binary_c": "a region never learned looks like flipped labels",
}


def _keyed(names):
    return [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[n])) if n in KNOWN_MISSES
            else n for n in names]
runner = CliRunner()


def _json(*args):
    r = runner.invoke(app, [*map(str, args), "--format", "json"])
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def test_there_are_keyed_runs_of_every_kind():
    assert len(KEYED) >= 7


@pytest.mark.parametrize("name", _keyed(KEYED))
def test_training_run_gets_the_right_headline_and_no_false_finding(name):
    expected = json.loads((RUNS / name / "truth.json").read_text())["expected"]
    doc = _json("analyze", RUNS / name)
    found = [v["verdict"] for v in doc["diagnosis"]["verdicts"]]
    assert found[0] in expected["headline"], (found, expected["headline"])
    false = set(found) & set(expected["forbidden"])
    assert not false, (found, expected["forbidden"])
    assert f"eep epoch {doc['checkpoint']['epoch']}" in doc["headline"]  # the cause, then the next step
    if expected["label_errors"] == []:  # labels known clean (clean, or a rule of the input)
        assert "suspected label noise" not in found


@pytest.mark.parametrize("name", [n for n in KEYED
                                  if json.loads((RUNS / n / "truth.json").read_text())["expected"]["label_errors"]])
def test_flipped_validation_labels_are_found(name):
    errors = set(json.loads((RUNS / name / "truth.json").read_text())["expected"]["label_errors"])
    issues = _json("analyze", RUNS / name, "--top", "1")["label_issues"]
    flagged = {s["id"] for s in issues["samples"]}
    assert len(flagged) == issues["count"]  # the JSON list is complete whatever --top says
    hits = len(flagged & errors)
    precision, recall = hits / max(len(flagged), 1), hits / len(errors)
    # the runs' own ambiguous samples (a 1 that looks like a 7) are flagged too: see the README
    assert precision >= 0.8 and recall >= 0.85, (precision, recall)


def test_flipped_labels_rank_at_the_top_of_compare():
    truth = json.loads((RUNS / "flipped_labels" / "truth.json").read_text())
    flipped = {x["sample_id"] for x in truth["flipped_labels"]}
    assert len(flipped) == 20
    doc = _json("compare", RUNS / "flipped_labels", "--top", "20")  # lowest-loss epoch -> last
    top = [s["id"] for s in doc["top_samples"]]
    assert len(flipped & set(top)) >= 18, sorted(flipped - set(top))
    # each suspect is listed with the class the model believes: the original label, for the flipped ones
    original = {x["sample_id"]: x["original_label"] for x in truth["flipped_labels"]}
    for s in _json("analyze", RUNS / "flipped_labels")["label_issues"]["samples"]:
        if s["id"] in original:
            assert s["likely_class"] == original[s["id"]]


def test_binary_outlier_is_named_first_with_the_mean_loss_without_it():
    truth = json.loads((RUNS / "binary_outlier" / "truth.json").read_text())
    outlier_id = truth["outlier"]["sample_id"]
    doc = _json("outliers", RUNS / "binary_outlier", "--epoch", "last")
    assert doc["outliers"][0]["id"] == outlier_id
    n = doc["n_samples"]
    k = doc["n_outliers"]
    total = doc["loss"] * n
    removed = sum(s["loss"] for s in doc["outliers"][:k])
    assert math.isclose(doc["loss_without_outliers"], (total - removed) / (n - k), rel_tol=1e-9)
    assert doc["loss_without_outliers"] < doc["loss"] / 5


def test_where_the_noise_test_lacks_power_the_carriers_are_still_named():
    """flipval_cancer: 10 flips in 250 binary labels are too few for the label-noise test (a known
    miss above), so no cause is claimed; the samples that carry the rise are named as confidently
    wrong, to inspect, and nearly all of them are flips (the rest: the data set's own ambiguous
    tumours, which the model also gives to the other class)."""
    doc = _json("analyze", RUNS / "flipval_cancer")
    errors = set(json.loads((RUNS / "flipval_cancer" / "truth.json").read_text())["expected"]["label_errors"])
    first = doc["diagnosis"]["verdicts"][0]
    assert first["verdict"] == "inconclusive"
    named = set(first["sample_ids"])
    assert len(named) >= 5 and len(named & errors) >= 0.8 * len(named), (named, errors)
    assert "Inspect them (ids" in doc["headline"]
