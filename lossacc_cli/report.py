"""One result, one call: :func:`analyze_run` computes everything `analyze` shows, once.

The terminal, JSON, CI and HTML renderers all take an :class:`AnalyzeReport`; none recomputes a
number. From Python::

    import lossacc_cli as lossacc
    report = lossacc.analyze("preds/")
    print(report.headline)
    report.epochs_frame()      # the per-epoch table (pandas)
    report.samples_frame()     # per sample between the compared epochs (pandas)
    report.to_dict()           # the JSON document's body
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from lossacc_cli.analysis.calibration import CalibrationReport, calibration_report
from lossacc_cli.analysis.checkpoint import Checkpoint, checkpoint_advice
from lossacc_cli.analysis.compare import Comparison, comparison, sample_columns
from lossacc_cli.analysis.diagnosis import Diagnosis, diagnose
from lossacc_cli.analysis.headline import headline as headline_text
from lossacc_cli.analysis.label_quality import LabelQuality, label_quality
from lossacc_cli.analysis.outliers import LossDistribution, loss_distribution
from lossacc_cli.analysis.overview import Overview, overview
from lossacc_cli.analysis.rise import GROUPS
from lossacc_cli.analysis.run import Run, load_run
from lossacc_cli.analysis.thresholds import Thresholds
from lossacc_cli.errors import UsageError
from lossacc_cli.metrics.summary import EpochSummary
from lossacc_cli.readers.model import ReadOptions


@dataclass(frozen=True, eq=False)
class AnalyzeReport:
    """Everything `analyze` reports about one run (see README "JSON output" for each field).

    ``diagnosis`` compares ``diagnosis.from_epoch`` (the lowest-loss epoch unless given) with
    ``diagnosis.to_epoch`` (the last unless given); ``labels`` scores every sample id of the run
    (``ids``); ``checkpoint`` is the epoch to keep. ``calibration_from``/``calibration_to`` are the
    reliability tables and ECE variants of the two compared epochs, ``losses_from``/``losses_to``
    their per-sample loss distributions (log-spaced histograms, quantiles and outlying samples);
    these four are computed on first use (the terminal view does not show them).
    """

    path: str
    n_classes: int
    class_names: tuple[str, ...] | None
    ids: np.ndarray
    epochs: tuple[EpochSummary, ...]
    overview: Overview
    diagnosis: Diagnosis
    checkpoint: Checkpoint
    labels: LabelQuality
    headline: str
    thresholds: Thresholds
    warnings: tuple[str, ...]
    run: Run

    @cached_property
    def comparison(self) -> Comparison | None:
        """The compared epochs' rise with its per-class loss, accuracy and ECE (None when they
        share no sample)."""
        return comparison(self.run, self.diagnosis.rise) if self.diagnosis.rise is not None else None

    @cached_property
    def calibration_from(self) -> CalibrationReport:
        return calibration_report(self.run, self.from_epoch)

    @cached_property
    def calibration_to(self) -> CalibrationReport:
        if self.to_epoch == self.from_epoch:  # one epoch compared with itself: computed once
            return self.calibration_from
        return calibration_report(self.run, self.to_epoch)

    @cached_property
    def losses_from(self) -> LossDistribution:
        return loss_distribution(self.run, self.from_epoch)

    @cached_property
    def losses_to(self) -> LossDistribution:
        if self.to_epoch == self.from_epoch:
            return self.losses_from
        return loss_distribution(self.run, self.to_epoch)

    @property
    def id_labels(self) -> np.ndarray:
        """The label of every id of the run (from the first epoch it appears in), int64."""
        labels = np.full(self.n_samples, -1, dtype=np.int64)
        for r in reversed(self.run.records):
            labels[r.rows] = r.labels
        return labels

    @property
    def n_epochs(self) -> int:
        return len(self.epochs)

    @property
    def n_samples(self) -> int:
        return int(len(self.ids))

    @property
    def from_epoch(self) -> int:
        return self.diagnosis.from_epoch

    @property
    def to_epoch(self) -> int:
        return self.diagnosis.to_epoch

    def to_dict(self, *, top: int = 10) -> dict:
        """The JSON document's body (``lossacc analyze --format json --top top``)."""
        from lossacc_cli.render.jsonout import plain

        return plain(self.json_body(top=top))

    def json_body(self, *, top: int = 10) -> dict:
        """:meth:`to_dict` with its long lists of samples still columns
        (:class:`~lossacc_cli.render.jsonout.Records`), as the JSON renderer writes them."""
        from lossacc_cli.report_dict import report_dict

        return report_dict(self, top=top)

    def to_html(self, *, top: int = 50, media=None) -> str:
        """The self-contained HTML page of `lossacc report` (needs the ``report`` extra)."""
        from lossacc_cli.render.html import render

        return render(self, top=top, media=media)

    def epochs_frame(self):
        """The per-epoch table as a pandas DataFrame, one row per epoch."""
        import pandas as pd

        from lossacc_cli.report_dict import epoch_rows

        return pd.DataFrame(epoch_rows(self)).set_index("epoch")

    def samples_frame(self):
        """Per sample present at both compared epochs, as a pandas DataFrame indexed by id:
        label, predictions, p[label] and loss at both epochs, the change and its calibration and
        refinement parts (nats), the outcome group, and the label-quality score and flag."""
        import pandas as pd

        rise = self.diagnosis.rise
        if rise is None:
            return pd.DataFrame()
        columns = sample_columns(self.run, rise)
        columns["group"] = np.array(GROUPS, dtype=object)[columns["group"]]
        columns["label_score"] = self.labels.score[rise.rows]
        columns["likely_class"] = self.labels.likely_class[rise.rows]
        columns["label_flagged"] = self.labels.flagged[rise.rows]
        frame = pd.DataFrame(columns, index=pd.Index(self.ids[rise.rows], name="id"))
        return frame


def analyze_run(
    run: Run,
    *,
    from_epoch: int | str | None = None,
    to_epoch: int | str | None = None,
    thresholds: Thresholds = Thresholds(),
) -> AnalyzeReport:
    """Diagnose a loaded run: compare ``from_epoch`` (default: the lowest-loss epoch up to the to
    epoch) with ``to_epoch`` (default: the last); each may be an epoch number, ``"best"`` or
    ``"last"``. A picked from epoch ("best", given or by default) is corrected for in the
    significance test; a numbered one is the user's and is not."""
    ov = overview(run.summaries)
    b = run.resolve_epoch("last" if to_epoch is None else to_epoch, option="--to")
    # "best" is a pick, whether by default or asked for: the lowest loss up to the to epoch
    picked = from_epoch is None or str(from_epoch).strip().lower() == "best"
    if picked:
        a = overview([s for s in run.summaries if s.epoch <= b]).best_loss_epoch
    else:
        a = run.resolve_epoch(from_epoch, option="--from")
        if a > b:
            raise UsageError(f"--from {from_epoch}: epoch {a} comes after the --to epoch {b}; "
                             "the rise is measured from the earlier epoch to the later one")
    labels = label_quality(run, thresholds.labels)
    logits = all(r.kind in ("logits", "logit") for r in run.records)
    dx = diagnose(run, a, b, picked=picked, flagged_ids=labels.flagged, label_noise_evidence=labels.noise,
                  label_evidence=dataclasses.asdict(labels.evidence), thresholds=thresholds, logits=logits)
    ck = checkpoint_advice(run.summaries, ov, logits=logits)
    return AnalyzeReport(
        path=run.path,
        n_classes=run.n_classes,
        class_names=run.class_names,
        ids=run.ids,
        epochs=tuple(run.summaries),
        overview=ov,
        diagnosis=dx,
        checkpoint=ck,
        labels=labels,
        headline=headline_text(dx, ck, run.ids, run.class_names, n_epochs=len(run.records)),
        thresholds=thresholds,
        warnings=run.notes,
        run=run,
    )


def analyze(
    path: str = "preds",
    *,
    from_epoch: int | str | None = None,
    to_epoch: int | str | None = None,
    options: ReadOptions = ReadOptions(),
    thresholds: Thresholds = Thresholds(),
    jobs: int = 0,
    cache: bool = False,
) -> AnalyzeReport:
    """Read the run at ``path`` and diagnose it (the same result `lossacc analyze` prints).

    >>> report = analyze("preds/")                          # doctest: +SKIP
    >>> report.headline                                      # doctest: +SKIP
    'The rise is overconfidence: ... Keep epoch 12 and divide its logits by 1.94.'
    """
    run = load_run(str(path), options, jobs=jobs, cache=cache)
    return analyze_run(run, from_epoch=from_epoch, to_epoch=to_epoch, thresholds=thresholds)
