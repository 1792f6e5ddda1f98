"""AnalyzeReport -> the JSON body of `analyze` (schema: lossacc_cli/schema/output.schema.json).

Lists are complete, except the samples most responsible for the rise (``--top``); every capped
list says how many rows it left out (``*_omitted``). Every share names what it is a share of.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from lossacc_cli.analysis.causes import Verdict
from lossacc_cli.analysis.compare import ClassStats, Comparison, sample_columns
from lossacc_cli.analysis.rise import GROUPS, ClassPart, Part, Rise
from lossacc_cli.analysis.run import Run
from lossacc_cli.analysis.significance import Significance
from lossacc_cli.render.bodies import calibration_json
from lossacc_cli.render.jsonout import Records


def flat_fields(obj) -> dict:
    """``dataclasses.asdict(obj)`` for a dataclass of plain values (numbers, strings), without
    its recursive deep copy: the same dict, at a fifth of the cost."""
    return {name: getattr(obj, name) for name in _field_names(type(obj))}


@functools.lru_cache(maxsize=None)
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


_COLUMN_DTYPES = {"int": np.int64, "float": np.float64, int: np.int64, float: np.float64}
"""By field annotation: a string under postponed annotations, the type itself otherwise."""


def flat_records(objs, cls: type) -> Records:
    """``[dataclasses.asdict(o) for o in objs]`` for dataclasses ``cls`` of ints and floats, as
    :class:`Records` columns, which the JSON writer writes as it writes the label issues, a
    column at a time (a 1,000-class run has 4,000 per-class rows: written value by value by
    ``json.dumps`` with indentation, they were a third of its JSON time)."""
    return Records({f.name: np.array([getattr(o, f.name) for o in objs], dtype=_COLUMN_DTYPES[f.type])
                    for f in dataclasses.fields(cls)})


def epoch_rows(report) -> list[dict]:
    """One dict per epoch: every number of the per-epoch table."""
    diverging = set(report.overview.diverging)
    rows = []
    for s in report.epochs:
        row = dataclasses.asdict(s)
        row["diverging"] = s.epoch in diverging
        row["above_baseline"] = s.loss > s.baseline_loss
        rows.append(row)
    return rows


def _ids(report, positions: np.ndarray) -> list:
    rise = report.diagnosis.rise
    return report.ids[rise.rows[positions]].tolist() if rise is not None else []


def verdict_dict(report, v: Verdict) -> dict:
    return {
        "verdict": v.name,
        "share": v.share,
        "share_of": v.share_of or None,
        "summary": v.summary,
        "evidence": v.evidence,
        "sample_ids": _ids(report, v.samples),
        "classes": list(v.classes),
    }


def part_dict(p: Part) -> dict:
    return {
        "name": p.name,
        "value": p.value,
        "increase": p.increase,
        "groups": [flat_fields(g) for g in p.groups],
        "classes": flat_records(p.classes, ClassPart),
        "concentration": [flat_fields(c) for c in p.concentration],
    }


def top_samples(run: Run, rise: Rise, top: int) -> list[dict]:
    """The samples with the largest loss change, largest first (a stable order on ties)."""
    order = rise.largest_changes(top)
    at = sample_columns(run, rise, order)
    columns = {"id": run.ids[rise.rows[order]].tolist()}
    columns.update((name, at[name].tolist()) for name in (
        "label", "pred_from", "pred_to", "p_label_from", "p_label_to", "loss_from", "loss_to", "change"))
    columns["calibration_part"] = (at["calibration_part"].tolist() if "calibration_part" in at
                                   else [None] * order.shape[0])
    columns["group"] = [GROUPS[g] for g in at["group"]]
    return [dict(zip(columns, values)) for values in zip(*columns.values())]


def rise_dict(run: Run, both: Comparison, top: int) -> dict:
    """The decomposed rise: its numbers, its parts located, the samples most responsible and the
    per-class loss, accuracy and ECE at both epochs (the body of `compare`)."""
    rise = both.rise
    return {
        "from_epoch": rise.from_epoch,
        "to_epoch": rise.to_epoch,
        "n_samples": rise.n,
        "n_only_from": rise.n_only_from,
        "n_only_to": rise.n_only_to,
        "loss_from": rise.loss_from,
        "loss_to": rise.loss_to,
        "rise": rise.value,
        "recalibrated_loss_from": rise.recalibrated_from,
        "recalibrated_loss_to": rise.recalibrated_to,
        "median_loss_from": rise.median_from,
        "median_loss_to": rise.median_to,
        "accuracy_from": rise.accuracy_from,
        "accuracy_to": rise.accuracy_to,
        "parts": [part_dict(p) for p in rise.parts()],
        "top_samples": top_samples(run, rise, top),
        "top_samples_omitted": max(0, rise.n - top),
        "classes": flat_records(both.classes, ClassStats),
    }


def significance_dict(sig: Significance | None) -> dict | None:
    if sig is None:
        return None
    out = dataclasses.asdict(sig)
    out["significant"] = sig.significant
    return out


def _at_compared_epochs(report, rows: np.ndarray) -> tuple[dict, dict]:
    """Prediction, p[label] and loss change at the compared epochs for id-table ``rows``, and
    where each is present (a sample not present at both has None)."""
    rise = report.diagnosis.rise
    n = rows.shape[0]
    keys = ("pred_from", "pred_to", "p_label_from", "p_label_to", "change")
    if rise is None:
        absent = np.zeros(n, dtype=bool)
        return dict.fromkeys(keys, np.zeros(n)), dict.fromkeys(keys, absent)
    where = np.full(report.n_samples, -1, dtype=np.int64)
    where[rise.rows] = np.arange(rise.n)
    at = where[rows]
    ok = at >= 0
    safe = np.where(ok, at, 0)
    sa, sb = report.run.record(rise.from_epoch).stats, report.run.record(rise.to_epoch).stats
    if rise.n == 0:
        columns = {"pred_from": np.zeros(n, dtype=np.int64), "pred_to": np.zeros(n, dtype=np.int64),
                   **dict.fromkeys(keys[2:], np.zeros(n))}
    else:
        columns = {
            "pred_from": sa.pred[rise.index_from[safe]].astype(np.int64, copy=False),
            "pred_to": sb.pred[rise.index_to[safe]].astype(np.int64, copy=False),
            "p_label_from": sa.true_prob[rise.index_from[safe]].astype(np.float64, copy=False),
            "p_label_to": sb.true_prob[rise.index_to[safe]].astype(np.float64, copy=False),
            "change": rise.total.per_sample[safe].astype(np.float64, copy=False),
        }
    return columns, dict.fromkeys(keys, ok)


def label_issues_dict(report) -> dict:
    """The complete list of flagged samples, most suspicious first, and the evidence test. The
    samples are :class:`~lossacc_cli.render.jsonout.Records`: columns until they are written."""
    lq = report.labels
    rows = lq.flagged_rows()
    ev = dataclasses.asdict(lq.evidence)
    ev["noise"] = lq.noise
    ev["never_learned_share"] = lq.never_learned_share
    ev["never_learned_needed"] = lq.never_learned_needed
    compared, present = _at_compared_epochs(report, rows)
    columns = {
        "id": report.ids[rows],
        "label": lq.labels[rows],
        "likely_class": lq.likely_class[rows],
        "score": lq.score[rows],
        "p_label": lq.p_label[rows],
        "p_other": lq.p_other[rows],
        "other_fraction": lq.other_fraction[rows],
        **compared,
    }
    return {
        "noise_evidence": lq.noise,
        "calibrated": lq.calibrated,
        "n_estimated": lq.n_estimated,
        "count": int(rows.shape[0]),
        "evidence": ev,
        "samples": Records(columns, present),
    }


def distribution_dict(run: Run, dist) -> dict:
    r = run.record(dist.epoch)
    return {
        "epoch": dist.epoch,
        "n_samples": dist.n_samples,
        "edges": dist.edges.tolist(),
        "counts": dist.counts.tolist(),
        "quantiles": dist.quantiles,
        "outliers": [{"id": i, "loss": float(x)} for i, x in zip(run.ids[r.rows[dist.outliers]].tolist(),
                                                                 dist.outlier_losses)],
    }


def report_dict(report, *, top: int = 10) -> dict:
    dx = report.diagnosis
    ov = report.overview
    return {
        "path": report.path,
        "n_epochs": report.n_epochs,
        "n_samples": report.n_samples,
        "n_classes": report.n_classes,
        "class_names": list(report.class_names) if report.class_names else None,
        "headline": report.headline,
        "epochs": epoch_rows(report),
        "summary": {
            "best_loss_epoch": ov.best_loss_epoch,
            "best_accuracy_epoch": ov.best_accuracy_epoch,
            "best_recalibrated_epoch": ov.best_recalibrated_epoch,
            "diverging_epochs": list(ov.diverging),
            "above_baseline_epochs": list(ov.above_baseline),
        },
        "diagnosis": {
            "from_epoch": dx.from_epoch,
            "to_epoch": dx.to_epoch,
            "from_epoch_picked": dx.picked,
            "verdicts": [verdict_dict(report, v) for v in dx.verdicts],
            "if_real": [verdict_dict(report, v) for v in dx.if_real],
            "significance": significance_dict(dx.significance),
            "rise": rise_dict(report.run, report.comparison, top) if report.comparison is not None else None,
        },
        "checkpoint": {**dataclasses.asdict(report.checkpoint), "chosen_on": "this evaluation set"},
        "calibration": {"from": calibration_json(report.calibration_from),
                        "to": calibration_json(report.calibration_to)},
        "loss_distributions": {"from": distribution_dict(report.run, report.losses_from),
                               "to": distribution_dict(report.run, report.losses_to)},
        "label_issues": label_issues_dict(report),
        "thresholds": dataclasses.asdict(report.thresholds),
        "warnings": list(report.warnings),
    }
