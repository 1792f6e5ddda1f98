"""Diagnosis: each finding on a run built to have exactly it, and on one built not to.

The runs here are logits written so that the cause is true (or false) by construction (comments
say how); the training runs under tests/fixtures/runs are checked in test_training_runs.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from lossacc_cli.analysis import causes as c
from lossacc_cli.analysis.checkpoint import checkpoint_advice
from lossacc_cli.analysis.diagnosis import diagnose
from lossacc_cli.analysis.overview import overview
from lossacc_cli.analysis.run import build_run
from lossacc_cli.analysis.thresholds import Thresholds
from lossacc_cli.errors import UsageError
from lossacc_cli.report import analyze_run
from tests.helpers import epoch


def _diagnose(run, *, flagged=None, noise=False, thresholds=Thresholds(), from_epoch=None):
    a = overview(run.summaries).best_loss_epoch if from_epoch is None else from_epoch
    flagged = np.zeros(len(run.ids), dtype=bool) if flagged is None else flagged
    return diagnose(run, a, run.records[-1].epoch, picked=from_epoch is None, flagged_ids=flagged,
                    label_noise_evidence=noise, thresholds=thresholds)


def _onehot_logits(labels, k, scale):
    z = np.zeros((len(labels), k))
    z[np.arange(len(labels)), labels] = scale
    return z


def _calibrated(n, k, seed, spread=1.5):
    """Logits z and labels drawn from softmax(z): a calibrated model at T = 1."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * spread
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    return z, (p.cumsum(1) > rng.random((n, 1))).argmax(1)


def _scaled_run(scales, n=3000, k=4, seed=0):
    # The same logits times a scale per epoch: the argmax (accuracy) never changes; the loss is
    # lowest at scale 1 (the labels were drawn from softmax(z)) and T* = scale brings it back.
    z, labels = _calibrated(n, k, seed)
    return build_run("r", [epoch(z * s, labels, epoch_no=e) for e, s in enumerate(scales, 1)])


# ---------------------------------------------------------------- overconfidence / under-confidence


def test_overconfidence_scaled_logits():
    d = _diagnose(_scaled_run([0.8, 1.0, 1.5, 2.0, 2.5, 3.0]))
    assert (d.from_epoch, d.to_epoch) == (2, 6)
    first = d.first
    assert first.name == c.OVERCONFIDENCE
    assert first.evidence["temperature_to"] == pytest.approx(3.0, rel=0.05)
    # T* = 3 gives back epoch 2's loss: the calibration part is the whole rise (refinement ~ 0)
    assert first.share == pytest.approx(1.0, abs=0.02)
    assert first.evidence["recalibrated_loss_to"] <= first.evidence["loss_from"]
    assert d.names == (c.OVERCONFIDENCE,)


def test_under_confidence_is_never_called_overconfidence():
    # the model grows less confident (scales 1 -> 0.4): the loss rises, T* -> 0.4 < 1 sharpens it back
    d = _diagnose(_scaled_run([1.2, 1.0, 0.8, 0.6, 0.5, 0.4]))
    assert d.first.name == c.UNDER_CONFIDENCE
    assert d.first.evidence["temperature_to"] == pytest.approx(0.4, rel=0.05)
    assert c.OVERCONFIDENCE not in d.names
    assert d.first.share == pytest.approx(1.0, abs=0.02)


# ---------------------------------------------------------------- tail-driven


def _tail_run(bad_logit=20.0):
    # 2000 samples, 5 classes, correct with margins 4, 5, 5.2, 5.3, 5.4, 5.5: loss ln(1 + 4 e^-s).
    # Five samples (one per class) go wrong at the last epoch with logit `bad_logit` on another class
    # (loss ~20): the mean rises from the lowest-loss epoch while accuracy falls by 5/2000 = 0.25 points
    # (it "holds"), the median keeps falling, and no temperature can recover five losses of 20.
    labels = np.arange(2000) % 5
    bad = np.array([0, 401, 802, 1203, 1604])
    epochs = []
    margins = (4.0, 5.0, 5.2, 5.3, 5.4, 5.5)
    for e, s in enumerate(margins, 1):
        z = _onehot_logits(labels, 5, s)
        if e == len(margins):
            z[bad] = 0.0
            z[bad, (labels[bad] + 1) % 5] = bad_logit
        epochs.append(epoch(z, labels, epoch_no=e))
    return build_run("r", epochs), bad


def test_tail_driven_few_samples_going_bad():
    run, bad = _tail_run()
    d = _diagnose(run)
    assert d.first.name == c.TAIL_DRIVEN
    # five equal carriers: four of them make 80% of the summed increases
    assert d.first.evidence["samples_80pct_of_increases"] == 4
    assert set(run.ids[d.rise.rows[d.first.samples]].tolist()) < set(bad.tolist())
    assert d.first.evidence["median_loss_to"] < d.first.evidence["median_loss_from"]
    assert c.OVERCONFIDENCE not in d.names  # recalibration cannot bring five losses of 20 back
    assert c.CLASS_SPECIFIC not in d.names  # one sample per class: no class stands out
    # five carriers: a sample interval can judge them; the curve is smooth, so the rise is real
    assert d.significance.significant


def test_tail_is_not_given_when_the_growth_is_broad():
    d = _diagnose(_scaled_run([0.8, 1.0, 1.5, 2.0, 2.5, 3.0]))
    assert c.TAIL_DRIVEN not in d.names


# ---------------------------------------------------------------- broad overfitting


def test_broad_overfitting_median_rises_and_recalibration_does_not_recover():
    # 600 samples, 4 classes; each epoch adds fresh noise of growing size to a fixed signal: every
    # sample's ranking degrades (the refinement part rises, the median rises) and no single
    # temperature can undo noise. Accuracy falls too, so "no paradox" comes first.
    rng = np.random.default_rng(2)
    labels = np.arange(600) % 4
    signal = _onehot_logits(labels, 4, 3.0)
    epochs = [epoch(signal + rng.normal(size=(600, 4)) * s, labels, epoch_no=e)
              for e, s in enumerate((0.3, 0.2, 0.6, 1.0, 1.4, 1.8, 2.2), 1)]
    d = _diagnose(build_run("r", epochs))
    assert d.names[:2] == (c.NO_PARADOX, c.BROAD_OVERFITTING)
    assert d.rise.median_to > d.rise.median_from
    assert d.rise.refinement.value > 0.5 * d.rise.value
    assert c.OVERCONFIDENCE not in d.names and c.TAIL_DRIVEN not in d.names


# ---------------------------------------------------------------- class-specific


def _class_run():
    # 10 classes x 50, all correct with a margin 4 that holds at every epoch; in class 3, 20 of its
    # 50 samples are predicted as class 5 with a margin growing 0.5 -> 7 (accuracy holds at 96%):
    # the growth sits in class 3
    # (10% of the samples) and is spread over 40% of it. One temperature cannot undo it: raising T
    # lowers those 20 losses but raises the 480 others'.
    labels = np.repeat(np.arange(10), 50)
    drift = np.flatnonzero(labels == 3)[:20]
    epochs = []
    for e, m in enumerate((0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 7.0), 1):
        z = _onehot_logits(labels, 10, 4.0)
        z[drift] = 0.0
        z[drift, 3] = 2.0
        z[drift, 5] = 2.0 + m
        epochs.append(epoch(z, labels, epoch_no=e))
    return build_run("r", epochs)


def test_class_specific_one_class_going_bad():
    d = _diagnose(_class_run())
    first = d.first
    assert first.name == c.CLASS_SPECIFIC
    assert first.classes == (3,)
    assert first.evidence["shares_of_samples"] == [pytest.approx(0.1)]
    assert first.share > 0.9
    assert c.OVERCONFIDENCE not in d.names
    # its 20 carriers are also few (4% of the samples): the same samples, named once, as a class
    assert c.TAIL_DRIVEN not in d.names


def _swapped_run():
    # 10 classes x 50; 40% of class 3 labelled 8 and 40% of class 8 labelled 3; the model learns the
    # true classes ever more confidently (its logits are one-hot times 4 ... 10), so the growth sits
    # in classes 3 and 8. The logits only scale: a temperature gives the whole rise back, so this is
    # overconfidence located in two classes (SPEC §5: the class is its location, not a rival cause).
    true = np.repeat(np.arange(10), 50)
    labels = true.copy()
    threes, eights = np.flatnonzero(true == 3)[:20], np.flatnonzero(true == 8)[:20]
    labels[threes], labels[eights] = 8, 3
    margins = (4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0)
    return build_run("r", [epoch(_onehot_logits(true, 10, s), labels, epoch_no=e) for e, s in enumerate(margins, 1)])


def test_class_is_the_location_of_overconfidence_not_a_rival_cause():
    d = _diagnose(_swapped_run())
    assert d.first.name == c.OVERCONFIDENCE
    assert c.CLASS_SPECIFIC not in d.names


def test_class_specific_needs_a_class_far_above_its_share_of_samples():
    # the tail run's five bad samples are one per class: every class carries about a fifth
    d = _diagnose(_tail_run()[0])
    assert c.CLASS_SPECIFIC not in d.names
    # and a class whose growth is a few samples is a tail, not a class: put all five in class 0
    labels = np.arange(2000) % 5
    bad = np.array([0, 5, 10, 15, 20])  # all label 0
    epochs = []
    for e, s in enumerate((4.0, 5.0, 5.2, 5.3, 5.4, 5.5), 1):
        z = _onehot_logits(labels, 5, s)
        if e == 6:
            z[bad] = 0.0
            z[bad, 1] = 20.0
        epochs.append(epoch(z, labels, epoch_no=e))
    d = _diagnose(build_run("r", epochs))
    assert c.CLASS_SPECIFIC not in d.names and d.first.name == c.TAIL_DRIVEN


# ---------------------------------------------------------------- suspected label noise


def test_label_noise_needs_the_evidence_test_and_the_flagged_samples_to_carry_the_rise():
    run = _swapped_run()
    swapped = np.zeros(len(run.ids), dtype=bool)
    swapped[np.flatnonzero(np.repeat(np.arange(10), 50) == 3)[:20]] = True
    swapped[np.flatnonzero(np.repeat(np.arange(10), 50) == 8)[:20]] = True
    with_evidence = _diagnose(run, flagged=swapped, noise=True)
    assert c.LABEL_NOISE in with_evidence.names
    v = next(v for v in with_evidence.verdicts if v.name == c.LABEL_NOISE)
    assert v.share == pytest.approx(1.0)  # the 40 swapped samples carry every per-sample increase
    assert v.share_of == "summed per-sample increases"
    # the same flags without the evidence that clean labels cannot produce them: no label noise
    assert c.LABEL_NOISE not in _diagnose(run, flagged=swapped, noise=False).names
    # evidence, but the flagged samples do not carry the rise: no label noise either
    elsewhere = np.zeros(len(run.ids), dtype=bool)
    elsewhere[:5] = True
    assert c.LABEL_NOISE not in _diagnose(run, flagged=elsewhere, noise=True).names


def test_inconclusive_names_the_confidently_wrong_samples_that_carry_it():
    # the tail run (losses of 40: T* > 1 at the last epoch) with the tail and broad causes switched
    # off (the refinement part can never be "enough"): nothing accounts for the rise
    run, bad = _tail_run(bad_logit=40.0)
    th = Thresholds(refinement_min_share=2.0)
    flagged = np.zeros(len(run.ids), dtype=bool)
    flagged[bad] = True  # the label-quality flags: another class gets more probability than the label
    d = _diagnose(run, flagged=flagged, thresholds=th)
    assert d.first.name == c.INCONCLUSIVE
    # four of the five carry 80% of the increases; all four are flagged
    assert set(run.ids[d.rise.rows[d.first.samples]].tolist()) < set(bad.tolist())
    assert d.first.samples.shape[0] == 4
    assert "all of them are confidently wrong" in d.first.summary and "mislabeled or atypical" in d.first.summary
    # the same run without flags: inconclusive, and no sample is named as confidently wrong
    plain = _diagnose(run, thresholds=th)
    assert plain.first.name == c.INCONCLUSIVE and plain.first.samples.shape[0] == 0
    assert "confidently wrong" not in plain.first.summary
    # flags on samples that do not carry the rise name nobody either
    elsewhere = np.zeros(len(run.ids), dtype=bool)
    elsewhere[1:6] = True
    assert _diagnose(run, flagged=elsewhere, thresholds=th).first.samples.shape[0] == 0


# ---------------------------------------------------------------- gates


def test_no_paradox_when_accuracy_falls():
    # epoch 1: all correct with margin 3; epoch 2: 30% of samples now wrong with margin 2
    labels = np.arange(100) % 4
    z1 = _onehot_logits(labels, 4, 3.0)
    z2 = z1.copy()
    z2[:30] = 0.0
    z2[np.arange(30), (labels[:30] + 1) % 4] = 2.0
    d = _diagnose(build_run("r", [epoch(z1, labels, epoch_no=1), epoch(z2, labels, epoch_no=2)]))
    assert d.first.name == c.NO_PARADOX
    assert d.rise.accuracy_to == pytest.approx(0.7)


def test_healthy_run_gets_no_false_verdict():
    labels = np.arange(200) % 4
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(200, 4))
    epochs = [epoch(_onehot_logits(labels, 4, s) + noise, labels, epoch_no=e) for e, s in enumerate((0.5, 1, 2, 3), 1)]
    d = _diagnose(build_run("r", epochs))
    assert d.names == (c.NO_DIVERGENCE,)


def _plateau_run(seed, n=3000, n_epochs=30):
    # a fixed model whose logits are scaled by a random factor each epoch (SGD noise moving the
    # whole model): the loss wobbles around a plateau, correlated across samples as real jitter is
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 4
    base = _onehot_logits(labels, 4, 2.0) + rng.normal(size=(n, 4))
    scales = 1.0 + 0.15 * rng.normal(size=n_epochs)
    return build_run("r", [epoch(base * s, labels, epoch_no=e) for e, s in enumerate(scales, 1)])


def test_noisy_plateau_is_no_significant_rise():
    run = _plateau_run(4)
    d = _diagnose(run)
    assert d.to_epoch > d.from_epoch and d.rise.value > 0
    assert d.first.name == c.NO_SIGNIFICANT_RISE
    assert d.conditional
    assert d.significance.low <= 0 <= d.significance.high
    # with N = 3000, the samples alone would call the rise real: the epoch jitter is what it is
    assert d.significance.samples_low > 0


def test_inconclusive_without_common_ids():
    labels = np.arange(10) % 2
    e1 = epoch(_onehot_logits(labels, 2, 1.0), labels, epoch_no=1, ids=np.arange(10))
    e2 = epoch(_onehot_logits(labels, 2, 0.5), labels, epoch_no=2, ids=np.arange(10, 20))
    d = _diagnose(build_run("r", [e1, e2]), from_epoch=1)
    assert d.names == (c.INCONCLUSIVE,)


def test_a_numbered_from_epoch_is_not_picked_but_best_is():
    run = _plateau_run(4)
    default = analyze_run(run).diagnosis
    best = analyze_run(run, from_epoch="best").diagnosis
    # the same epoch given by its number: the user's choice, nothing to correct for
    given = analyze_run(run, from_epoch=default.from_epoch).diagnosis
    assert not given.picked and given.significance.candidates == 1
    assert best.picked and default.picked and best.from_epoch == default.from_epoch
    assert best.significance.candidates == default.significance.candidates > 1


def test_the_from_epoch_is_the_lowest_loss_up_to_the_to_epoch():
    run = _scaled_run([0.8, 1.0, 1.5, 2.0, 2.5, 3.0, 0.9])  # epoch 7 is low again
    assert analyze_run(run, to_epoch=5).diagnosis.from_epoch == 2
    assert analyze_run(run).diagnosis.from_epoch == 2  # epoch 2: the lowest of all (scale 1)
    with pytest.raises(UsageError, match="comes after"):
        analyze_run(run, from_epoch=5, to_epoch=3)


def test_a_to_epoch_at_the_lowest_loss_so_far_is_no_divergence():
    run = _scaled_run([0.8, 1.0, 1.5, 2.0, 2.5, 3.0])
    report = analyze_run(run, to_epoch=2)
    assert report.diagnosis.names == (c.NO_DIVERGENCE,)
    assert "lowest at epoch 2" in report.headline


# ---------------------------------------------------------------- checkpoint


def test_checkpoint_advice_refine_then_calibrate():
    # Three epochs of one calibrated model, the logits scaled by 1.5, 1 and 3 and, at epoch 3, with
    # a little of the signal lost: every epoch's best temperature gives back the calibrated model
    # (L(T*) equal at epochs 1 and 2), epoch 3's L(T*) is worse. Refine-then-calibrate keeps epoch 1
    # (the earliest of the tie) at T* = 1.5; the lowest raw loss is epoch 2's (scale 1).
    z, labels = _calibrated(4000, 4, seed=9)
    noise = np.random.default_rng(1).normal(size=z.shape)
    run = build_run("r", [epoch(z * 1.5, labels, epoch_no=1), epoch(z, labels, epoch_no=2),
                          epoch((z + 0.8 * noise) * 3.0, labels, epoch_no=3)])
    ck = checkpoint_advice(run.summaries, overview(run.summaries))
    assert (ck.epoch, ck.best_loss_epoch) == (1, 2)
    assert ck.temperature == pytest.approx(1.5 * run.summaries[1].temperature, rel=1e-6)  # T* scales with z
    # the gain is what T* takes off the loss of epoch 2 at T = 1: its own L(T*) is epoch 1's
    s2 = run.summaries[1]
    assert ck.gain == pytest.approx(s2.loss - s2.recalibrated_loss, abs=1e-9)
    assert ck.gain >= 0


def test_checkpoint_advice_ignores_temperature_fits_at_the_bound():
    # every sample correct with margin m at each epoch: T* runs to its lower bound (loss -> 0), which
    # must not be recommended; the advice falls back to the lowest raw loss at T = 1
    labels = np.arange(30) % 3
    run = build_run("r", [epoch(_onehot_logits(labels, 3, m), labels, epoch_no=e) for e, m in ((1, 1.0), (2, 2.0))])
    assert all(s.temperature_at_bound for s in run.summaries)
    ck = checkpoint_advice(run.summaries, overview(run.summaries))
    assert ck.epoch == 2 and ck.temperature == 1.0 and not ck.rescale
    assert ck.gain == 0.0


def test_checkpoint_gives_a_cross_fitted_loss():
    run = _scaled_run([0.8, 1.0, 1.5, 2.0, 2.5, 3.0])
    ck = checkpoint_advice(run.summaries, overview(run.summaries))
    # T* fitted on the other half cannot beat the in-sample optimum on the half it is measured on
    assert math.isfinite(ck.loss_crossfit) and ck.loss_crossfit >= ck.loss - 1e-12


# ---------------------------------------------------------------- headline


@pytest.mark.parametrize("build, first, words", [
    (lambda: _scaled_run([0.8, 1.0, 1.5, 2.0, 2.5, 3.0]), c.OVERCONFIDENCE, "overconfidence"),
    (lambda: _scaled_run([1.2, 1.0, 0.8, 0.6, 0.5, 0.4]), c.UNDER_CONFIDENCE, "under-confidence"),
    (lambda: _tail_run()[0], c.TAIL_DRIVEN, "4 samples carry 80% of the per-sample increases"),
    (_class_run, c.CLASS_SPECIFIC, "class 3"),
    (lambda: _plateau_run(4), c.NO_SIGNIFICANT_RISE, "No significant rise"),
])
def test_headline_names_the_cause_and_the_next_step(build, first, words):
    report = analyze_run(build())
    assert report.diagnosis.first.name == first
    assert words in report.headline
    ck = report.checkpoint
    assert f"Keep epoch {ck.epoch}" in report.headline or f"keep epoch {ck.epoch}" in report.headline
    assert report.headline.endswith(".")


def test_shares_of_a_part_partition_it():
    d = _diagnose(_tail_run()[0])
    for part in d.rise.parts():
        assert sum(g.share for g in part.groups) == pytest.approx(1.0)
        assert sum(k.share for k in part.classes) == pytest.approx(1.0)
    assert d.rise.calibration.value + d.rise.refinement.value == pytest.approx(d.rise.value, abs=1e-12)
