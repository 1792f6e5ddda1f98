"""Diagnosis: each verdict on a run built to have exactly that cause, and no false verdict on a healthy run.

The constructed runs are logits written so the cause is true by construction (comments say how);
the fixtures under tests/fixtures/runs are real training runs (see their truth.json).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lossacc_cli.analysis import diagnosis as dx
from lossacc_cli.analysis.dynamics import training_dynamics
from lossacc_cli.analysis.overview import overview
from lossacc_cli.analysis.run import build_run, load_run
from tests.helpers import epoch

RUNS = Path(__file__).parent / "fixtures" / "runs"


def _diagnose(run, thresholds=dx.Thresholds()):
    best = overview(run.summaries).best_loss_epoch
    return dx.diagnose(run, training_dynamics(run), best, run.records[-1].epoch, thresholds)


def _names(d):
    return [v.name for v in d.verdicts]


def _onehot_logits(labels, k, scale):
    z = np.zeros((len(labels), k))
    z[np.arange(len(labels)), labels] = scale
    return z


def test_overconfidence_scaled_logits():
    # Labels drawn from softmax(z): calibrated at epoch 1. Epochs 2 and 3 multiply the same logits by
    # 1.5 and 3: argmax (accuracy) unchanged, loss rises, and T* = 3 at epoch 3 gives back epoch 1's loss.
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3000, 4)) * 1.5
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    labels = (p.cumsum(1) > rng.random((3000, 1))).argmax(1)
    run = build_run("r", [epoch(z * c, labels, epoch_no=e) for e, c in ((1, 1.0), (2, 1.5), (3, 3.0))])
    d = _diagnose(run)
    assert d.epoch_from == 1 and d.epoch_to == 3
    first = d.verdicts[0]
    assert first.name == dx.OVERCONFIDENCE
    assert first.evidence["recovers_best_loss"] is True
    assert first.evidence["temperature_to"] == pytest.approx(3.0, rel=0.1)
    assert first.explained == pytest.approx(1.0)
    assert dx.TAIL_DRIVEN not in _names(d)
    assert dx.NO_PARADOX not in _names(d)


def _tail_run():
    # 2000 samples, 5 classes, correct with margins 4, 5, 5.2: loss ln(1 + 4 e^-s) = .0707, .0266, .0219.
    # Five samples (one per class) are correct at epochs 1-2 and wrong at epoch 3 with logit 20 on
    # another class (loss ~20): mean loss at epoch 3 = (1995 * .0219 + 5 * 20) / 2000 = .0718 > .0266,
    # and accuracy falls by only 5/2000 = 0.25 points (it "holds").
    labels = np.arange(2000) % 5
    bad = np.array([0, 401, 802, 1203, 1604])
    epochs = []
    for e, s in ((1, 4.0), (2, 5.0), (3, 5.2)):
        z = _onehot_logits(labels, 5, s)
        if e == 3:
            z[bad] = 0.0
            z[bad, (labels[bad] + 1) % 5] = 20.0
        epochs.append(epoch(z, labels, epoch_no=e))
    return build_run("r", epochs), bad


def test_tail_driven_few_samples_going_bad():
    run, bad = _tail_run()
    d = _diagnose(run)
    assert d.epoch_from == 2 and d.epoch_to == 3
    assert d.accuracy_to == pytest.approx(0.9975)
    first = d.verdicts[0]
    assert first.name == dx.TAIL_DRIVEN
    assert first.evidence["samples_80pct"] <= 5
    assert first.evidence["median_loss_to"] < first.evidence["median_loss_from"]
    # wrong only at the last of three epochs: not consistently another class, so not label noise
    assert dx.LABEL_NOISE not in _names(d)
    assert dx.CLASS_SPECIFIC not in _names(d)


def test_no_verdict_explains_enough_gives_inconclusive():
    run, _ = _tail_run()
    d = _diagnose(run, dx.Thresholds(min_explained=1.01))
    assert _names(d) == [dx.INCONCLUSIVE]


def test_label_noise_flipped_samples():
    # 400 samples, 10 classes; 20 (two per class) are labelled y but always predicted y+1 with logit
    # s + 1, s = 5, 6, 7, 8 over four epochs: their loss ln(e^(s+1) + 9) = 6.02 ... 9.0 grows while the
    # others' ln(1 + 9 e^-s) = .059 ... .003 falls; mean (380 * .059 + 20 * 6.02) / 400 = .357 at epoch 1,
    # .371 at epoch 2: the loss rises from epoch 1 while accuracy holds.
    labels = np.arange(400) % 10
    flipped = np.arange(20) * 20 + np.arange(20) % 10  # labels 0..9, twice each
    assert np.bincount(labels[flipped]).tolist() == [2] * 10
    epochs = []
    for e, s in enumerate((5.0, 6.0, 7.0, 8.0), start=1):
        z = _onehot_logits(labels, 10, s)
        z[flipped] = 0.0
        z[flipped, (labels[flipped] + 1) % 10] = s + 1.0
        epochs.append(epoch(z, labels, epoch_no=e))
    d = _diagnose(build_run("r", epochs))
    assert d.verdicts[0].name == dx.LABEL_NOISE
    assert d.verdicts[0].evidence["suspects"] == 20
    assert dx.CLASS_SPECIFIC not in _names(d)


def test_class_specific_swapped_pair():
    # 10 classes x 50; 40% of class 3 labelled 8 and 40% of class 8 labelled 3; the model learns the
    # true classes ever more confidently (margins 4, 6, 8, 10), so the growth sits in classes 3 and 8:
    # swapped loss ln(e^s + 9) = 4.15 -> 10.0, the others' ln(1 + 9 e^-s) = .153 -> .0004;
    # mean (460 * .153 + 40 * 4.15) / 500 = .473 at epoch 1, (460 * .022 + 40 * 6.02) / 500 = .502 at 2.
    true = np.repeat(np.arange(10), 50)
    labels = true.copy()
    threes, eights = np.flatnonzero(true == 3)[:20], np.flatnonzero(true == 8)[:20]
    labels[threes], labels[eights] = 8, 3
    epochs = [epoch(_onehot_logits(true, 10, s), labels, epoch_no=e) for e, s in enumerate((4.0, 6.0, 8.0, 10.0), 1)]
    d = _diagnose(build_run("r", epochs))
    first = d.verdicts[0]
    assert first.name == dx.CLASS_SPECIFIC
    assert sorted(first.evidence["classes"]) == [3, 8]
    assert first.explained == pytest.approx(1.0)
    assert dx.LABEL_NOISE in _names(d)


def test_no_paradox_when_accuracy_falls():
    # epoch 1: all correct with margin 3; epoch 2: 30% of samples now wrong with margin 2
    labels = np.arange(100) % 4
    z1 = _onehot_logits(labels, 4, 3.0)
    z2 = z1.copy()
    z2[:30] = 0.0
    z2[np.arange(30), (labels[:30] + 1) % 4] = 2.0
    d = _diagnose(build_run("r", [epoch(z1, labels, epoch_no=1), epoch(z2, labels, epoch_no=2)]))
    assert d.verdicts[0].name == dx.NO_PARADOX
    assert d.accuracy_to == pytest.approx(0.7)


def test_healthy_run_gets_no_false_verdict():
    labels = np.arange(200) % 4
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(200, 4))
    epochs = [epoch(_onehot_logits(labels, 4, s) + noise, labels, epoch_no=e) for e, s in enumerate((0.5, 1, 2, 3), 1)]
    d = _diagnose(build_run("r", epochs))
    assert _names(d) == [dx.NO_DIVERGENCE]


def test_checkpoint_advice_refine_then_calibrate():
    # effective loss per epoch: L(T*) when the fit is usable, else L at T = 1; the advice is the argmin
    run, _ = _tail_run()
    advice = dx.checkpoint_advice(run)
    effective = {
        s.epoch: (s.loss, 1.0) if s.temperature_at_bound else (s.recalibrated_loss, s.temperature)
        for s in run.summaries
    }
    best_epoch = min(effective, key=lambda e: effective[e][0])
    lowest_raw = min(s.loss for s in run.summaries)
    assert advice.recommended_epoch == best_epoch
    assert advice.recommended_temperature == effective[best_epoch][1]
    assert advice.loss_gain_nats == pytest.approx(lowest_raw - effective[best_epoch][0])
    assert advice.loss_gain_nats >= 0


def test_checkpoint_advice_ignores_temperature_fits_at_the_bound():
    # every sample correct with margin m at each epoch: T* runs to its lower bound (loss -> 0), which
    # must not be recommended; the advice falls back to the lowest raw loss at T = 1
    labels = np.arange(30) % 3
    run = build_run("r", [epoch(_onehot_logits(labels, 3, m), labels, epoch_no=e) for e, m in ((1, 1.0), (2, 2.0))])
    assert all(s.temperature_at_bound for s in run.summaries)
    advice = dx.checkpoint_advice(run)
    assert advice.recommended_epoch == 2 and advice.recommended_temperature == 1.0
    assert advice.best_recalibrated_epoch is None
    assert advice.loss_gain_nats == 0.0


def test_explained_shares_are_fractions():
    for build in (_tail_run,):
        d = _diagnose(build()[0])
        for v in d.verdicts:
            assert np.isnan(v.explained) or 0.0 <= v.explained <= 1.0


# ----------------------------------------------------------------- real training runs (fixtures)

EXPECTED_FIRST = {
    "few_confident_wrong": dx.TAIL_DRIVEN,
    "overconfidence": dx.OVERCONFIDENCE,
    "flipped_labels": dx.LABEL_NOISE,
    "swapped_classes": dx.CLASS_SPECIFIC,
    "healthy": dx.NO_DIVERGENCE,
}


@pytest.mark.parametrize("name", sorted(EXPECTED_FIRST))
def test_training_runs_get_the_right_verdict_first(name):
    truth = json.loads((RUNS / name / "truth.json").read_text())
    assert truth["intended_cause"] == EXPECTED_FIRST[name]  # the fixture says what was done to it
    d = _diagnose(load_run(str(RUNS / name)))
    assert d.verdicts[0].name == EXPECTED_FIRST[name], [(v.name, v.explained) for v in d.verdicts]
    if name == "healthy":
        assert len(d.verdicts) == 1
