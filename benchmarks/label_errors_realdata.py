"""lossacc's flagged label issues against cleanlab's ``find_label_issues`` on published label-error keys.

Usage:
    python benchmarks/label_errors_realdata.py [REALDATA_DIR] [--sweep]

REALDATA_DIR defaults to ../shared/realdata beside the project. Needs the ``bench`` extra
(``pip install -e ".[bench]"``: cleanlab, scikit-learn).

Each prediction set is written as a one-epoch NPZ (``probs``, ``labels``) in a temporary folder and
read with lossacc's own loader (``load_run``), as a user's file would be; ``label_quality`` then
flags the likely label issues. cleanlab gets the same probabilities with its default arguments,
rows rescaled to sum to 1 (it rejects IMDB's published rows, which sum to 1.00002).

Printed per set: precision, recall and F1 of each list against the key, the number flagged, and the
time each takes (lossacc: the label-quality call on the loaded run, and the load itself; cleanlab:
``find_label_issues``). The "before" column is the rule lossacc used before ``label_quality``
(``analysis.dynamics.suspect_mask``), kept to show which model reproduces the earlier figures.

Source A (the cleanlab/label-errors test sets): the key covers only the rows that confident
learning flagged from these same probabilities and people then reviewed, so unreviewed rows count as
clean and a list unlike cleanlab's is penalised; "within reviewed" scores each list on the
reviewed rows only (reviewed errors are positives, reviewed non-errors negatives).
Source B (CIFAR-10N): the key is complete; 5 models per set, resnet18 is the headline (it is the
model whose "before" figures are the ones quoted in the issue).

``--sweep`` adds the sensitivity of lossacc's F1 to each setting of ``LabelQualityThresholds``
that the flagged list depends on.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lossacc_cli.analysis.dynamics import suspect_mask, training_dynamics
from lossacc_cli.analysis.label_quality import LabelQualityThresholds, label_quality
from lossacc_cli.analysis.run import Run, load_run

ROOT = Path(__file__).resolve().parents[1]
SOURCE_A = ("cifar10", "mnist", "cifar100", "20news", "imdb")
SOURCE_B = ("cifar10n_aggre", "cifar10n_worst")
MODELS = ("resnet18", "resnet50d", "efficientnet_b1", "twins_pcpvt_base", "swin_base_patch4_window7_224")
HEADLINE_MODEL = "resnet18"


@dataclass(frozen=True)
class Case:
    name: str
    probs_path: Path
    labels_path: Path
    errors: np.ndarray  # bool over rows
    reviewed: np.ndarray | None  # bool over rows (source A only)
    headline: bool


def cases(base: Path) -> list[Case]:
    out = []
    for name in SOURCE_A:
        folder = base / "cleanlab_label_errors" / name
        key = json.loads((folder / "label_errors.json").read_text())
        n = int(np.load(folder / "labels.npy", mmap_mode="r").shape[0])
        out.append(Case(f"A {name}", folder / "pred_probs.npy", folder / "labels.npy",
                        _mask(n, key["label_errors"]), _mask(n, key["reviewed_candidates"]), True))
    for name in SOURCE_B:
        folder = base / "label_error_detection_benchmarks" / name
        key = json.loads((folder / "label_errors.json").read_text())
        n = int(np.load(folder / "labels.npy", mmap_mode="r").shape[0])
        for model in MODELS:
            out.append(Case(f"B {name} {model}", folder / f"pred_probs_{model}.npy", folder / "labels.npy",
                            _mask(n, key["label_errors"]), None, model == HEADLINE_MODEL))
    return out


def _mask(n: int, rows) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[np.asarray(rows, dtype=np.int64)] = True
    return m


def scores(flagged: np.ndarray, errors: np.ndarray) -> tuple[float, float, float]:
    hits = int((flagged & errors).sum())
    p = hits / flagged.sum() if flagged.any() else 0.0
    r = hits / errors.sum() if errors.any() else 0.0
    return p, r, (2 * p * r / (p + r) if p + r > 0 else 0.0)


def load_case(case: Case, tmp: Path) -> tuple[Run, np.ndarray, np.ndarray, float]:
    """The set as a user's one-epoch NPZ, read back with lossacc's loader."""
    probs, labels = np.load(case.probs_path), np.load(case.labels_path)
    folder = tmp / case.name.replace(" ", "_")
    folder.mkdir()
    np.savez(folder / "epoch_1.npz", probs=probs, labels=labels)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = load_run(str(folder))
    return run, probs, labels, time.perf_counter() - start


def _as_rows(run: Run, mask_over_ids: np.ndarray) -> np.ndarray:
    """A mask over the run's id table as a mask over the file's rows (the ids are the row numbers)."""
    out = np.zeros(len(run.ids), dtype=bool)
    out[run.ids[mask_over_ids].astype(np.int64)] = True
    return out


def lossacc_flags(run: Run, thresholds: LabelQualityThresholds = LabelQualityThresholds()):
    start = time.perf_counter()
    lq = label_quality(run, thresholds)
    return _as_rows(run, lq.flagged), time.perf_counter() - start


def cleanlab_flags(probs: np.ndarray, labels: np.ndarray):
    from cleanlab.filter import find_label_issues

    p = probs.astype(np.float64)
    p /= p.sum(axis=1, keepdims=True)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flagged = find_label_issues(labels, p)
    return flagged, time.perf_counter() - start


def before_flags(run: Run) -> np.ndarray:
    return _as_rows(run, suspect_mask(training_dynamics(run)))


def _fmt(p, r, f, n) -> str:
    return f"{p:5.3f} {r:5.3f} {f:5.3f} {n:6d}"


SWEEP = {
    "class_threshold_scale": (0.8, 0.9, 1.0, 1.1, 1.25),
    "temperature_scaled": (True, False),
}


def main(argv: list[str]) -> None:
    args = [a for a in argv if not a.startswith("--")]
    base = Path(args[0]) if args else ROOT.parent / "shared" / "realdata"
    if not base.is_dir():
        raise SystemExit(f"{base}: no such folder (pass the real-data folder as the first argument)")
    sweep = "--sweep" in argv
    head = f"{'set':46s} | {'lossacc P R F1 n':25s} | {'cleanlab P R F1 n':25s} | before F1 | time lossacc (load) / cleanlab"
    print(head)
    print("-" * len(head))
    ahead, within_rows, sweep_rows = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases(base):
            run, probs, labels, t_load = load_case(case, Path(tmp))
            ours, t_ours = lossacc_flags(run)
            theirs, t_theirs = cleanlab_flags(probs, labels)
            before = before_flags(run)
            a, b = scores(ours, case.errors), scores(theirs, case.errors)
            mark = "*" if a[2] > b[2] else " "
            if case.headline:
                ahead.append(a[2] > b[2])
            print(f"{case.name:46s} | {_fmt(*a, int(ours.sum()))}{mark}| {_fmt(*b, int(theirs.sum()))} | "
                  f"{scores(before, case.errors)[2]:9.3f} | {t_ours * 1e3:6.1f} ms ({t_load:4.2f} s) / {t_theirs * 1e3:6.1f} ms")
            if case.reviewed is not None:
                within_rows.append((case.name, _within(ours, case), _within(theirs, case), ours, theirs, case))
            if sweep:
                sweep_rows.append((case.name, case.headline, _sweep(run, case.errors), b[2]))
            del run, probs
    print(f"\nlossacc F1 ahead of cleanlab on {sum(ahead)} of {len(ahead)} headline sets (* = ahead)")
    print("\nSource A within the reviewed rows (precision, recall; flagged rows never reviewed):")
    for name, a, b, ours, theirs, case in within_rows:
        print(f"  {name:12s} lossacc P {a[0]:5.3f} R {a[1]:5.3f} ({int((ours & ~case.reviewed).sum()):4d} unreviewed) | "
              f"cleanlab P {b[0]:5.3f} R {b[1]:5.3f} ({int((theirs & ~case.reviewed).sum()):4d} unreviewed)")
    if sweep:
        _print_sweep(sweep_rows)


def _within(flagged: np.ndarray, case: Case) -> tuple[float, float]:
    inside = flagged & case.reviewed
    p = (inside & case.errors).sum() / inside.sum() if inside.any() else 0.0
    r = (inside & case.errors).sum() / case.errors.sum()
    return float(p), float(r)


def _sweep(run: Run, errors: np.ndarray) -> dict:
    out = {}
    for field, values in SWEEP.items():
        for value in values:
            flagged, _ = lossacc_flags(run, LabelQualityThresholds(**{field: value}))
            out[(field, value)] = scores(flagged, errors)[2]
    return out


def _print_sweep(rows) -> None:
    print("\nSensitivity: lossacc F1 with one setting changed at a time (default: class_threshold_scale "
          "1.0, temperature_scaled True); last column cleanlab")
    keys = [(f, v) for f, vs in SWEEP.items() for v in vs]
    labels = [f"{'scale' if f == 'class_threshold_scale' else 'T*'}={v}" for f, v in keys]
    print(f"{'set':46s} " + " ".join(f"{lab:>10s}" for lab in labels) + f" {'cleanlab':>9s}")
    wins = dict.fromkeys(keys, 0)
    for name, headline, f1, cl in rows:
        print(f"{name:46s} " + " ".join(f"{f1[k]:10.3f}" for k in keys) + f" {cl:9.3f}")
        for k in keys:
            wins[k] += headline and f1[k] > cl
    print(f"{'headline sets ahead of cleanlab':46s} " + " ".join(f"{wins[k]:10d}" for k in keys))


if __name__ == "__main__":
    main(sys.argv[1:])
