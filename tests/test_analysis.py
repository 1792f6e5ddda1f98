"""Cross-epoch analysis on hand-built runs whose answer is known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lossacc_cli.analysis.compare import class_stats
from lossacc_cli.analysis.dynamics import suspected_label_errors, training_dynamics
from lossacc_cli.analysis.rise import concentration, decompose
from lossacc_cli.analysis.outliers import loss_distribution, outlier_report
from lossacc_cli.analysis.overview import overview
from lossacc_cli.analysis.run import build_run
from tests.helpers import epoch


def _one_bad_sample_run(permute_b=None, drop_b=None):
    # sample 0 (label 0): p = [.3 .5 .2] at epoch 1 (wrong) -> [1e-6, 1-2e-6, 1e-6] at epoch 2 (wrong)
    # samples 1..9 (label 1): p = [.2 .6 .2] -> [.05 .9 .05] (correct at both, improving)
    a = np.array([[0.3, 0.5, 0.2]] + [[0.2, 0.6, 0.2]] * 9)
    b = np.array([[1e-6, 1 - 2e-6, 1e-6]] + [[0.05, 0.9, 0.05]] * 9)
    labels = np.array([0] + [1] * 9)
    ids = np.array([f"s{i}" for i in range(10)], dtype=object)
    bi, bl, bids = b, labels, ids
    if permute_b is not None:
        bi, bl, bids = b[permute_b], labels[permute_b], ids[permute_b]
    if drop_b is not None:
        keep = np.ones(len(bl), dtype=bool)
        keep[drop_b] = False
        bi, bl, bids = bi[keep], bl[keep], bids[keep]
    e1 = epoch(a, labels, kind="probs", epoch_no=1, ids=ids)
    e2 = epoch(bi, bl, kind="probs", epoch_no=2, ids=bids)
    return build_run("run", [e1, e2])


def _top(run, rise):
    order = np.argsort(-rise.total.per_sample, kind="stable")
    return run.ids[rise.rows[order]]


def test_one_sample_going_bad_is_the_top_responsible_sample():
    # d_0 = -ln 1e-6 + ln .3 = 13.815511 - 1.203973 = 12.611538
    # d_others = -ln .9 + ln .6 = -0.405465 each; D = (12.611538 - 9 * 0.405465) / 10 = 0.896235
    run = _one_bad_sample_run()
    c = decompose(run, 1, 2)
    assert c.n == 10
    assert c.value == pytest.approx(0.8962352, abs=1e-6)
    assert _top(run, c)[0] == "s0"
    assert c.group[0] == 3  # wrong at both
    assert c.total.per_sample[0] == pytest.approx(12.611538, abs=1e-6)
    groups = {g.group: g for g in c.total.groups}
    assert groups["wrong at both"].count == 1
    assert groups["wrong at both"].contribution == pytest.approx(1.2611538, abs=1e-6)
    assert groups["correct at both"].contribution == pytest.approx(-0.3649186, abs=1e-6)
    assert groups["fixed"].count == groups["broken"].count == 0
    assert sum(g.contribution for g in c.total.groups) == pytest.approx(c.value, abs=1e-15)
    assert sum(g.share for g in c.total.groups) == pytest.approx(1.0)
    # only sample 0 changed for the worse: it alone is 50% and 80% of the positive change
    assert [x.count for x in c.total.concentration] == [1, 1]
    assert c.total.concentration[0].loss_to_without == pytest.approx(-math.log(0.9))
    # medians: at a, 9 of 10 losses are -ln .6 ; at b, -ln .9
    assert c.median_change == pytest.approx(math.log(0.6 / 0.9))
    # per class: class 0 carries +1.2611538, class 1 carries -0.3649186
    assert [k.label for k in c.total.classes] == [0, 1]
    assert c.total.classes[0].contribution == pytest.approx(1.2611538, abs=1e-6)
    # class 0 is 10% of the samples and 1.2611538 / 0.8962352 = 140.7% of the rise: 14.07x the average
    assert c.total.classes[0].sample_share == pytest.approx(0.1)
    assert c.total.classes[0].ratio == pytest.approx(1.2611538 / 0.8962352 / 0.1, rel=1e-6)
    stats = class_stats(run, c)
    assert stats[1].accuracy_from == stats[1].accuracy_to == 1.0


def test_comparison_does_not_depend_on_row_order():
    plain = decompose(_one_bad_sample_run(), 1, 2)
    run = _one_bad_sample_run(permute_b=np.array([3, 7, 0, 9, 1, 5, 2, 8, 4, 6]))
    shuffled = decompose(run, 1, 2)
    assert shuffled.value == pytest.approx(plain.value, abs=1e-15)
    assert [g.contribution for g in shuffled.total.groups] == pytest.approx([g.contribution for g in plain.total.groups])
    assert _top(run, shuffled)[0] == "s0"


def test_epochs_in_id_order_are_decomposed_as_shuffled_ones_are_bit_for_bit():
    """Files in id-table order are decomposed without gathering (the epochs' own vectors, read-only);
    the same run with the later file shuffled gathers: the same numbers, bit for bit."""
    rng = np.random.default_rng(5)
    n, k = 500, 5
    labels = rng.integers(0, k, n)
    z1, z2 = rng.normal(size=(n, k)) * 2, rng.normal(size=(n, k)) * 4
    z1[np.arange(n), labels] += 2
    ids = np.array([f"s{i}" for i in range(n)], dtype=object)
    perm = rng.permutation(n)
    first = epoch(z1, labels, epoch_no=1, ids=ids)
    in_order = build_run("r", [first, epoch(z2, labels, epoch_no=2, ids=ids)])
    shuffled = build_run("r", [first, epoch(z2[perm], labels[perm], epoch_no=2, ids=ids[perm])])
    a, b = decompose(in_order, 1, 2), decompose(shuffled, 1, 2)
    assert a.in_order and not b.in_order
    assert not a.labels.flags.writeable and a.labels.base is not None  # a view of the epoch's labels
    assert np.array_equal(a.at_to(in_order.record(2).stats.loss), b.at_to(shuffled.record(2).stats.loss))
    for name in ("value", "loss_from", "loss_to", "recalibrated_from", "recalibrated_to", "median_from",
                 "median_to", "accuracy_from", "accuracy_to"):
        assert getattr(a, name) == getattr(b, name), name
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.group, b.group)
    for pa, pb in zip(a.parts(), b.parts()):
        assert np.array_equal(pa.per_sample, pb.per_sample)
        assert (pa.value, pa.increase, pa.groups, pa.classes, pa.concentration) == (
            pb.value, pb.increase, pb.groups, pb.classes, pb.concentration)
    assert class_stats(in_order, a) == class_stats(shuffled, b)
    same = decompose(in_order, 2, 2)  # one epoch against itself: nothing changes
    assert same.value == 0 and same.median_from == same.median_to
    assert class_stats(in_order, same)[0].loss_from == class_stats(in_order, same)[0].loss_to


def test_ids_missing_from_one_epoch_are_excluded_and_reported():
    run = _one_bad_sample_run(drop_b=[4])
    c = decompose(run, 1, 2)
    assert c.n == 9 and c.n_only_from == 1 and c.n_only_to == 0
    # mean over the 9 common samples: (12.611538 - 8 * 0.405465) / 9
    assert c.value == pytest.approx((12.611538 - 8 * 0.4054651) / 9, abs=1e-6)
    assert any("missing" in n for n in run.notes)


def test_dynamics_by_hand():
    # sample 0 (label 0): predicted class 1 with conf .85 and p[label] .05 at all three epochs -> suspect
    # sample 1 (label 0): correct, wrong, correct -> one forgetting event, fraction correct 2/3
    # sample 2 (label 2): always correct
    p1 = np.array([[0.05, 0.85, 0.1], [0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    p2 = np.array([[0.05, 0.85, 0.1], [0.3, 0.6, 0.1], [0.1, 0.1, 0.8]])
    p3 = np.array([[0.05, 0.85, 0.1], [0.9, 0.05, 0.05], [0.1, 0.1, 0.8]])
    labels = [0, 0, 2]
    run = build_run("r", [epoch(np.log(p), labels, epoch_no=i) for i, p in enumerate((p1, p2, p3), 1)])
    d = training_dynamics(run)
    assert d.forgetting.tolist() == [0, 1, 0]
    assert d.fraction_correct.tolist() == pytest.approx([0, 2 / 3, 1])
    assert d.confidence.tolist() == pytest.approx([0.05, (0.7 + 0.3 + 0.9) / 3, 0.8])
    # population std of [.7 .3 .9]: mean .633333, deviations .066667 -.333333 .266667 -> sqrt(.062222) = .249444
    assert d.variability[1] == pytest.approx(0.249444, abs=1e-6)
    assert d.mode_class.tolist() == [1, 0, 2]
    assert d.mode_fraction.tolist() == pytest.approx([1.0, 2 / 3, 1.0])
    # margins: z = ln p; sample 0: ln .05 - ln .85 = -2.833213 at every epoch
    assert d.mean_margin[0] == pytest.approx(math.log(0.05 / 0.85))
    suspects = suspected_label_errors(run, d)
    assert [(s.id, s.label, s.predicted_as) for s in suspects] == [(0, 0, 1)]
    assert suspects[0].mean_confidence == pytest.approx(0.85)


def test_binary_outlier_is_named_first_with_mean_loss_without_it():
    # 99 samples with logit margin 3 (loss ln(1+e^-3) = .048587) and one at margin -12 (loss 12.000006)
    s = np.full(100, 3.0)
    y = np.ones(100, dtype=np.int64)
    s[42] = -12.0
    run = build_run("r", [epoch(s, y, kind="logit", epoch_no=5)])
    rep = outlier_report(run, run.resolve_epoch("last"))
    assert rep.n_outliers == 1
    assert rep.outliers[0].id == 42
    assert rep.outliers[0].loss == pytest.approx(12.000006, abs=1e-6)
    assert rep.loss_without == pytest.approx(math.log1p(math.exp(-3)))
    assert rep.loss == pytest.approx((99 * math.log1p(math.exp(-3)) + 12.000006) / 100, abs=1e-6)
    assert sum(b.count for b in rep.histogram) == 100


def test_outlier_report_and_loss_distribution_give_the_linear_quantiles_by_hand():
    # 99 losses ln(1+e^-3) and one 12.000006: p99 sits at rank 0.99 * 99 = 98.01, one hundredth of
    # the way from the last small loss to the large one
    s = np.full(100, 3.0)
    s[7] = -12.0
    run = build_run("r", [epoch(s, np.ones(100, dtype=np.int64), kind="logit", epoch_no=2)])
    small, large = math.log1p(math.exp(-3)), 12.0 + math.log1p(math.exp(-12))
    expected = {"p50": small, "p90": small, "p99": small + 0.01 * (large - small), "max": large}
    for q in (outlier_report(run, 2).quantiles, loss_distribution(run, 2).quantiles):
        assert q.keys() == expected.keys()
        for key, value in expected.items():
            assert q[key] == pytest.approx(value, rel=1e-6), key


def test_overview_marks_loss_up_accuracy_up_epochs():
    # epoch 1: all p[label] .6 (acc 1); epoch 2: .9 (min loss); epoch 3: 9 at .99 and one wrong at .01
    labels = [0] * 10
    mk = lambda ps: np.column_stack([ps, 1 - np.asarray(ps)])
    e1 = epoch(mk([0.6] * 10), labels, kind="probs", epoch_no=1)
    e2 = epoch(mk([0.9] * 9 + [0.4]), labels, kind="probs", epoch_no=2)
    e3 = epoch(mk([0.99] * 9 + [0.01]), labels, kind="probs", epoch_no=3)
    run = build_run("r", [e1, e2, e3])
    ov = overview(run.summaries)
    # losses: e1 .510826, e2 (9*.105361 + .916291)/10 = .186453, e3 (9*.010050 + 4.605170)/10 = .469562
    assert ov.best_loss_epoch == 2
    assert ov.diverging == (3,)  # acc 0.9 at both epochs 2 and 3; epoch 1 (acc 1.0) loss higher too
    assert ov.best_accuracy_epoch == 1


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_group_contributions_sum_to_mean_change(n, seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 6))
    labels = rng.integers(0, k, n)
    e1 = epoch(rng.normal(size=(n, k)) * 3, labels, epoch_no=1)
    e2 = epoch(rng.normal(size=(n, k)) * 3, labels, epoch_no=2)
    c = decompose(build_run("r", [e1, e2]), 1, 2)
    for part in c.parts():
        assert sum(g.contribution for g in part.groups) == pytest.approx(part.value, abs=1e-12)
        assert sum(k_.contribution for k_ in part.classes) == pytest.approx(part.value, abs=1e-12)
    assert sum(g.count for g in c.total.groups) == n
    assert c.calibration.value + c.refinement.value == pytest.approx(c.value, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-5, 5, allow_nan=False, allow_subnormal=False), min_size=1, max_size=50))
def test_concentration_sets_are_minimal(changes):
    d = np.array(changes)
    positive = np.sort(np.maximum(d, 0))[::-1]
    total = positive.sum()
    for c in concentration(d):
        if total <= 0:
            assert c.count == 0
            continue
        target = c.fraction * total * (1 - 1e-12)
        assert positive[: c.count].sum() >= target - 1e-12  # enough
        assert positive[: c.count - 1].sum() < target  # and one fewer is not


@pytest.mark.parametrize("kind", ["tail", "diffuse", "ties", "few"])
def test_concentration_equals_the_full_ranking_on_large_populations(kind):
    # the definition written out: every value ranked (largest first, ties in sample order), the
    # running sum of the positive ones, the first k reaching each fraction of its end
    rng = np.random.default_rng(len(kind))
    n = 300_007
    d = {
        "tail": rng.standard_t(1.5, n),  # a few samples carry most of the rise
        "diffuse": rng.normal(0.01, 1.0, n),  # half the samples rise, none by much
        "ties": rng.integers(-3, 4, n).astype(float),
        "few": np.where(rng.random(n) < 1e-3, rng.exponential(size=n), -rng.exponential(size=n)),
    }[kind]
    loss_to = rng.exponential(size=n)
    order = np.argsort(-d, kind="stable")
    cumulative = np.cumsum(np.maximum(d[order], 0.0))
    total = cumulative[-1]
    for c in concentration(d, (0.5, 0.8, 0.95), loss_to=loss_to):
        k = min(int(np.searchsorted(cumulative, c.fraction * total * (1 - 1e-12), side="left")) + 1, n)
        assert c.count == k
        outside = np.ones(n, dtype=bool)
        outside[order[:k]] = False
        assert c.loss_to_without == pytest.approx(loss_to[outside].mean(), rel=1e-12)


def test_id_table_maps_ids_across_epochs_and_keeps_int_and_string_ids_apart():
    from lossacc_cli.analysis.run import _IdTable

    t = _IdTable()
    assert t.rows_for(np.array([5, 3, 9])).tolist() == [0, 1, 2]
    assert t.rows_for(np.array([9, 5, 7])).tolist() == [2, 0, 3]  # 7 is new: row 3
    # the string "3" is not the integer 3
    assert t.rows_for(np.array(["3", "a"], dtype=object)).tolist() == [4, 5]
    assert t.rows_for(np.array(["a", 3, 9], dtype=object)).tolist() == [5, 1, 2]
    assert t.ids.tolist() == [5, 3, 9, 7, "3", "a"]


def test_calibration_report_shows_the_tables_the_summary_measured():
    # epoch 2: confidences .9 (x9, all correct) and 1-2e-6 (wrong): one table pair serves both the
    # summary's ECE variants and the calibration report, so the two can never disagree
    from lossacc_cli.analysis.calibration import calibration_report

    run = _one_bad_sample_run()
    rep = calibration_report(run, 2)
    width, mass = run.record(2).stats.reliability()
    assert rep.equal_width is width and rep.equal_mass is mass
    # equal width: bin 13 holds the nine .9s, all right (gap .1, weight .9), bin 14 the wrong
    # 1-2e-6 (gap 1-2e-6, weight .1): ECE = .09 + (1-2e-6)/10 = .1899998
    assert rep.summary.ece == pytest.approx(0.1899998, abs=1e-9)
    assert rep.summary.adaptive_ece == mass.ece() and rep.summary.mce == width.mce()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ranked_outliers_are_the_full_rankings_prefix(seed):
    """The outlying samples come ranked (largest loss first, ties in file order) from the prefix
    search itself: the same positions, in the same order, as ranking every loss and cutting where
    the running sum reaches half of the total."""
    from lossacc_cli.analysis.outliers import OUTLIER_LOSS_SHARE, ranked_outliers

    rng = np.random.default_rng(seed)
    loss = np.round(rng.exponential(size=20_000) ** 3, 2)  # heavy tail, many ties
    order = np.argsort(-loss, kind="stable")
    running = np.cumsum(loss[order])
    k = int(np.searchsorted(running, OUTLIER_LOSS_SHARE * loss.sum() * (1 - 1e-12))) + 1
    assert ranked_outliers(loss).tolist() == order[:k].tolist()
    assert ranked_outliers(np.zeros(5)).shape == (0,)
