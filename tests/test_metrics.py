"""Metrics against hand-computed values (arithmetic in comments) and an independent NumPy reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossacc_cli.metrics.calibration import (
    COUNT_MIN_VALUES,
    bin_index,
    classwise_calibration_error,
    expected_calibration_error,
    reliability_table,
)
from lossacc_cli.metrics.per_sample import (
    MAX_PROB_LOSS,
    from_binary_logit,
    from_binary_prob,
    from_logits,
    from_probs,
    sample_stats,
)
from lossacc_cli.metrics.epoch_summary import median, sorted_quantiles
from lossacc_cli.metrics.summary import chance_baseline, class_prior, summarize_epoch, top_share
from lossacc_cli.metrics.temperature import T_MIN, fit_temperature
from tests.helpers import epoch
from tests.reference import (
    ce_from_logits,
    classwise_ece_loop,
    ece_loop,
    softmax64,
    temperature_grid,
    tolerance,
)

# ---------------------------------------------------------------- hand-computed values


def test_loss_of_two_softmax_rows():
    # -ln 0.9 = 0.1053605, -ln 0.6 = 0.5108256
    probs = np.array([[0.9, 0.1], [0.6, 0.4]])
    s = from_probs(np.array([0, 0]), probs)
    assert s.loss == pytest.approx([0.1053605157, 0.5108256238], abs=1e-9)
    # the same rows as logits (ln p) give the same losses
    s2 = from_logits(np.array([0, 0]), np.log(probs))
    assert s2.loss == pytest.approx([0.1053605157, 0.5108256238], abs=1e-9)
    assert s2.confidence == pytest.approx([0.9, 0.6])


def test_five_point_binary_logit():
    # s = [2, -1, 0, 3, -2], y = [1, 0, 1, 0, 1]
    # y=1: softplus(-s); y=0: softplus(s)
    # ln(1+e^-2)=0.126928, ln(1+e^-1)=0.313262, ln 2=0.693147, ln(1+e^3)=3.048587, ln(1+e^2)=2.126928
    s = np.array([2.0, -1.0, 0.0, 3.0, -2.0])
    y = np.array([1, 0, 1, 0, 1])
    st = from_binary_logit(y, s)
    assert st.loss == pytest.approx([0.126928, 0.313262, 0.693147, 3.048587, 2.126928], abs=1e-6)
    assert st.loss.mean() == pytest.approx(1.2617704, abs=1e-6)  # 6.308852 / 5
    assert st.pred.tolist() == [1, 0, 1, 1, 0]  # s >= 0 is class 1 (s = 0 -> 1)
    assert st.correct.mean() == pytest.approx(0.6)
    # margin z[y] - z[other] with z = [0, s]: [2, 1, 0, -3, -2]
    assert st.margin.tolist() == [2.0, 1.0, 0.0, -3.0, -2.0]


def test_binary_prob_matches_binary_logit():
    s = np.array([2.0, -1.0, 0.0, 3.0, -2.0])
    y = np.array([1, 0, 1, 0, 1])
    p = 1 / (1 + np.exp(-s))
    a, b = from_binary_logit(y, s), from_binary_prob(y, p)
    assert a.loss == pytest.approx(b.loss, abs=1e-12)
    assert a.confidence == pytest.approx(b.confidence, abs=1e-12)
    assert a.pred.tolist() == b.pred.tolist()


def test_imbalanced_prior_entropy_differs_from_ln_k():
    # prior [0.7, 0.2, 0.1]: H = 0.7*0.356675 + 0.2*1.609438 + 0.1*2.302585 = 0.801819; ln 3 = 1.098612
    labels = np.array([0] * 7 + [1] * 2 + [2])
    prior = class_prior(labels, 3)
    assert prior.tolist() == pytest.approx([0.7, 0.2, 0.1])
    b = chance_baseline(prior)
    assert b.loss == pytest.approx(0.801819, abs=1e-6)
    assert b.accuracy == pytest.approx(0.7)
    assert chance_baseline(np.full(4, 0.25)).loss == pytest.approx(math.log(4))


def test_prior_with_an_absent_class_uses_zero_log_zero():
    # prior [0.5, 0, 0.5]: H = ln 2
    b = chance_baseline(class_prior(np.array([0, 2]), 3))
    assert b.loss == pytest.approx(math.log(2))


def test_ece_hand_computed():
    # conf 0.9 (bin 13) x2, both right: gap 0.1; conf 0.6 x2, one right: acc 0.5 gap 0.1.
    # ECE = 0.5*0.1 + 0.5*0.1 = 0.1; MCE = 0.1
    conf = np.array([0.9, 0.9, 0.6, 0.6])
    correct = np.array([True, True, True, False])
    assert expected_calibration_error(conf, correct) == pytest.approx(0.1)
    assert reliability_table(conf, correct).mce() == pytest.approx(0.1)


def test_confidence_of_exactly_one_is_in_the_last_bin():
    table = reliability_table(np.array([1.0, 1.0, 0.5]), np.array([True, False, True]))
    assert table.count[-1] == 2
    assert table.count.sum() == 3
    # last bin: conf 1.0, acc 0.5, gap 0.5, weight 2/3; bin 7 (0.4667 <= 0.5): gap 0.5, weight 1/3
    assert table.ece() == pytest.approx(0.5)


def test_adaptive_ece_hand_computed():
    # sorted conf [.6 .7 | .8 .9], correct by conf: .6->1 .7->1 | .8->0 .9->1
    # bin 0: conf .65 acc 1 gap .35; bin 1: conf .85 acc .5 gap .35 -> ECE .35
    conf = np.array([0.9, 0.8, 0.7, 0.6])
    correct = np.array([1, 0, 1, 1], dtype=bool)
    t = reliability_table(conf, correct, n_bins=2, strategy="quantile")
    assert t.count.tolist() == [2, 2]
    assert t.ece() == pytest.approx(0.35)


def test_reliability_tables_are_computed_once_per_stats_and_follow_a_replaced_confidence():
    # four rows: conf .9 .8 .7 .6 (the top of each), correct 1 0 1 1; with 2 bins the equal-width
    # tables split at .5 (all in the upper bin: conf .75, acc .75) and equal mass at rank 2.
    import dataclasses
    import pickle

    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.6, 0.4]])
    s = from_probs(np.array([0, 0, 0, 0]), probs)
    width, mass = s.reliability(2)
    assert s.reliability(2)[0] is width and s.reliability(2)[1] is mass
    assert width.count.tolist() == [0, 4] and width.accuracy[1] == pytest.approx(0.75)
    assert mass.count.tolist() == [2, 2] and mass.ece() == pytest.approx(0.35)
    assert s.reliability()[0].count.shape == (15,)  # another bin count is its own pair
    # a copy with other confidences gets its own tables, not the memo of the original
    low = dataclasses.replace(s, confidence=np.array([0.55, 0.55, 0.55, 0.55]))
    assert low.reliability(2)[0].confidence[1] == pytest.approx(0.55)
    # the memo travels with the stats to a worker process and back, values intact
    back = pickle.loads(pickle.dumps(s))
    assert back.reliability(2)[1].count.tolist() == [2, 2]


def test_classwise_ece_hand_computed():
    # class 0: p = [.75, .25], both labelled 0: 1/2|1-.75| + 1/2|1-.25| = .5
    # class 1: p = [.25, .75], none labelled 1: 1/2*.25 + 1/2*.75 = .5  -> mean .5
    probs = np.array([[0.75, 0.25], [0.25, 0.75]])
    assert classwise_calibration_error(np.array([0, 0]), probs) == pytest.approx(0.5)


def test_top_share_and_quantiles_by_hand():
    # 100 samples: 99 with loss 1 and one with loss 10: top 1% = 1 sample -> 10 / 109
    loss = np.ones(100)
    loss[37] = 10.0
    assert top_share(loss) == pytest.approx(10 / 109)
    # 150 samples: ceil(1.5) = 2 samples in the top 1%
    loss = np.ones(150)
    loss[:2] = 5.0
    assert top_share(loss) == pytest.approx(10 / 158)
    assert math.isnan(top_share(np.zeros(5)))


def test_loss_quantiles_by_hand():
    # 5 losses: h = 4 q; p50 -> the middle value, p90 -> 3.6: 8 + (16 - 8) 0.6 = 12.8,
    # p99 -> 3.96: 16 - (16 - 8)(1 - 0.96) = 15.68
    ordered = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    assert sorted_quantiles(ordered, [0.5, 0.9, 0.99]) == pytest.approx([4.0, 12.8, 15.68], rel=1e-15)
    assert sorted_quantiles(ordered[:1], [0.5, 0.99]).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("n", [1, 2, 3, 7, 100, 1001, 100_000])
@pytest.mark.parametrize("kind", ["spread", "ties", "infinite", "nan", "zeros", "huge"])
def test_loss_quantiles_are_numpys_bit_for_bit(n, kind):
    # the summary's p50/p90/p99 come from one sorted copy, the rise's medians from a partition;
    # np.quantile (default method) and np.median are the independent computations, NaN where they
    # give NaN (a NaN value, inf - inf)
    rng = np.random.default_rng(n)
    v = rng.exponential(size=n)
    if kind == "ties":
        v = np.round(v, 1)
    elif kind == "infinite":
        v[rng.random(n) < 0.3] = np.inf
    elif kind == "nan":
        v[n // 2] = np.nan
    elif kind == "zeros":
        v = np.where(rng.random(n) < 0.5, -0.0, 0.0)
    elif kind == "huge":
        v = rng.normal(size=n) * 1e300
    for q in ([0.5, 0.9, 0.99], [0.0, 1.0], [0.25, 0.123456789, 0.75]):
        with np.errstate(invalid="ignore"):
            expected = np.quantile(v, q)
            got = sorted_quantiles(np.sort(v), q)
        assert np.array_equal(got, expected, equal_nan=True), (q, got, expected)
    with np.errstate(invalid="ignore"):
        expected_median = np.median(v)
    assert np.array_equal(median(v), expected_median, equal_nan=True), (median(v), expected_median)


def test_median_by_hand():
    assert median(np.array([4.0, 1.0, 2.0, 8.0])) == 3.0  # (2 + 4) / 2
    assert median(np.array([5.0, -1.0, 2.0])) == 2.0
    assert median(np.array([7.5])) == 7.5
    assert np.isnan(median(np.array([1.0, np.nan, 2.0])))
    assert np.isnan(median(np.empty(0)))


def test_top_share_from_the_sorted_losses_is_the_same_number():
    loss = np.random.default_rng(0).exponential(size=10_001) ** 2
    assert top_share(loss, ordered=np.sort(loss)) == top_share(loss)
    k = 101  # ceil(0.01 * 10,001)
    assert top_share(loss) == pytest.approx(np.sort(loss)[-k:].sum() / loss.sum(), rel=1e-13)


def test_summary_of_a_tiny_epoch_by_hand():
    # labels [0, 1, 1], probs rows: [.8 .2], [.3 .7], [.6 .4]
    # losses: -ln .8 = .223144, -ln .7 = .356675, -ln .4 = .916291; mean .498703
    # preds [0, 1, 0]; acc 2/3; conf [.8, .7, .6], mean .7; gap .7 - .6667 = .0333
    probs = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    s = summarize_epoch(e := epoch(probs, [0, 1, 1], kind="probs"), sample_stats(e))
    assert s.loss == pytest.approx(0.498703, abs=1e-6)
    assert s.accuracy == pytest.approx(2 / 3)
    assert s.loss_p50 == pytest.approx(0.356675, abs=1e-6)
    assert s.loss_max == pytest.approx(0.916291, abs=1e-6)
    assert s.overconfidence_gap == pytest.approx(0.7 - 2 / 3)
    # prior [1/3, 2/3]: H = 1/3 ln 3 + 2/3 ln 1.5 = .366204 + .270310 = .636514
    assert s.baseline_loss == pytest.approx(0.636514, abs=1e-6)
    assert s.information_gain == pytest.approx(1 - 0.498703 / 0.636514, abs=1e-5)
    assert s.chance_accuracy == pytest.approx(2 / 3)


def test_loss_above_baseline_gives_negative_information_gain():
    # balanced binary, every sample gets p[label] = 0.4: loss -ln .4 = .9163 > ln 2 = .6931
    probs = np.array([[0.4, 0.6], [0.6, 0.4]])
    e = epoch(probs, [0, 1], kind="probs")
    s = summarize_epoch(e, sample_stats(e))
    assert s.loss > s.baseline_loss
    assert s.information_gain == pytest.approx(1 - 0.916291 / 0.693147, abs=1e-5)


# ---------------------------------------------------------------- edge cases


def test_zero_probability_is_clipped_at_float64_eps_whatever_the_dtype():
    for dtype in (np.float16, np.float32, np.float64):
        probs = np.array([[1.0, 0.0], [0.5, 0.5]], dtype=dtype)
        s = from_probs(np.array([1, 0]), probs)
        assert s.loss[0] == pytest.approx(-math.log(2.220446049250313e-16))
        assert s.loss[0] == pytest.approx(36.0437, abs=1e-4)
        assert s.loss[0] == MAX_PROB_LOSS
        assert s.n_clipped == 1 and s.clipped.tolist() == [True, False]


def test_ties_predict_the_first_index():
    s = from_logits(np.array([1, 0]), np.array([[1.0, 1.0, 0.0], [2.0, 5.0, 5.0]]))
    assert s.pred.tolist() == [0, 1]
    assert s.correct.tolist() == [False, False]
    assert s.margin.tolist() == [0.0, -3.0]
    p = from_probs(np.array([1]), np.array([[0.4, 0.4, 0.2]]))
    assert p.pred.tolist() == [0]


def test_single_sample_and_all_correct_epoch():
    e = epoch(np.array([[3.0, 0.0, 0.0]]), [0])
    s = summarize_epoch(e, sample_stats(e))
    assert s.n_samples == 1 and s.accuracy == 1.0
    expected = math.log(1 + 2 * math.exp(-3))  # = 0.094847
    assert s.loss == pytest.approx(expected)
    assert s.loss_p50 == s.loss_p99 == s.loss_max == pytest.approx(expected)
    assert s.top1pct_share == pytest.approx(1.0)
    # all correct with positive margins: loss keeps falling as T -> 0, so T* sits at the lower bound
    assert s.temperature == T_MIN and s.temperature_at_bound
    assert s.recalibrated_loss <= s.loss


def test_k2_via_one_logit_equals_two_logits():
    rng = np.random.default_rng(3)
    s = rng.normal(size=200) * 3
    y = rng.integers(0, 2, 200)
    one = from_binary_logit(y, s)
    two = from_logits(y, np.column_stack([np.zeros_like(s), s]))
    assert one.loss == pytest.approx(two.loss, abs=1e-12)
    assert one.pred.tolist() == two.pred.tolist()
    assert one.confidence == pytest.approx(two.confidence, abs=1e-12)
    assert one.margin == pytest.approx(two.margin, abs=1e-12)
    a = summarize_epoch(e1 := epoch(s, y, kind="logit"), sample_stats(e1))
    b = summarize_epoch(e2 := epoch(np.column_stack([np.zeros_like(s), s]), y), sample_stats(e2))
    for field in ("loss", "ece", "adaptive_ece", "classwise_ece", "temperature", "recalibrated_loss"):
        assert getattr(a, field) == pytest.approx(getattr(b, field), rel=1e-9), field


def test_extreme_logits_do_not_overflow():
    z = np.array([[1000.0, -1000.0], [-1000.0, 1000.0]])
    s = from_logits(np.array([0, 0]), z)
    assert s.loss == pytest.approx([0.0, 2000.0])
    assert np.isfinite(s.loss).all()
    b = from_binary_logit(np.array([1, 0]), np.array([-800.0, -800.0]))
    assert b.loss == pytest.approx([800.0, 0.0])


# ---------------------------------------------------------------- cross-checks on random data


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("n,k", [(1, 3), (257, 2), (3000, 10), (400, 1000)])
def test_logit_path_matches_reference(dtype, n, k):
    rng = np.random.default_rng(n * 7 + k)
    logits = (rng.normal(size=(n, k)) * 4).astype(dtype)
    labels = rng.integers(0, k, n)
    ref_loss, ref_p = ce_from_logits(labels, logits)
    s = from_logits(labels, logits)
    tol = tolerance(dtype)  # float16/32 scores are reduced in float32: 1e-6, float64: 1e-12
    assert (np.abs(s.loss - ref_loss) <= tol * (1 + ref_loss)).all()
    np.testing.assert_array_equal(s.pred, np.asarray(logits, np.float64).argmax(axis=1))
    np.testing.assert_allclose(s.confidence, ref_p.max(axis=1), rtol=tol)
    true_p = ref_p[np.arange(n), labels]
    assert (np.abs(s.true_prob - true_p) <= 2 * tol * true_p * (1 + ref_loss)).all()
    e = epoch(logits, labels)
    summary = summarize_epoch(e, s)
    ece, mce = ece_loop(ref_p.max(axis=1), ref_p.argmax(axis=1) == labels)
    assert summary.ece == pytest.approx(ece, abs=tol)
    assert summary.mce == pytest.approx(mce, abs=tol)
    assert summary.classwise_ece == pytest.approx(classwise_ece_loop(labels, ref_p), abs=max(tol, 1e-9))
    assert summary.loss == pytest.approx(ref_loss.mean(), rel=tol)
    assert summary.loss_p99 == pytest.approx(np.percentile(ref_loss, 99), rel=tol)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_prob_path_matches_reference(dtype):
    rng = np.random.default_rng(11)
    p = softmax64(rng.normal(size=(500, 7)) * 3).astype(dtype)
    y = rng.integers(0, 7, 500)
    s = from_probs(y, p)
    p64 = p.astype(np.float64)
    ref = -np.log(np.maximum(p64[np.arange(500), y], np.finfo(np.float64).eps))
    np.testing.assert_allclose(s.loss, ref, rtol=1e-13)
    e = epoch(p, y, kind="probs")
    summary = summarize_epoch(e, s)
    assert summary.classwise_ece == pytest.approx(classwise_ece_loop(y, p64), abs=1e-9)
    assert summary.ece == pytest.approx(ece_loop(p64.max(1), p64.argmax(1) == y)[0], abs=1e-12)


@pytest.mark.parametrize("scale", [0.3, 1.0, 5.0])
def test_temperature_matches_brute_force_grid(scale):
    rng = np.random.default_rng(int(scale * 10))
    logits = rng.normal(size=(600, 5)) * scale
    labels = np.where(rng.random(600) < 0.6, logits.argmax(1), rng.integers(0, 5, 600))
    fit = fit_temperature(labels, logits)
    t_ref, l_ref = temperature_grid(labels, logits)
    assert fit.temperature == pytest.approx(t_ref, rel=1e-4)
    assert fit.recalibrated_loss == pytest.approx(l_ref, abs=1e-9)
    assert fit.recalibrated_loss <= fit.loss
    assert fit.loss == pytest.approx(ce_from_logits(labels, logits)[0].mean(), rel=1e-12)


def test_temperature_of_a_calibrated_model_is_one():
    # Labels drawn from the model's own softmax: the model is calibrated, so T* ~ 1.
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(40000, 4)) * 2
    p = softmax64(logits)
    labels = (p.cumsum(1) > rng.random((40000, 1))).argmax(1)
    assert fit_temperature(labels, logits).temperature == pytest.approx(1.0, abs=0.05)


def test_temperature_from_float16_probabilities():
    rng = np.random.default_rng(9)
    logits = rng.normal(size=(300, 6)) * 6
    labels = rng.integers(0, 6, 300)
    probs = softmax64(logits).astype(np.float16)
    e = epoch(probs, labels, kind="probs")
    s = summarize_epoch(e, sample_stats(e))
    z = np.log(np.maximum(probs.astype(np.float64), np.finfo(np.float64).eps))
    t_ref, l_ref = temperature_grid(labels, z)
    assert s.temperature == pytest.approx(t_ref, rel=1e-4)
    # float16 scores are reduced in float32: L(T*) within the float32 contract
    assert s.recalibrated_loss == pytest.approx(l_ref, abs=tolerance(probs.dtype) * (1 + l_ref))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_near_certain_row_keeps_its_tiny_loss(dtype):
    # loss = ln(1 + e^-50) = 1.93e-22: ln(sum of exps) rounds it to 0 in float64; log1p of the
    # other classes' share keeps it (the top's own term is never added to them).
    s = from_logits(np.array([0, 1]), np.array([[0.0, -50.0], [0.0, -50.0]], dtype=dtype))
    assert s.loss[0] == pytest.approx(np.exp(-50.0), rel=1e-6)
    assert s.loss[1] == pytest.approx(50.0, rel=1e-12)
    assert s.confidence[0] == 1.0 - np.exp(-50.0)  # 1 in float64


def test_scores_near_the_float32_limit_match_the_float64_reference():
    # float32 differences overflow for scores of +-3e38; those blocks are redone in float64.
    labels = np.array([0, 0, 1])
    z = np.array([[3e38, -3e38, 0.0], [-3e38, 3e38, 1.0], [0.0, 1.0, 2.0]], dtype=np.float32)
    s = from_logits(labels, z)
    ref_loss, ref_p = ce_from_logits(labels, z)
    np.testing.assert_allclose(s.loss, ref_loss, rtol=1e-12)
    assert s.loss[1] == pytest.approx(6e38, rel=1e-6)
    np.testing.assert_allclose(s.confidence, ref_p.max(axis=1), rtol=1e-12)
    z64 = z.astype(np.float64)
    np.testing.assert_array_equal(s.margin[:2], [z64[0, 0] - 0.0, z64[1, 0] - z64[1, 1]])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(-3.0, 1e300, allow_nan=False), min_size=1, max_size=50),
       st.integers(1, 40))
def test_bin_index_is_the_binary_search(values, n_bins):
    # arithmetic binning with one correction each way equals searchsorted, edges included
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    v = np.concatenate([values, edges, np.nextafter(edges, 2.0), np.nextafter(edges, -1.0)])
    expected = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, n_bins - 1)
    np.testing.assert_array_equal(bin_index(v, edges), expected)
    # the same values among many (counted, not computed): the same bins
    many = np.resize(v, max(v.size, COUNT_MIN_VALUES))
    np.testing.assert_array_equal(bin_index(many, edges)[: v.size], expected)


def _mass_bins_by_stable_sort(conf, n_bins):
    """Equal-mass bins written out: stable sort, array_split of the ranks."""
    order = np.argsort(conf, kind="stable")
    bins = np.empty(conf.size, dtype=np.int64)
    for b, part in enumerate(np.array_split(order, min(n_bins, conf.size))):
        bins[part] = b
    return bins


def _tied_confidences(max_size: int):
    """Confidences with many exact ties (0, 0.5 and 1.0 are common)."""
    return st.lists(st.sampled_from([0.0, 0.1, 0.5, 0.5, 0.9, 1.0]) | st.floats(0, 1), min_size=1,
                    max_size=max_size)


@settings(max_examples=300, deadline=None)
@given(_tied_confidences(80), st.integers(1, 20))
def test_equal_mass_bins_are_the_stable_sort_cut(values, n_bins):
    # many exact ties (a confidence of 1.0 is common): ties go to bins in sample order
    conf = np.array(values)
    correct = np.arange(conf.size) % 3 == 0
    t = reliability_table(conf, correct, n_bins=n_bins, strategy="quantile")
    bins = _mass_bins_by_stable_sort(conf, n_bins)
    nb = min(n_bins, conf.size)
    np.testing.assert_array_equal(t.count, np.bincount(bins, minlength=nb))
    for b in range(nb):
        inside = bins == b
        assert t.confidence[b] == pytest.approx(conf[inside].mean(), rel=1e-12)
        assert t.accuracy[b] == pytest.approx(correct[inside].mean(), rel=1e-12)
        assert (t.lower[b], t.upper[b]) == (conf[inside].min(), conf[inside].max())


@settings(max_examples=300, deadline=None)
@given(_tied_confidences(200), st.integers(1, 20))
def test_equal_mass_bin_of_every_sample_is_the_stable_sort_cut(values, n_bins):
    from lossacc_cli.metrics.calibration import _rank_bins, equal_mass_groups

    conf = np.array(values)
    starts, sizes = equal_mass_groups(conf.size, n_bins)
    bins, lower, upper = _rank_bins(conf, starts, sizes)
    np.testing.assert_array_equal(bins, _mass_bins_by_stable_sort(conf, n_bins))
    ranked = np.sort(conf)
    np.testing.assert_array_equal(lower, ranked[starts])
    np.testing.assert_array_equal(upper, ranked[starts + sizes - 1])


@pytest.mark.parametrize("n_cuts", [1, 14, 64, 65])
@pytest.mark.parametrize("strict", [True, False])
def test_counting_the_cuts_below_is_the_binary_search(n_cuts, strict):
    # several blocks of values (NaN, infinities, the cuts themselves and their neighbours), tied
    # cuts, and a count beyond which the cuts are searched: always searchsorted's answer
    from lossacc_cli.metrics.calibration import COUNT_BLOCK, cuts_below

    rng = np.random.default_rng(n_cuts)
    cuts = np.sort(np.round(rng.random(n_cuts), 1))  # rounding ties some cuts
    v = np.concatenate([rng.random(2 * COUNT_BLOCK + 17), cuts, np.nextafter(cuts, 2.0),
                        np.nextafter(cuts, -1.0), [np.nan, np.inf, -np.inf, -0.0]])
    rng.shuffle(v)
    side = "left" if strict else "right"
    got = cuts_below(v, cuts, strict=strict)
    assert got.dtype == np.intp
    np.testing.assert_array_equal(got, np.searchsorted(cuts, v, side=side))
    with_nan = np.append(cuts, np.nan)  # a NaN cut (NaN confidences at a cut rank): searched
    np.testing.assert_array_equal(cuts_below(v, with_nan, strict=strict),
                                  np.searchsorted(with_nan, v, side=side))


@pytest.mark.parametrize("n", [10, 3 * COUNT_MIN_VALUES])
@pytest.mark.parametrize("edges", [np.geomspace(1e-6, 40.0, 41),
                                   np.array([0.0, 1e-3, 1e-2, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, np.inf])])
def test_clipped_bins_of_any_increasing_edges_are_the_clipped_binary_search(n, edges):
    # the loss charts' log-spaced edges and the histogram's (open at infinity): losses of 0, the
    # edges themselves, beyond the last edge and infinite land where searchsorted puts them
    from lossacc_cli.metrics.calibration import clipped_bins

    rng = np.random.default_rng(n)
    v = np.concatenate([rng.exponential(2.0, n), edges[np.isfinite(edges)], [0.0, 1e-9, 1e3, np.inf]])
    expected = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, edges.size - 2)
    np.testing.assert_array_equal(clipped_bins(v, edges), expected)


def test_equal_mass_bins_of_a_large_tied_epoch_are_the_stable_sort_cut():
    # 200,000 confidences, half exactly 1.0 and many repeated float32 values, over several blocks
    from lossacc_cli.metrics.calibration import _rank_bins, equal_mass_groups

    rng = np.random.default_rng(7)
    conf = rng.beta(5, 1, 200_000).astype(np.float32).astype(np.float64)
    conf[rng.random(conf.size) < 0.5] = 1.0
    starts, sizes = equal_mass_groups(conf.size, 15)
    bins, _, _ = _rank_bins(conf, starts, sizes)
    np.testing.assert_array_equal(bins, _mass_bins_by_stable_sort(conf, 15))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tied_logits_give_a_plain_zero_margin_and_a_shared_confidence(dtype):
    # z[label] - max_{k != label} z_k = 0 on a tie, +0.0 (printed "0", never "-0")
    s = from_logits(np.array([0, 1]), np.array([[2.0, 2.0, 2.0], [1.0, 1.0, 0.0]], dtype=dtype))
    np.testing.assert_array_equal(s.margin, [0.0, 0.0])
    assert not np.signbit(s.margin).any()
    np.testing.assert_allclose(s.confidence, [1 / 3, 1 / (2 + np.exp(-1.0))], rtol=1e-7)
    np.testing.assert_array_equal(s.pred, [0, 0])  # the first of the tied classes


@pytest.mark.parametrize("n", [4, COUNT_MIN_VALUES])
def test_bin_index_of_nan_and_infinities_is_the_binary_search(n):
    edges = np.linspace(0.0, 1.0, 16)
    v = np.resize([np.nan, np.inf, -np.inf, 0.5], n)
    expected = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, 14)
    np.testing.assert_array_equal(bin_index(v, edges), expected)


def test_class_wise_hits_follow_their_entry_at_the_first_edge():
    # p[label] within float32 rounding of 1/15: wherever the entry's bin is decided, its hit goes
    # to the same bin (one row: the class-wise ECE is then the reference's, to rounding)
    rng = np.random.default_rng(0)
    y = np.array([1])
    for _ in range(150):
        b = np.float32(rng.uniform(-3, 1))
        a0 = np.float32(np.log((1 + np.exp(np.float64(b))) / 14))
        for i in range(-4, 5):
            z = np.array([[0.0, a0 + np.float32(i) * np.spacing(a0), b]], dtype=np.float32)
            summary = summarize_epoch(epoch(z, y), from_logits(y, z))
            assert summary.classwise_ece == pytest.approx(classwise_ece_loop(y, softmax64(z)), abs=1e-6)


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_big_endian_scores_are_reduced_like_native_ones(byteorder):
    rng = np.random.default_rng(4)
    z = (rng.normal(size=(50, 6)) * 3).astype(np.float32)
    y = rng.integers(0, 6, 50)
    a = from_logits(y, z)
    b = from_logits(y, z.astype(np.dtype(np.float32).newbyteorder(byteorder)))
    assert np.array_equal(a.loss, b.loss) and np.array_equal(a.confidence, b.confidence)
