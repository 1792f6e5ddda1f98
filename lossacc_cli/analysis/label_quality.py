"""Label quality across epochs: which labels the model's evidence contradicts, how many labels are
likely wrong, and whether there are more of them than clean labels would produce (SPEC §5).

Per sample, the probabilities of every epoch are averaged (after dividing each epoch's scores by its
own fitted temperature, so that a late, overconfident epoch does not outweigh an early one):
``p_label`` for the label and ``p_other`` for the other class the sample is most often predicted as.
What is kept per sample and epoch is the prediction, p[label] and the top-label probability, so
``p_other`` counts only the epochs in which that class is on top (a lower bound of its mean).

The count follows confident learning (Northcutt, Jiang and Chuang 2021): a sample labelled i counts
as class j when its mean probability of j reaches the mean self-confidence of class j (the mean
p[label] of the samples labelled j), and the share of such disagreements among the samples of class
i that count as some class estimates the share of wrong labels in class i. The flagged samples are
that many samples with the lowest score.

"Suspected label noise" needs more: at the least overfitted epoch (the lowest mean loss), with the
scores temperature-scaled, a likelihood-ratio test of "clean labels" against "a share of the labels
replaced by another class" (see :func:`noise_evidence`), and flagged samples that were mostly never
learned (a wrong label is contradicted from the first epochs on; a sample first learned and then
lost is a hard or unrepresentable one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lossacc_cli.analysis.align import in_id_order
from lossacc_cli.analysis.run import EpochRecord, Run
from lossacc_cli.metrics.per_sample import PROB_FLOOR


@dataclass(frozen=True)
class LabelQualityThresholds:
    """Every number the label-quality rule and its evidence test use."""

    class_threshold_scale: float = 1.0
    """A sample counts as another class j when its mean p_j is at least this times class j's mean
    self-confidence. 1 is confident learning's threshold: as sure of j as a typical sample
    labelled j is of its own label, whatever the model's overall confidence."""

    temperature_scaled: bool = True
    """Average the probabilities after dividing each epoch's scores by its own T*: a late,
    overconfident epoch then weighs no more than an early one (raw probabilities when False, and
    always for the compact per-sample form, which has no scores to rescale)."""

    noise_level: float = 1e-5
    """The evidence test's p-value must be at most this. Strict, because its null (one temperature
    makes the model calibrated) holds only roughly; on the clean-label runs tried the least p-value
    was 9e-5 (features corrupted to look like another class, which no test on predictions can tell
    from a flipped label), on flipped-label runs the largest 2e-10."""

    noise_min_count: float = 3.0
    """... and the estimated number of wrong labels at least this: noise is a rate, and one or two
    confidently wrong samples (a single outlier gives a large likelihood ratio) are a tail to
    inspect, not a rate."""

    noise_never_learned: float = 0.5
    """... and at least this share of the flagged samples never learned: never predicted as their
    label with p[label] >= 0.5 at any epoch. A wrong label is contradicted from the first epochs on
    (the model learns the sample's true class like any other); a sample the model first gets right
    and later loses is what a model that cannot represent part of the task, or an overconfident
    one, produces on clean labels (seen on a rule-generated binary task, where the flagged samples
    start at p[label] 0.8)."""


@dataclass(frozen=True)
class NoiseEvidence:
    """The evidence test for "suspected label noise".

    At ``epoch`` (the least overfitted one) the null is "clean labels, the scores divided by the
    epoch's T*"; the alternative, "a share ``rate`` of the labels replaced by one of the other K - 1
    classes at random", ``P(label_i) = (1 - rate) p_i + rate (1 - p_i) / (K - 1)``, with p_i the
    label's probability at T* or at T = 1 (a T* fitted on noisy labels absorbs part of the noise);
    at T = 1 it is charged the log-likelihood T* gains. ``rate`` is fitted by maximum likelihood,
    ``statistic`` is twice the log-likelihood ratio of the better alternative, and ``p_value`` =
    2 x P(chi2_1 >= statistic) / 2 (half: the null sits on the boundary; 2: two alternatives).
    ``count`` = rate x N, the wrong labels the test estimates (0 expected from clean labels).
    ``tested`` is False, with the ``reason``, when the test abstains (one epoch, or no scores to
    temperature-scale); the numbers are then NaN.
    """

    tested: bool
    reason: str
    epoch: int | None
    n_samples: int
    rate: float
    count: float
    statistic: float
    p_value: float
    level: float
    min_count: float

    @property
    def noise(self) -> bool:
        return bool(self.tested and self.p_value <= self.level and self.count >= self.min_count)


@dataclass(frozen=True, eq=False)
class LabelQuality:
    """Per-sample label quality over the run's id table (arrays of shape (n_ids,)).

    Attributes
    ----------
    score : float64
        ``(1 + p_label - p_other) / 2`` in [0, 1]: lower means more likely mislabeled; below 0.5 the
        model puts more probability on ``other_class`` than on the label. For a sample never
        predicted as another class ``p_other`` is taken as 0 (its runner-up is not kept), so its
        score, in [0.5, 1], is an upper bound; flags never depend on it.
    likely_class : int64
        The class the evidence points to: ``other_class`` when ``p_other > p_label``, else the label.
    other_class : int64
        The class other than the label that the sample is most often predicted as (the smallest on
        ties); -1 when it is always predicted as its label.
    p_label, p_other : float64
        Mean temperature-scaled probability of the label, and of ``other_class`` (epochs where
        another class is on top count 0), in [0, 1]. Raw probabilities when ``calibrated`` is False.
    other_fraction : float64
        Fraction of the sample's epochs in which it is predicted as ``other_class``.
    n_epochs : int64
        Epochs in which the sample is present.
    labels : int64
        The label (from the first epoch the sample appears in).
    confident : bool
        Counted as ``other_class`` by the class thresholds (a confident disagreement).
    flagged : bool
        The ``n_flagged`` samples with the lowest score: the list of likely label issues.
    class_thresholds : float64, shape (K,)
        Mean ``p_label`` of the samples labelled k (NaN for a class without samples).
    n_estimated : float
        Estimated number of wrong labels (the flagged count before rounding and capping).
    calibrated : bool
        Whether the probabilities are temperature-scaled (False for the compact per-sample form).
    evidence : NoiseEvidence
        The test behind ``noise``.
    learned : bool
        Predicted as its label with p[label] >= 0.5 at some epoch.
    flagged_order : int64, shape (n_flagged,)
        The flagged rows, lowest score first (ties in id-table order): :meth:`flagged_rows`.
    """

    score: np.ndarray
    likely_class: np.ndarray
    other_class: np.ndarray
    p_label: np.ndarray
    p_other: np.ndarray
    other_fraction: np.ndarray
    n_epochs: np.ndarray
    labels: np.ndarray
    confident: np.ndarray
    flagged: np.ndarray
    class_thresholds: np.ndarray
    n_estimated: float
    calibrated: bool
    evidence: NoiseEvidence
    learned: np.ndarray
    flagged_order: np.ndarray
    never_learned_needed: float = 0.5

    @property
    def noise(self) -> bool:
        """True only when the evidence test finds more wrong labels than clean labels produce and
        the flagged samples were mostly never learned."""
        return self.evidence.noise and self.never_learned_share >= self.never_learned_needed

    @property
    def never_learned_share(self) -> float:
        """Share of the flagged samples never predicted as their label with p[label] >= 0.5."""
        n = int(self.flagged.sum())
        return float((~self.learned[self.flagged]).sum() / n) if n else 0.0

    @property
    def n_flagged(self) -> int:
        return int(self.flagged.sum())

    def flagged_rows(self) -> np.ndarray:
        """Rows of the id table that are flagged, lowest score (most suspicious) first (ties in
        id-table order)."""
        return self.flagged_order


def _p_label(record: EpochRecord, calibrated: bool) -> np.ndarray:
    """p[label] of one epoch, temperature-scaled when asked (and the epoch's fit is usable: not at
    a search bound)."""
    st = record.stats
    return np.exp(-st.recal_loss) if _scaled(record, calibrated) else st.true_prob


def _p_top(record: EpochRecord, calibrated: bool) -> np.ndarray:
    """The top-label probability of one epoch, scaled as :func:`_p_label` is."""
    st = record.stats
    return st.recal_confidence if _scaled(record, calibrated) else st.confidence


def _scaled(record: EpochRecord, calibrated: bool) -> bool:
    return calibrated and record.summary.fit_usable


_BINCOUNT_MAX = 1 << 22
"""Up to this many (sample, class) cells the modal class is counted in one table (32 MiB)."""


def _modal_class(rows: np.ndarray, classes: np.ndarray, n_ids: int, n_classes: int):
    """Most frequent class per sample among the (row, class) pairs, the smallest on ties, and its
    count; -1 and 0 for a sample without a pair."""
    mode = np.full(n_ids, -1, dtype=np.int64)
    count = np.zeros(n_ids, dtype=np.int64)
    if rows.shape[0] == 0:
        return mode, count
    if bool((rows[1:] > rows[:-1]).all()):  # one pair per sample (one epoch): it is the mode
        mode[rows] = classes
        count[rows] = 1
        return mode, count
    keys = rows * n_classes + classes
    if n_ids * n_classes <= _BINCOUNT_MAX:
        table = np.bincount(keys, minlength=n_ids * n_classes).reshape(n_ids, n_classes)
        best = table.argmax(axis=1)  # the first maximum: the smallest class among ties
        count = table[np.arange(n_ids), best]
        return np.where(count > 0, best, -1), count
    # the distinct (row, class) cells in (row, class) order and how often each occurs; per row, the
    # first cell holding the row's largest count is its smallest class among ties
    keys = np.sort(keys)
    first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    cell_count = np.diff(np.r_[first, keys.shape[0]])
    cell = keys[first]
    cell_row = cell // n_classes
    row_start = np.flatnonzero(np.r_[True, cell_row[1:] != cell_row[:-1]])
    row_best = np.maximum.reduceat(cell_count, row_start)
    at_best = np.flatnonzero(cell_count == np.repeat(row_best, np.diff(np.r_[row_start, cell.shape[0]])))
    top = at_best[np.r_[True, cell_row[at_best[1:]] != cell_row[at_best[:-1]]]]
    mode[cell_row[top]] = cell[top] % n_classes
    count[cell_row[top]] = cell_count[top]
    return mode, count


def _accumulate(run: Run, calibrated: bool):
    """Per-sample sums over the epochs, one epoch at a time (no E x N float matrix): only the
    (sample, class) pairs of the epochs where a sample is predicted as another class are kept."""
    n_ids = len(run.ids)
    labels = np.full(n_ids, -1, dtype=np.int64)
    for r in reversed(run.records):  # the first epoch's label wins
        labels[r.rows] = r.labels
    n_epochs = np.zeros(n_ids, dtype=np.int64)
    label_sum = np.zeros(n_ids)
    learned = np.zeros(n_ids, dtype=bool)
    wrong_pos, wrong_rows = [], []
    for r in run.records:
        whole = in_id_order(r, n_ids)
        at = slice(None) if whole else r.rows
        p_label = _p_label(r, calibrated)
        n_epochs[at] += 1
        label_sum[at] += p_label
        learned[at] |= r.stats.correct & (p_label >= 0.5)
        wrong = np.flatnonzero(r.stats.pred != labels[at])  # positions in the epoch's file
        wrong_pos.append(wrong)
        wrong_rows.append(wrong if whole else r.rows[wrong])
    other_class, other_count = _modal_class(
        np.concatenate(wrong_rows).astype(np.int64),
        np.concatenate([r.stats.pred[w] for r, w in zip(run.records, wrong_pos, strict=True)]).astype(np.int64),
        n_ids,
        run.n_classes,
    )
    other_sum = np.zeros(n_ids)
    for r, pos, rows in zip(run.records, wrong_pos, wrong_rows, strict=True):
        p_top = _p_top(r, calibrated)
        hit = r.stats.pred[pos] == other_class[rows]
        other_sum[rows[hit]] += p_top[pos[hit]]  # ids are unique within an epoch
    return labels, n_epochs, label_sum, other_class, other_count, other_sum, learned


def _class_means(labels: np.ndarray, values: np.ndarray, n_classes: int) -> np.ndarray:
    counts = np.bincount(labels, minlength=n_classes)
    sums = np.bincount(labels, weights=values, minlength=n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def _estimated_count(labels, p_label, other_class, p_other, thresholds: np.ndarray) -> tuple[np.ndarray, float]:
    """Confident disagreements and the estimated number of wrong labels.

    A sample counts as each class whose probability reaches that class's threshold (the larger of
    the two when both do); per label class, the share counted as another class among those counted
    as any class, times the class's size, estimates its wrong labels.
    """
    n_classes = thresholds.shape[0]
    has_other = other_class >= 0
    t_other = thresholds[np.where(has_other, other_class, 0)]
    other_ok = has_other & (p_other >= t_other)
    label_ok = p_label >= thresholds[labels]
    confident = other_ok & (~label_ok | (p_other > p_label))
    counted = confident | label_ok
    n_off = np.bincount(labels[confident], minlength=n_classes)
    n_counted = np.bincount(labels[counted], minlength=n_classes)
    n_class = np.bincount(labels, minlength=n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(n_counted > 0, n_off * n_class / n_counted, 0.0)
    return confident, float(per_class.sum())


def _lowest(score: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    """The rows of the k candidates with the lowest score, lowest first (ties in id-table order)."""
    rows = np.flatnonzero(candidates)
    return rows[np.argsort(score[rows], kind="stable")[:k]]


def label_quality(run: Run, thresholds: LabelQualityThresholds = LabelQualityThresholds()) -> LabelQuality:
    """Score every sample's label, flag the likely label issues and test for label noise.

    Parameters
    ----------
    run : Run
        Any number of epochs; the scores are temperature-scaled per epoch when the epochs carry
        scores (for the compact per-sample form the probabilities are used as given).
    thresholds : LabelQualityThresholds

    Returns
    -------
    LabelQuality
        ``score`` in [0, 1], lower = more likely mislabeled; ``flagged`` the estimated number of
        label issues with the lowest scores; ``noise`` the evidence test.

    Notes
    -----
    With ``p_label`` and ``p_other`` the mean (temperature-scaled) probabilities over the epochs
    and ``t_k`` the mean ``p_label`` of class k, a sample labelled i whose other class is j is a
    confident disagreement when ``p_other >= t_j`` (and ``p_other > p_label`` or ``p_label < t_i``).
    The estimated count is ``sum_i n_i * off_i / counted_i`` (off_i confident disagreements among
    the ``counted_i`` samples labelled i that reach some class's threshold), and the flagged samples
    are that many of those with ``score < 0.5``, lowest first.

    Examples
    --------
    Two epochs, three samples labelled 0, 0, 1; the third is predicted as 0 at both:
    its score is (1 + p_label - p_other) / 2 = (1 + 0.1 - 0.9) / 2 = 0.1 when both epochs give
    p[label] = 0.1 and top probability 0.9 (see ``tests/test_label_quality.py``).
    """
    calibrated = thresholds.temperature_scaled and all(
        r.stats.recal_loss is not None for r in run.records
    )
    labels, n_epochs, label_sum, other_class, other_count, other_sum, learned = _accumulate(run, calibrated)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_label = label_sum / n_epochs
        p_other = other_sum / n_epochs
        other_fraction = other_count / n_epochs
    score = 0.5 * (1.0 + p_label - p_other)
    class_thresholds = _class_means(labels, p_label, run.n_classes)
    scaled = thresholds.class_threshold_scale * np.nan_to_num(class_thresholds, nan=np.inf)
    confident, n_estimated = _estimated_count(labels, p_label, other_class, p_other, scaled)
    points_elsewhere = (other_class >= 0) & (p_other > p_label)
    flagged_order = _lowest(score, points_elsewhere, int(math.floor(n_estimated + 0.5)))
    flagged = np.zeros(score.shape[0], dtype=bool)
    flagged[flagged_order] = True
    return LabelQuality(
        score=score,
        likely_class=np.where(points_elsewhere, other_class, labels),
        other_class=other_class,
        p_label=p_label,
        p_other=p_other,
        other_fraction=other_fraction,
        n_epochs=n_epochs,
        labels=labels,
        confident=confident,
        flagged=flagged,
        class_thresholds=class_thresholds,
        n_estimated=n_estimated,
        calibrated=calibrated,
        evidence=noise_evidence(run, thresholds),
        learned=learned,
        flagged_order=flagged_order,
        never_learned_needed=thresholds.noise_never_learned,
    )


def _abstain(reason: str, n: int, thresholds: LabelQualityThresholds) -> NoiseEvidence:
    nan = float("nan")
    return NoiseEvidence(False, reason, None, n, nan, nan, nan, nan, thresholds.noise_level,
                         thresholds.noise_min_count)


def fit_noise_rate(label_prob: np.ndarray, n_classes: int) -> tuple[float, float]:
    """Maximum-likelihood share of replaced labels and the likelihood-ratio statistic.

    ``P(label_i) = (1 - r) p_i + r (1 - p_i) / (K - 1)``; the log-likelihood is concave in r, so
    its derivative has one root in [0, 1] (:func:`_score_root`). Returns ``(r, 2 * (LL(r) - LL(0)))``.

    Three labels the model gives 0.9 and one it gives ~0: the derivative
    3 (-0.8) / (0.9 - 0.8 r) + 1 / r vanishes at r = 0.9 / 3.2 = 0.281.

    >>> r, stat = fit_noise_rate(np.array([0.9, 0.9, 0.9, 1e-6]), 2)
    >>> round(r, 3), stat > 10
    (0.281, True)
    """
    p = np.maximum(np.asarray(label_prob, dtype=np.float64), PROB_FLOOR)
    d = (1.0 - p) / (n_classes - 1) - p  # dP/dr
    if float(np.sum(d / p)) <= 0.0:  # the likelihood falls from r = 0: no noise at all
        return 0.0, 0.0
    with np.errstate(divide="ignore", invalid="ignore"):  # p + d = 0 at r = 1 for a certain label: -inf
        at_one = float(np.sum(d / (p + d)))
    rate = 1.0 if at_one >= 0.0 else _score_root(p, d)
    statistic = 2.0 * float(np.sum(np.log1p(rate * d / p)))
    return rate, max(statistic, 0.0)


ROOT_MAX_STEPS = 256
"""A bound on the root search's passes; a bisection every fourth step at the latest halves the
bracket, so it ends sooner (at most ~4 x 53 steps, 5-8 in practice)."""


def _score_root(p: np.ndarray, d: np.ndarray) -> float:
    """The r in (0, 1) where the log-likelihood's derivative ``f(r) = sum d / (p + r d)`` (> 0 at
    0, < 0 at 1, decreasing) vanishes.

    Newton's steps (``f' = -sum (d / (p + r d))^2``) kept inside the bracket that the signs of f
    give, with a bisection whenever a step would leave it or the bracket has not halved in four
    steps. It stops where f is within the rounding of its own sum, ``eps log2(N) sum |terms|``
    (bounded by ``sqrt(N sum terms^2)``): there no pass can tell the root's side, and r is within
    that rounding divided by |f'| of the root. A bisection to 2**-50 took 50 passes; this takes 5-8
    and lands nearer (real runs: 1e-18 to 1e-14 from a 200-step bisection, which itself is 1e-16
    to 7e-16 from the 50-step one).
    """
    n = p.shape[0]
    rounding = np.finfo(np.float64).eps * max(1.0, math.log2(n))
    terms = np.empty_like(p)
    lo, hi, r = 0.0, 1.0, 0.5
    width = hi - lo
    for step in range(1, ROOT_MAX_STEPS + 1):
        np.multiply(d, r, out=terms)
        terms += p
        np.divide(d, terms, out=terms)
        f = float(terms.sum())
        slope = -float(np.dot(terms, terms))
        if abs(f) <= rounding * math.sqrt(n * -slope):
            return r
        if f > 0.0:
            lo = r
        else:
            hi = r
        new = r - f / slope
        if step % 4 == 0:
            if hi - lo > 0.5 * width:
                new = 0.5 * (lo + hi)
            width = hi - lo
        if not lo < new < hi:
            new = 0.5 * (lo + hi)
            if not lo < new < hi:  # the bracket is two neighbouring floats
                return r
        r = new
    return r


def noise_evidence(run: Run, thresholds: LabelQualityThresholds = LabelQualityThresholds()) -> NoiseEvidence:
    """Test whether the labels hold more wrong ones than clean labels with a calibrated model give.

    The test runs at the epoch with the lowest mean loss: the least overfitted one, before the
    model's confidence on a few samples grows beyond what one temperature can undo (late epochs of
    clean-label runs show a growing excess). The epoch's own temperature makes its probabilities
    calibrated on average, so plain overconfidence is not read as noise.
    It abstains on a one-epoch run: a single saved epoch cannot tell a model that learned from these
    labels (a cross-validated model trained on noisy labels predicts the noise itself) from one that
    did not, and there is no least overfitted epoch to choose. It abstains too when the epochs carry
    no scores to temperature-scale.
    """
    n = len(run.ids)
    if len(run.records) < 2:
        return _abstain("one epoch: no training dynamics to test against", n, thresholds)
    record = min(run.records, key=lambda r: r.summary.loss)
    if record.stats.recal_loss is None:
        return _abstain("no scores to temperature-scale (compact per-sample form)", n, thresholds)
    if not record.summary.fit_usable:
        return _abstain(f"the temperature fit of epoch {record.epoch} is at its search bound: its calibration "
                        "cannot be judged", n, thresholds)
    if run.n_classes < 2:
        return _abstain("a single class", n, thresholds)
    st = record.stats
    # The alternative may keep the scores as they are (T = 1) when a temperature fitted on noisy
    # labels would have absorbed the noise; it then pays what T* gains over T = 1 on clean labels.
    fits = [
        (*fit_noise_rate(np.exp(-st.recal_loss), run.n_classes), 0.0),
        (*fit_noise_rate(st.true_prob, run.n_classes), 2.0 * float(st.loss.sum() - st.recal_loss.sum())),
    ]
    rate, statistic = max(((r, lr - cost) for r, lr, cost in fits), key=lambda f: f[1])
    statistic = max(statistic, 0.0)
    # half a chi2_1 tail (the null is on the boundary rate = 0), times 2 for the two alternatives
    p_value = min(1.0, math.erfc(math.sqrt(statistic / 2.0))) if statistic > 0 else 1.0
    m = int(st.recal_loss.shape[0])
    return NoiseEvidence(
        tested=True,
        reason="",
        epoch=record.epoch,
        n_samples=m,
        rate=rate,
        count=rate * m,
        statistic=statistic,
        p_value=p_value,
        level=thresholds.noise_level,
        min_count=thresholds.noise_min_count,
    )
