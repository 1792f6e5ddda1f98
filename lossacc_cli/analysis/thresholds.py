"""Every threshold of the diagnosis, in one place; the text quotes them from here."""

from __future__ import annotations

from dataclasses import dataclass

from lossacc_cli.analysis.label_quality import LabelQualityThresholds


@dataclass(frozen=True)
class Thresholds:
    """Named thresholds of the diagnosis (README "Diagnosis"); each can be overridden.

    min_rise_relative, min_rise_nats
        There is a rise to explain when ``L_to - L_from >= max(min_rise_nats,
        min_rise_relative * L_from)``; below that, loss and accuracy move together. Both are tiny
        by default (float noise): whether a small rise is real is the significance test's to say.
    accuracy_tolerance
        Accuracy "holds" when it falls by at most this (0.005 = half a point); more is "no paradox".
    significance_level
        The coverage of the interval of the rise (0.95).
    significance_max_carriers
        A rise whose increases are 80% carried by at most this many samples is judged by the
        epoch-to-epoch jitter alone (a sample resample drops all k carriers with probability e^-k,
        >= 2.5% for k <= 3, so an interval from samples cannot exclude zero).
    carries
        A part "carries the rise" when it is at least this share of it (a majority).
    refinement_min_share
        tail-driven and broad overfitting need the refinement part (what recalibration leaves) to
        be at least this share of the rise: below it, the rise is calibration and nothing is left
        for them to explain.
    tail_max_samples
        tail-driven: the fewest samples carrying 80% of the summed per-sample increases are at most
        this fraction of the samples (or one sample), recalibration leaves part of the rise ...
    tail_max_median_share
        ... while the median loss rises by at most this fraction of the rise.
    broad_min_median_share
        broad overfitting: the median loss rises by at least this fraction of the rise.
    class_min_ratio
        class-specific: a class's share of the rise is at least this multiple of its share of the
        samples (its samples grow this many times more than the average sample) ...
    class_min_share
        ... the named classes (at most ``class_max_named``) carry at least this share of the rise ...
    class_min_spread
        ... and within each, the growth is spread: the samples carrying 80% of the class's
        increases are at least this fraction of the class (a few samples are a tail, not a class) ...
    class_min_classes
        ... in a task with at least this many classes.
    label_noise_min_share
        suspected label noise: the flagged samples carry at least this share of the summed
        per-sample increases (and the label-quality evidence test passes).
    labels
        The label-quality score, its count and its evidence test (:class:`LabelQualityThresholds`).
    """

    min_rise_relative: float = 1e-6
    min_rise_nats: float = 1e-9
    accuracy_tolerance: float = 0.005
    significance_level: float = 0.95
    significance_max_carriers: int = 3
    carries: float = 0.5
    refinement_min_share: float = 0.25
    tail_max_samples: float = 0.2
    tail_max_median_share: float = 0.1
    broad_min_median_share: float = 0.25
    class_min_ratio: float = 2.0
    class_min_share: float = 0.5
    class_min_spread: float = 0.1
    class_min_classes: int = 3
    class_max_named: int = 2
    label_noise_min_share: float = 0.3
    labels: LabelQualityThresholds = LabelQualityThresholds()
