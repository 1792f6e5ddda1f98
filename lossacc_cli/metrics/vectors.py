"""Per-sample vectors of one epoch (:class:`SampleStats`) and their formulas for the layouts that
need no streaming pass: probabilities, binary logit/probability, the compact form.

Results are float64. Logits are reduced by the streaming pass (:mod:`~lossacc_cli.metrics.stream`,
float32 arithmetic for float16/float32 logits); probabilities need no arithmetic beyond upcasting
p[label] and its log, block by block over rows so that a score matrix is never copied whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossacc_cli.metrics.calibration import N_BINS, ReliabilityTable, reliability_table

PROB_FLOOR = float(np.finfo(np.float64).eps)
"""Probabilities are clipped below at float64 eps, so a loss is at most -ln(eps) = 36.04 nats."""

MAX_PROB_LOSS = float(-np.log(PROB_FLOOR))

_BLOCK_ELEMENTS = 1 << 16
"""Rows per block are chosen so a block of float64 scores is about 512 KiB (fits in L2)."""


@dataclass(frozen=True, eq=False)
class SampleStats:
    """Per-sample vectors of one epoch, all of shape (N,).

    Attributes
    ----------
    loss : float64
        Cross-entropy ``-ln p[label]`` in nats; >= 0, higher is worse. From probabilities it is at
        most 36.04 (p clipped at float64 eps); from logits it is exact and unbounded.
    pred : int64
        Predicted class (``argmax``, first index on ties; binary: p >= 0.5 is class 1).
    correct : bool
        ``pred == label``.
    confidence : float64
        Top-label probability ``max_k p_k`` in [1/K, 1].
    true_prob : float64
        ``p[label]`` in [0, 1]; higher is better.
    margin : float64 or None
        ``z[label] - max_{k != label} z_k`` (logits only; > 0 iff correct up to ties).
    clipped : bool or None
        Rows whose p[label] was below float64 eps and was clipped (probabilities only).
    recal_loss : float64 or None
        The loss after dividing the scores by the epoch's T* (nats, >= 0); averages to L(T*).
        None for the compact form (no scores to rescale).
    recal_confidence : float64 or None
        The top-label probability after dividing the scores by T*, in [1/K, 1].
    recal_crossfit_loss : float
        L(T*) with T* fitted on one half of the samples and measured on the other (NaN when
        unavailable).
    recal_as_given : bool
        The fitted temperature did worse than the scores as given, so the "recalibrated" values
        are the scores as given (T = 1).
    """

    loss: np.ndarray
    pred: np.ndarray
    correct: np.ndarray
    confidence: np.ndarray
    true_prob: np.ndarray
    margin: np.ndarray | None = None
    clipped: np.ndarray | None = None
    recal_loss: np.ndarray | None = None
    recal_confidence: np.ndarray | None = None
    recal_crossfit_loss: float = float("nan")
    recal_as_given: bool = False

    @property
    def n_clipped(self) -> int:
        return 0 if self.clipped is None else int(self.clipped.sum())

    def reliability(self, n_bins: int = N_BINS) -> tuple[ReliabilityTable, ReliabilityTable]:
        """The equal-width and the equal-mass reliability tables of ``confidence`` against
        ``correct``, computed once per ``n_bins``: the summary's ECE variants and the calibration
        report read the same two tables (0.2 s per epoch of 1,000,000 samples)."""
        memo = self.__dict__.setdefault("_reliability", {})  # not a field: replace() starts afresh
        if n_bins not in memo:
            memo[n_bins] = (
                reliability_table(self.confidence, self.correct, n_bins=n_bins),
                reliability_table(self.confidence, self.correct, n_bins=n_bins, strategy="quantile"),
            )
        return memo[n_bins]


def _row_blocks(n_rows: int, n_cols: int):
    step = max(1, _BLOCK_ELEMENTS // max(1, n_cols))
    for start in range(0, n_rows, step):
        yield slice(start, min(n_rows, start + step))


def from_probs(labels: np.ndarray, probs: np.ndarray) -> SampleStats:
    """Per-sample statistics from an (N, K) probability matrix.

    p[label] is upcast to float64 and clipped below at float64 eps before the log, whatever the
    input dtype (so losses are comparable across float16/32/64 files). Rows are not renormalised:
    the reader accepts rows within 1e-3 of summing to 1 as they are.
    """
    n = probs.shape[0]
    r = np.arange(n)
    true_prob = np.asarray(probs[r, labels], dtype=np.float64)
    clipped = true_prob < PROB_FLOOR
    loss = -np.log(np.maximum(true_prob, PROB_FLOOR))
    pred = np.empty(n, dtype=np.int64)
    confidence = np.empty(n)
    for rows in _row_blocks(n, probs.shape[1]):
        block = probs[rows]
        top = block.argmax(axis=1)
        pred[rows] = top
        confidence[rows] = block[np.arange(top.shape[0]), top]
    return SampleStats(
        loss=loss,
        pred=pred,
        correct=pred == labels,
        confidence=confidence,
        true_prob=true_prob,
        clipped=clipped,
    )


def _softplus(x: np.ndarray) -> np.ndarray:
    # log(1 + e^x) without overflow for large x and without losing small values for very negative x.
    return np.logaddexp(0.0, x)


def from_binary_logit(labels: np.ndarray, logit: np.ndarray) -> SampleStats:
    """Binary task from the logit s of class 1: loss = softplus(-s) if y = 1 else softplus(s)."""
    s = np.asarray(logit, dtype=np.float64)
    signed = np.where(labels == 1, s, -s)  # the margin: z[y] - z[other] with z = [0, s]
    loss = _softplus(-signed)
    pred = (s >= 0).astype(np.int64)
    return SampleStats(
        loss=loss,
        pred=pred,
        correct=pred == labels,
        confidence=np.exp(-_softplus(-np.abs(s))),
        true_prob=np.exp(-loss),
        margin=signed,
    )


def from_binary_prob(labels: np.ndarray, prob: np.ndarray) -> SampleStats:
    """Binary task from p = P(class 1): p[label] = p if y = 1 else 1 - p, clipped at float64 eps."""
    p = np.asarray(prob, dtype=np.float64)
    true_prob = np.where(labels == 1, p, 1.0 - p)
    clipped = true_prob < PROB_FLOOR
    loss = -np.log(np.maximum(true_prob, PROB_FLOOR))
    pred = (p >= 0.5).astype(np.int64)
    return SampleStats(
        loss=loss,
        pred=pred,
        correct=pred == labels,
        confidence=np.maximum(p, 1.0 - p),
        true_prob=true_prob,
        clipped=clipped,
    )


def from_compact(labels: np.ndarray, loss, pred, confidence, true_prob=None) -> SampleStats:
    """The compact per-sample form as given by the user (loss in nats, pred, confidence)."""
    loss = np.maximum(np.asarray(loss, dtype=np.float64), 0.0)
    pred = np.asarray(pred, dtype=np.int64)
    tp = np.exp(-loss) if true_prob is None else np.asarray(true_prob, dtype=np.float64)
    return SampleStats(
        loss=loss,
        pred=pred,
        correct=pred == labels,
        confidence=np.asarray(confidence, dtype=np.float64),
        true_prob=tp,
    )


def clipped_rows(kind: str, labels: np.ndarray, scores: np.ndarray | None) -> np.ndarray | None:
    """The rows whose p[label] the formulas above clip at float64 eps, without the other vectors
    (``scores`` may be a block of rows, with its ``labels``): a mask for the probability kinds,
    None for logits and the compact form, which clip nothing."""
    if kind == "probs":
        return np.asarray(scores[np.arange(labels.shape[0]), labels], dtype=np.float64) < PROB_FLOOR
    if kind == "prob":
        p = np.asarray(scores, dtype=np.float64)
        return np.where(labels == 1, p, 1.0 - p) < PROB_FLOOR
    return None
