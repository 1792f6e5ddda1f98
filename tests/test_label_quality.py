"""Label quality: the per-sample score, the count of wrong labels, the flagged list and the test for
label noise (analysis/label_quality.py)."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import lossacc_cli.analysis.label_quality as lq_module
from lossacc_cli.analysis.dynamics import suspect_mask, training_dynamics
from lossacc_cli.analysis.label_quality import (
    LabelQualityThresholds,
    fit_noise_rate,
    label_quality,
)
from lossacc_cli.analysis.run import EpochRecord, Run, build_run, load_run
from lossacc_cli.metrics.per_sample import PROB_FLOOR, SampleStats
from lossacc_cli.readers.model import CompactStats, EpochData
from tests.helpers import epoch

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "runs"
REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


def compact_epoch(epoch_no, labels, pred, confidence, true_prob, n_classes):
    """An epoch in the compact per-sample form (no scores: the probabilities are used as given)."""
    labels = np.asarray(labels, dtype=np.int64)
    true_prob = np.asarray(true_prob, dtype=np.float64)
    return EpochData(
        epoch=epoch_no,
        source=f"epoch_{epoch_no}.npz",
        ids=np.arange(len(labels)),
        labels=labels,
        kind="stats",
        scores=None,
        n_classes=n_classes,
        stats=CompactStats(
            loss=-np.log(true_prob),
            pred=np.asarray(pred, dtype=np.int64),
            confidence=np.asarray(confidence, dtype=np.float64),
            true_prob=true_prob,
        ),
    )


# Six samples, three classes, two epochs (compact form: probabilities as given).
#   s0 label 0: predicted 0 at both, p = 0.9          -> p_label 0.9, never another class
#   s1 label 0: predicted 0 at both, p = 0.8          -> p_label 0.8
#   s2 label 0: predicted 1 at both, top 0.9, p[0] 0.05 -> p_label 0.05, other 1, p_other 0.9
#   s3 label 1: predicted 1, p = 0.7 then 0.9         -> p_label 0.8
#   s4 label 1: predicted 1 (0.6), then 2 (top 0.5, p[1] 0.4) -> p_label 0.5, other 2,
#               p_other = (0 + 0.5) / 2 = 0.25
#   s5 label 2: predicted 2 at both, p = 0.6          -> p_label 0.6
LABELS = [0, 0, 0, 1, 1, 2]
EPOCH_1 = dict(pred=[0, 0, 1, 1, 1, 2], confidence=[0.9, 0.8, 0.9, 0.7, 0.6, 0.6],
               true_prob=[0.9, 0.8, 0.05, 0.7, 0.6, 0.6])
EPOCH_2 = dict(pred=[0, 0, 1, 1, 2, 2], confidence=[0.9, 0.8, 0.9, 0.9, 0.5, 0.6],
               true_prob=[0.9, 0.8, 0.05, 0.9, 0.4, 0.6])


def tiny_run():
    return build_run("tiny", [compact_epoch(1, LABELS, n_classes=3, **EPOCH_1),
                              compact_epoch(2, LABELS, n_classes=3, **EPOCH_2)])


def test_tiny_run_by_hand():
    q = label_quality(tiny_run())
    assert not q.calibrated  # compact form: nothing to temperature-scale
    np.testing.assert_allclose(q.p_label, [0.9, 0.8, 0.05, 0.8, 0.5, 0.6])
    np.testing.assert_array_equal(q.other_class, [-1, -1, 1, -1, 2, -1])
    np.testing.assert_allclose(q.p_other, [0, 0, 0.9, 0, 0.25, 0])
    np.testing.assert_allclose(q.other_fraction, [0, 0, 1, 0, 0.5, 0])
    # score = (1 + p_label - p_other) / 2
    np.testing.assert_allclose(q.score, [0.95, 0.9, 0.075, 0.9, 0.625, 0.8])
    # s4's other class gets less than its label: the evidence points to the label
    np.testing.assert_array_equal(q.likely_class, [0, 0, 1, 1, 1, 2])
    # thresholds: class 0 (0.9 + 0.8 + 0.05) / 3, class 1 (0.8 + 0.5) / 2, class 2 0.6
    np.testing.assert_allclose(q.class_thresholds, [1.75 / 3, 0.65, 0.6])
    # s2: p_other 0.9 >= t_1 = 0.65, a confident disagreement; s4: 0.25 < t_2 = 0.6, not one
    np.testing.assert_array_equal(q.confident, [False, False, True, False, False, False])
    # class 0: 1 off-diagonal among 3 counted (s0, s1 reach t_0 = 0.583) -> 1 * 3 / 3 = 1
    assert q.n_estimated == pytest.approx(1.0)
    np.testing.assert_array_equal(q.flagged, [False, False, True, False, False, False])
    np.testing.assert_array_equal(q.flagged_rows(), [2])


def test_count_scales_to_the_class_size_when_some_samples_reach_no_threshold():
    # A seventh sample labelled 0, predicted 0 with p = 0.3 at both epochs: class 0's threshold
    # becomes (0.9 + 0.8 + 0.05 + 0.3) / 4 = 0.5125; s0, s1 reach it, s2 is off-diagonal, the new
    # sample reaches none -> 1 off among 3 counted, times 4 samples = 4 / 3 wrong labels.
    labels = [*LABELS, 0]
    e1 = {k: [*v, 0.3] if k != "pred" else [*v, 0] for k, v in EPOCH_1.items()}
    e2 = {k: [*v, 0.3] if k != "pred" else [*v, 0] for k, v in EPOCH_2.items()}
    run = build_run("t", [compact_epoch(1, labels, n_classes=3, **e1), compact_epoch(2, labels, n_classes=3, **e2)])
    q = label_quality(run)
    assert q.class_thresholds[0] == pytest.approx(2.05 / 4)
    assert q.n_estimated == pytest.approx(4 / 3)
    assert q.n_flagged == 1  # 4/3 rounds to 1


def test_threshold_scale_moves_the_confident_disagreements():
    # s2's p_other 0.9 is 1.38 x t_1 = 0.65: counted at scale 1.3, not at scale 1.4
    run = tiny_run()
    assert label_quality(run, LabelQualityThresholds(class_threshold_scale=1.3)).confident[2]
    assert not label_quality(run, LabelQualityThresholds(class_threshold_scale=1.4)).confident[2]


def test_flagged_only_where_another_class_outweighs_the_label():
    # A sample predicted as another class at one epoch of two with top 0.55, p[label] 0.45 there
    # and 0.9 at the other: p_other = 0.275 < p_label = 0.675 -> never flagged, whatever the count.
    labels = [0, 1]
    e1 = compact_epoch(1, labels, pred=[1, 1], confidence=[0.55, 0.9], true_prob=[0.45, 0.9], n_classes=2)
    e2 = compact_epoch(2, labels, pred=[0, 1], confidence=[0.9, 0.9], true_prob=[0.9, 0.9], n_classes=2)
    q = label_quality(build_run("t", [e1, e2]))
    assert q.score[0] == pytest.approx((1 + 0.675 - 0.275) / 2)
    assert not q.flagged.any()


def test_the_label_of_the_first_epoch_wins_and_absent_epochs_do_not_count():
    # id 7 is only in epoch 2: its averages are over one epoch
    e1 = epoch(np.log([[0.9, 0.1], [0.2, 0.8]]), [0, 1], ids=[5, 6], epoch_no=1)
    e2 = epoch(np.log([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]]), [0, 1, 0], ids=[5, 6, 7], epoch_no=2)
    q = label_quality(build_run("t", [e1, e2]))
    np.testing.assert_array_equal(q.n_epochs, [2, 2, 1])
    np.testing.assert_array_equal(q.labels, [0, 1, 0])


# --------------------------------------------------------------------------- invariances


def _random_run(rng, n=300, k=4, n_epochs=3, ids=None):
    labels = rng.integers(0, k, n)
    out = []
    for e in range(1, n_epochs + 1):
        z = rng.normal(0, 1.5, (n, k))
        z[np.arange(n), labels] += rng.normal(1.0, 2.0, n)
        out.append(epoch(z, labels, epoch_no=e, ids=ids))
    return out


def test_row_order_of_the_files_does_not_matter():
    rng = np.random.default_rng(1)
    epochs = _random_run(rng)
    q = label_quality(build_run("a", epochs))
    shuffled = []
    for e in epochs:
        order = rng.permutation(len(e.labels))
        shuffled.append(dataclasses.replace(e, ids=e.ids[order], labels=e.labels[order], scores=e.scores[order]))
    run = build_run("b", shuffled)
    q2 = label_quality(run)
    back = np.argsort(run.ids)  # the id table of run b in id order
    for name in ("score", "p_label", "p_other", "other_class", "flagged", "confident"):
        np.testing.assert_allclose(getattr(q2, name)[back], getattr(q, name), err_msg=name, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("pairs", ["many per sample", "one per sample"])
def test_modal_class_both_paths_equal_a_counter(pairs):
    rng = np.random.default_rng(2)
    n_ids, n_classes = 200, 7
    if pairs == "one per sample":  # one epoch's wrong predictions: rows in order, each once
        rows = np.flatnonzero(rng.random(n_ids) < 0.4)
    else:
        rows = rng.integers(0, n_ids, 3000)
    classes = rng.integers(0, n_classes, rows.shape[0])
    expected_mode = np.full(n_ids, -1)
    expected_count = np.zeros(n_ids, dtype=np.int64)
    for i in range(n_ids):
        c = Counter(classes[rows == i].tolist())
        if c:
            top = max(c.values())
            expected_mode[i] = min(k for k, v in c.items() if v == top)
            expected_count[i] = top
    table = lq_module._modal_class(rows, classes, n_ids, n_classes)
    np.testing.assert_array_equal(table[0], expected_mode)
    np.testing.assert_array_equal(table[1], expected_count)
    old = lq_module._BINCOUNT_MAX
    try:
        lq_module._BINCOUNT_MAX = 0  # the sorting path, for many classes
        sort = lq_module._modal_class(rows, classes, n_ids, n_classes)
    finally:
        lq_module._BINCOUNT_MAX = old
    np.testing.assert_array_equal(sort[0], expected_mode)
    np.testing.assert_array_equal(sort[1], expected_count)


def test_score_range_and_direction():
    rng = np.random.default_rng(3)
    q = label_quality(build_run("r", _random_run(rng)))
    assert np.all((q.score >= 0) & (q.score <= 1))
    # below 0.5 exactly when the other class outweighs the label
    np.testing.assert_array_equal(q.score < 0.5, (q.other_class >= 0) & (q.p_other > q.p_label))
    assert np.all(q.score[q.flagged] < 0.5)


# --------------------------------------------------------------------------- the evidence test


def test_fit_noise_rate_matches_a_grid_search():
    rng = np.random.default_rng(4)
    p = np.r_[rng.uniform(0.5, 1, 400), rng.uniform(1e-4, 1e-2, 20)]
    k = 5
    rate, statistic = fit_noise_rate(p, k)
    grid = np.linspace(0, 0.5, 50001)
    ll = np.log((1 - grid[:, None]) * p + grid[:, None] * (1 - p) / (k - 1)).sum(axis=1)
    assert rate == pytest.approx(grid[ll.argmax()], abs=2e-5)
    assert statistic == pytest.approx(2 * (ll.max() - ll[0]), rel=1e-6)


def _rate_by_exact_bisection(p, k):
    """The root of sum d / (p + r d) by bisection to neighbouring floats, each sign from the
    correctly rounded sum (math.fsum): an independent computation of the rate."""
    p = np.maximum(np.asarray(p, dtype=np.float64), PROB_FLOOR)
    d = (1.0 - p) / (k - 1) - p
    lo, hi = 0.0, 1.0
    while True:
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            return lo
        if math.fsum((d / (p + mid * d)).tolist()) > 0:
            lo = mid
        else:
            hi = mid


@pytest.mark.parametrize("n, k, rate, spread", [
    (50, 3, 0.1, 1e3), (300, 10, 0.01, 1e12), (20_000, 10, 1e-3, 1e6), (20_000, 2, 0.05, 1e9),
    (20_000, 100, 0.3, 100.0), (20_000, 10, 0.9, 10.0),
])
def test_fit_noise_rate_is_the_root_of_the_exactly_summed_derivative(n, k, rate, spread):
    # clean labels near p = 0.95, replaced ones near 1 / spread (some at the probability floor)
    rng = np.random.default_rng(n + k)
    p = rng.beta(20, 1, n)
    replaced = rng.random(n) < rate
    p[replaced] = rng.beta(1, spread, replaced.sum())
    rate_found, statistic = fit_noise_rate(p, k)
    exact = _rate_by_exact_bisection(p, k)
    assert 0.0 < exact < 1.0
    assert rate_found == pytest.approx(exact, rel=1e-13, abs=1e-16)
    q = np.maximum(p, PROB_FLOOR)
    ll = lambda r: math.fsum(np.log((1 - r) * q + r * (1 - q) / (k - 1)).tolist())
    assert statistic == pytest.approx(2 * (ll(exact) - ll(0.0)), rel=1e-9, abs=1e-9)


def test_fit_noise_rate_on_real_predictions_is_the_exact_root():
    folder = REALDATA / "cleanlab_label_errors"
    if not folder.is_dir():
        pytest.skip("the published predictions are not here")
    for name in ("cifar10", "cifar100", "20news", "imdb"):
        probs = np.load(folder / name / "pred_probs.npy")
        labels = np.load(folder / name / "labels.npy")
        p = probs[np.arange(labels.shape[0]), labels]
        rate, _ = fit_noise_rate(p, probs.shape[1])
        assert rate == pytest.approx(_rate_by_exact_bisection(p, probs.shape[1]), rel=1e-13, abs=1e-16)


def test_fit_noise_rate_is_zero_when_no_label_is_surprising():
    # every label has p >= 0.5: a replaced label (p (1 - p) / (K - 1) <= 0.5 / 2) never explains
    # one better, so the likelihood falls from rate 0
    assert fit_noise_rate(np.array([0.6, 0.7, 0.95, 0.5]), 3) == (0.0, 0.0)


def _drawn_labels_run(rng, *, n=2000, k=5, scales=(1.0, 2.0, 3.0), replace=0.0):
    """Labels drawn from the model's own probabilities at scale 1 (clean labels, a calibrated
    model), then each epoch's logits multiplied by a growing scale (overconfidence that one
    temperature undoes); optionally a share of labels replaced by a random other class."""
    centre = rng.integers(0, k, n)
    z = rng.normal(0, 1, (n, k))
    z[np.arange(n), centre] += 7.0  # the model is sure (p ~ 0.99) of most samples
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    labels = (p.cumsum(axis=1) > rng.random(n)[:, None]).argmax(axis=1)
    replaced = np.flatnonzero(rng.random(n) < replace)
    labels[replaced] = (labels[replaced] + rng.integers(1, k, replaced.shape[0])) % k
    return build_run("drawn", [epoch(z * s, labels, epoch_no=e) for e, s in enumerate(scales, 1)]), replaced


def test_noise_false_on_clean_labels_with_a_growing_overconfidence():
    run, _ = _drawn_labels_run(np.random.default_rng(5))
    q = label_quality(run)
    assert q.evidence.tested
    assert not q.noise
    assert q.evidence.p_value > q.evidence.level


def test_noise_true_when_labels_are_replaced():
    run, replaced = _drawn_labels_run(np.random.default_rng(5), replace=0.05)
    q = label_quality(run)
    assert q.noise
    assert q.evidence.epoch == 1  # the lowest mean loss: the least overconfident epoch
    # the fitted share is of the order of the replaced one (some replaced labels land on a class
    # the model also gives probability to, so it is lower)
    assert 0.4 * len(replaced) <= q.evidence.count <= 1.2 * len(replaced)


def test_noise_needs_more_than_one_wrong_label():
    # One label the model gives p = 1e-12 among 200 it gives 0.9: the likelihood ratio is large,
    # but the estimated count (~1) is below noise_min_count.
    labels = np.zeros(201, dtype=np.int64)
    rows = np.full((201, 2), [np.log(0.9), np.log(0.1)])
    rows[0] = [np.log(1e-12), 0.0]
    run = build_run("one", [epoch(rows, labels, epoch_no=1), epoch(rows, labels, epoch_no=2)])
    q = label_quality(run)
    assert q.evidence.statistic > 20
    assert q.evidence.count < LabelQualityThresholds().noise_min_count
    assert not q.noise


def test_one_epoch_abstains_but_still_flags():
    run, replaced = _drawn_labels_run(np.random.default_rng(6), scales=(1.0,), replace=0.05)
    q = label_quality(run)
    assert not q.evidence.tested and not q.noise
    assert "one epoch" in q.evidence.reason
    assert q.n_flagged > 0


def test_compact_form_abstains():
    q = label_quality(tiny_run())
    assert not q.evidence.tested and not q.noise
    assert "temperature" in q.evidence.reason


# --------------------------------------------------------------------------- fixture runs


def _truth(name: str) -> dict:
    return json.loads((FIXTURES / name / "truth.json").read_text())


def _known_label_errors(name: str):
    """The wrong validation ids of a fixture run: a list ([] = labels known clean), or None."""
    truth = _truth(name)
    expected = truth.get("expected")
    if isinstance(expected, dict) and "label_errors" in expected:
        return expected["label_errors"]
    if "flipped_labels" in truth:
        return [f["sample_id"] for f in truth["flipped_labels"]]
    if "swapped_samples" in truth:
        return [s["sample_id"] for s in truth["swapped_samples"]]
    return None


def _runs_with_errors():
    out = []
    for path in sorted(FIXTURES.iterdir()):
        if (path / "truth.json").is_file():
            errors = _known_label_errors(path.name)
            if errors:
                out.append(path.name)
    return out


# clean validation labels, from each fixture's description (correct labels, shortcut or overlap)
CLEAN_FIXTURES = ["overconfidence", "healthy", "broad_overfitting", "few_confident_wrong"]


def _clean_runs():
    names = set(CLEAN_FIXTURES)
    for path in FIXTURES.iterdir():
        if (path / "truth.json").is_file() and _known_label_errors(path.name) == []:
            names.add(path.name)
    return sorted(n for n in names if (FIXTURES / n).is_dir())


# Known limits of the noise test, each a run where it is wrong (strict: if it starts passing, say so)
NOISE_MISSED = {"flipval_cancer": "10 flipped labels in 250 binary samples: p = 2.5e-4 > 1e-5"}
NOISE_FALSE_ALARM = {"rule_binary_c": "a region the model never learns looks exactly like flipped labels"}


@pytest.mark.parametrize("name", _runs_with_errors())
def test_flipped_validation_labels_found(name):
    run = load_run(str(FIXTURES / name))
    q = label_quality(run)
    errors = set(_known_label_errors(name))
    flagged = set(run.ids[q.flagged].tolist())
    hits = len(flagged & errors)
    # the runs' own ambiguous samples (digits that look like another digit) are flagged as well
    assert hits / len(flagged) >= 0.8
    assert hits / len(errors) >= 0.85


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=NOISE_MISSED[n]))
                                  if n in NOISE_MISSED else n
                                  for n in _runs_with_errors() if n != "swapped_classes"])
def test_flipped_validation_labels_are_called_noise(name):
    # (a swap confined to two similar classes: see the next test)
    assert label_quality(load_run(str(FIXTURES / name))).noise


def test_swapped_pair_is_listed_but_not_called_noise():
    # 30% of the 3s labelled 8 and of the 8s labelled 3: the model gives the given label 1-10%
    # (3 and 8 look alike), which a label replaced at random among 9 classes does not explain
    # better than clean labels; the list still holds them (test above). Known limit of the test.
    q = label_quality(load_run(str(FIXTURES / "swapped_classes")))
    assert not q.noise


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=NOISE_FALSE_ALARM[n]))
                                  if n in NOISE_FALSE_ALARM else n for n in _clean_runs()])
def test_noise_false_on_clean_label_fixtures(name):
    q = label_quality(load_run(str(FIXTURES / name)))
    assert q.evidence.tested
    assert not q.noise


def test_sample_data():
    # imbalanced: correct labels, 15 samples with features corrupted to look like another class
    assert not label_quality(load_run(str(ROOT / "sample_data" / "imbalanced"))).noise
    # balanced: 15 validation labels flipped (sample_data/README.md)
    assert label_quality(load_run(str(ROOT / "sample_data" / "balanced"))).noise


# --------------------------------------------------------------------------- speed


def test_speed_100_epochs_of_50000_samples():
    n, n_epochs, k = 50_000, 100, 10
    rng = np.random.default_rng(7)
    labels = rng.integers(0, k, n)
    rows = np.arange(n)
    template = load_run(str(FIXTURES / "healthy")).records[0].summary
    records = []
    for e in range(n_epochs):
        pred = np.where(rng.random(n) < 0.9, labels, rng.integers(0, k, n))
        conf = rng.uniform(0.3, 1.0, n)
        tp = np.where(pred == labels, conf, rng.uniform(0.0, 0.3, n))
        stats = SampleStats(loss=-np.log(tp), pred=pred, correct=pred == labels, confidence=conf,
                            true_prob=tp, recal_loss=-0.9 * np.log(tp), recal_confidence=0.95 * conf)
        summary = dataclasses.replace(template, epoch=e + 1, n_samples=n, n_classes=k, loss=float(e))
        records.append(EpochRecord(summary=summary, stats=stats, labels=labels, rows=rows, source="s", kind="logits"))
    run = Run(path="s", records=tuple(records), ids=rows, n_classes=k, class_names=None, notes=())
    label_quality(run)  # warm-up
    start = time.perf_counter()
    label_quality(run)
    # measured 0.16-0.19 s on a 2-core VM; a wide bound keeps a busy CI machine from failing it
    assert time.perf_counter() - start < 1.0


# --------------------------------------------------------------------------- published predictions


def _one_epoch(tmp_path, probs_path, labels_path):
    folder = tmp_path / "set"
    folder.mkdir()
    np.savez(folder / "epoch_1.npz", probs=np.load(probs_path), labels=np.load(labels_path))
    return load_run(str(folder))


def _prf(flagged, errors):
    hits = int((flagged & errors).sum())
    return hits / max(int(flagged.sum()), 1), hits / int(errors.sum())


@pytest.mark.skipif(not REALDATA.is_dir(), reason="shared real-data folder not present")
@pytest.mark.parametrize("name", ["cifar10n_aggre", "cifar10n_worst"])
def test_cifar10n_complete_key(name, tmp_path):
    folder = REALDATA / "label_error_detection_benchmarks" / name
    run = _one_epoch(tmp_path, folder / "pred_probs_resnet18.npy", folder / "labels.npy")
    errors = np.zeros(len(run.ids), dtype=bool)
    errors[json.loads((folder / "label_errors.json").read_text())["label_errors"]] = True
    errors = errors[run.ids.astype(np.int64)]  # over the id table
    q = label_quality(run)
    assert not q.evidence.tested  # one epoch: the evidence test abstains
    p, r = _prf(q.flagged, errors)
    before_p, before_r = _prf(suspect_mask(training_dynamics(run)), errors)
    assert p >= 0.85  # the flags are mostly real errors
    assert 2 * p * r / (p + r) > 2 * before_p * before_r / (before_p + before_r)  # better than the old rule
    # the count: within 35% of the true number of wrong labels (9% and 40% of the labels)
    assert abs(q.n_flagged - errors.sum()) <= 0.35 * errors.sum()


@pytest.mark.skipif(not REALDATA.is_dir(), reason="shared real-data folder not present")
@pytest.mark.parametrize("name", ["cifar10", "mnist", "cifar100", "20news", "imdb"])
def test_reviewed_test_sets_flag_reviewed_rows(name, tmp_path):
    # Source A's key covers only reviewed rows; the flags should be rows people found worth
    # reviewing, and at least a fifth of them verified errors.
    folder = REALDATA / "cleanlab_label_errors" / name
    run = _one_epoch(tmp_path, folder / "pred_probs.npy", folder / "labels.npy")
    key = json.loads((folder / "label_errors.json").read_text())
    q = label_quality(run)
    rows = run.ids[q.flagged].astype(np.int64)
    reviewed = np.isin(rows, key["reviewed_candidates"])
    assert reviewed.mean() >= 0.9
    assert np.isin(rows, key["label_errors"]).mean() >= 0.2
