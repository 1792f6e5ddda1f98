"""Acceptance on real training runs kept as fixtures (tests/fixtures/runs, see truth.json in each)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from typer.testing import CliRunner

from lossacc_cli.cli.app import app

RUNS = Path(__file__).parent / "fixtures" / "runs"
runner = CliRunner()


def _json(*args):
    r = runner.invoke(app, [*map(str, args), "--format", "json"])
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def test_flipped_labels_rank_at_the_top_of_compare_and_are_suspected():
    truth = json.loads((RUNS / "flipped_labels" / "truth.json").read_text())
    flipped = {x["sample_id"] for x in truth["flipped_labels"]}
    assert len(flipped) == 20
    doc = _json("compare", RUNS / "flipped_labels", "--top", "20")  # lowest-loss epoch -> last
    top = [s["id"] for s in doc["top_samples"]]
    assert len(flipped & set(top)) >= 18, sorted(flipped - set(top))
    analysis = _json("analyze", RUNS / "flipped_labels", "--top", "100")
    issues = analysis["label_issues"]
    assert issues["noise_evidence"] is True
    suspects = {s["id"] for s in issues["samples"]}
    assert len(suspects) == issues["count"]  # the complete list
    hits = len(flipped & suspects)
    assert hits / len(suspects) >= 0.9 and hits / len(flipped) >= 0.9
    # each suspect is listed with the class the model believes: the original label, for the flipped ones
    original = {x["sample_id"]: x["original_label"] for x in truth["flipped_labels"]}
    for s in issues["samples"]:
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
