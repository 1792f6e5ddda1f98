"""Properties of ``analyze --format json`` on randomly generated VALID runs.

Hypothesis picks the structure (layout, dtype, K, N, epochs, which ids each epoch holds); a
seeded NumPy generator fills in the values. Every run is written to a fresh folder and read back
through the real CLI. Whatever the layout, the document must be internally consistent and its
per-epoch losses must equal a plain-NumPy recomputation from the arrays as written.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from lossacc_cli.cli.app import app
from tests.reference import F32_TOL

runner = CliRunner()

EPS = float(np.finfo(np.float64).eps)

MULTI = ("parquet_list", "parquet_fixed", "parquet_wide", "npz")
BINARY = ("parquet_binary_logit", "parquet_binary_prob")
COMPACT = ("parquet_compact",)
LAYOUTS = MULTI + BINARY + COMPACT


@dataclass(frozen=True)
class Spec:
    layout: str
    form: str  # logits / probs (multi-class layouts)
    dtype: str
    n_classes: int
    n_samples: int
    n_epochs: int
    scale: float
    string_ids: bool
    seed: int


@st.composite
def specs(draw) -> Spec:
    layout = draw(st.sampled_from(LAYOUTS))
    binary = layout in BINARY
    return Spec(
        layout=layout,
        form=draw(st.sampled_from(("logits", "probs"))),
        dtype=draw(st.sampled_from(("float16", "float32", "float64"))),
        n_classes=2 if binary else draw(st.integers(2, 12)),
        n_samples=draw(st.integers(1, 40)),
        n_epochs=draw(st.integers(1, 9)),  # 7+: the interval from the epochs' jitter
        scale=draw(st.sampled_from((0.1, 1.0, 4.0, 30.0))),  # 30: saturated, p[label] can be 0
        string_ids=layout.startswith("parquet") and draw(st.booleans()),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


# --- generating valid epochs ----------------------------------------------------------------


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def valid_probs(z, dtype):
    """Softmax rows cast to ``dtype`` whose row sums stay within 1e-3 of 1 after the cast."""
    p = softmax(z).astype(dtype)
    rows = np.arange(p.shape[0])
    top = p.argmax(axis=1)
    residual = 1.0 - p.astype(np.float64).sum(axis=1)
    p[rows, top] = np.clip(p[rows, top].astype(np.float64) + residual, 0.0, 1.0).astype(dtype)
    return p


def make_epoch(spec: Spec, rng, labels):
    """The arrays of one epoch as they will be written (already in the file's dtype)."""
    n, k = labels.shape[0], spec.n_classes
    z = rng.normal(size=(n, k)) * spec.scale
    z[np.arange(n), labels] += rng.normal(1.0, 1.0, size=n) * spec.scale
    dtype = np.dtype(spec.dtype)
    if spec.layout == "parquet_binary_logit":
        return {"logit": (z[:, 1] - z[:, 0]).astype(dtype)}
    if spec.layout == "parquet_binary_prob":
        return {"prob": np.clip(softmax(z)[:, 1], 0.0, 1.0).astype(dtype)}
    if spec.layout == "parquet_compact":
        p = softmax(z)
        true_prob = p[np.arange(n), labels]
        return {"loss": -np.log(np.maximum(true_prob, EPS)), "pred": p.argmax(axis=1),
                "confidence": p.max(axis=1)}
    if spec.form == "probs":
        return {"probs": valid_probs(z, dtype)}
    with np.errstate(over="ignore"):
        return {"logits": z.astype(dtype)}


def write_epoch(folder: Path, spec: Spec, epoch: int, ids, labels, arrays) -> None:
    if spec.layout == "npz":
        np.savez(folder / f"epoch_{epoch:03d}.npz", labels=labels, sample_ids=ids, **arrays)
        return
    columns = {"sample_id": pa.array(ids.tolist()), "label": pa.array(labels)}
    if spec.layout in MULTI:
        (name, matrix), = arrays.items()
        value_type = pa.from_numpy_dtype(matrix.dtype)
        if spec.layout == "parquet_wide":
            for c in range(matrix.shape[1]):
                columns[f"{name[:-1]}_{c}"] = pa.array(matrix[:, c])
        elif spec.layout == "parquet_fixed":
            flat = pa.array(matrix.reshape(-1), type=value_type)
            columns[name] = pa.FixedSizeListArray.from_arrays(flat, matrix.shape[1])
        else:
            columns[name] = pa.array(list(matrix), type=pa.list_(value_type))
    else:
        columns.update({name: pa.array(values) for name, values in arrays.items()})
    pq.write_table(pa.table(columns), folder / f"epoch_{epoch:03d}.parquet")


def reference_loss(spec: Spec, labels, arrays) -> float:
    """Mean loss from the written arrays, in plain NumPy (p clipped at float64 eps)."""
    rows = np.arange(labels.shape[0])
    if "logits" in arrays:
        z = arrays["logits"].astype(np.float64)
        m = z.max(axis=1)
        lse = m + np.log(np.exp(z - m[:, None]).sum(axis=1))
        return float(np.mean(lse - z[rows, labels]))
    if "probs" in arrays:
        p = arrays["probs"].astype(np.float64)[rows, labels]
        return float(np.mean(-np.log(np.maximum(p, EPS))))
    if "logit" in arrays:
        s = arrays["logit"].astype(np.float64)
        return float(np.mean(np.where(labels == 1, np.logaddexp(0, -s), np.logaddexp(0, s))))
    if "prob" in arrays:
        p = arrays["prob"].astype(np.float64)
        p = np.where(labels == 1, p, 1.0 - p)
        return float(np.mean(-np.log(np.maximum(p, EPS))))
    return float(np.mean(np.maximum(arrays["loss"], 0.0)))


def write_run(folder: Path, spec: Spec) -> dict[int, float]:
    """Write the run; returns the reference mean loss of every epoch."""
    rng = np.random.default_rng(spec.seed)
    n, k = spec.n_samples, spec.n_classes
    all_ids = (np.array([f"id-{i}" for i in range(n)]) if spec.string_ids
               else rng.permutation(10 * n)[:n].astype(np.int64))
    all_labels = rng.integers(0, k, size=n)
    epochs = sorted(rng.choice(np.arange(1, 60), size=spec.n_epochs, replace=False).tolist())
    expected = {}
    for epoch in epochs:
        present = rng.random(n) < 0.85  # some ids missing from some epochs
        present[rng.integers(n)] = True  # never an empty epoch
        order = rng.permutation(np.flatnonzero(present))  # and rows in any order
        ids, labels = all_ids[order], all_labels[order]
        arrays = make_epoch(spec, rng, labels)
        write_epoch(folder, spec, epoch, ids, labels, arrays)
        expected[epoch] = reference_loss(spec, labels, arrays)
    return expected


# --- the properties ---------------------------------------------------------------------------


def in_unit(value) -> bool:
    return value is not None and -1e-12 <= value <= 1 + 1e-12


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs())
@example(spec=Spec("parquet_list", "logits", "float16", 2, 1, 2, 0.1, False, 0))  # one sample: no spread
@example(spec=Spec("npz", "logits", "float32", 5, 40, 9, 1.0, False, 3))  # the epoch-jitter interval
def test_analyze_json_properties(spec: Spec):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "run"
        folder.mkdir()
        expected = write_run(folder, spec)
        result = runner.invoke(app, ["analyze", str(folder), "--format", "json"],
                               env={"NO_COLOR": "1"})
    assert "Traceback" not in result.stdout + result.stderr
    assert result.exit_code == 0, (spec, result.stderr, result.exception)
    assert all(line.startswith("warning: ") for line in result.stderr.splitlines())
    doc = json.loads(result.stdout)
    compact = spec.layout in COMPACT

    assert [row["epoch"] for row in doc["epochs"]] == sorted(expected)
    for row in doc["epochs"]:
        # (N, K) float16/32 scores are reduced in float32 (tests.reference.F32_TOL)
        tol = F32_TOL if spec.layout in MULTI and spec.dtype != "float64" else 1e-9
        assert row["loss"] == pytest.approx(expected[row["epoch"]], rel=tol, abs=1e-12), spec
        for key in ("loss", "loss_p50", "loss_p90", "loss_p99", "loss_max", "baseline_loss"):
            assert row[key] >= 0, (key, row)
        assert row["loss_p50"] <= row["loss_p90"] + 1e-12 <= row["loss_p99"] + 2e-12
        assert row["loss_p99"] <= row["loss_max"] + 1e-12
        for key in ("accuracy", "chance_accuracy", "mean_confidence", "ece", "adaptive_ece", "mce"):
            assert in_unit(row[key]), (key, row)
        # A share of a total loss of 0 is undefined (null).
        assert in_unit(row["top1pct_share"]) or (row["top1pct_share"] is None and row["loss"] == 0)
        assert row["ece"] <= row["mce"] + 1e-12
        if compact:
            assert row["temperature"] is None and row["recalibrated_loss"] is None
            assert row["classwise_ece"] is None
        else:
            assert row["temperature"] > 0
            assert in_unit(row["classwise_ece"]), row
            assert row["recalibrated_loss"] >= 0
            assert row["recalibrated_loss"] <= row["loss"] + 1e-9  # T = 1 is a candidate

    rise = doc["diagnosis"]["rise"]
    if rise is not None:
        parts = {p["name"]: p for p in rise["parts"]}
        assert parts["rise"]["value"] == pytest.approx(rise["rise"], abs=1e-12)
        if "calibration part" in parts:  # the decomposition is exact
            assert parts["calibration part"]["value"] + parts["refinement part"]["value"] == pytest.approx(
                rise["rise"], abs=1e-9)
        for part in parts.values():
            # contributions partition each part; so do their shares (when the part is not 0)
            assert sum(g["contribution"] for g in part["groups"]) == pytest.approx(part["value"], abs=1e-9)
            assert sum(c["contribution"] for c in part["classes"]) == pytest.approx(part["value"], abs=1e-9)
            assert sum(g["count"] for g in part["groups"]) == rise["n_samples"]
            if abs(part["value"]) > 1e-9:
                assert sum(g["share"] for g in part["groups"]) == pytest.approx(1.0, abs=1e-6)
                assert sum(c["share"] for c in part["classes"]) == pytest.approx(1.0, abs=1e-6)
            assert sum(c["sample_share"] for c in part["classes"]) == pytest.approx(1.0)
        for sample in rise["top_samples"]:
            assert sample["loss_from"] >= 0 and sample["loss_to"] >= 0
        assert len(rise["top_samples"]) + rise["top_samples_omitted"] == rise["n_samples"]
    sig = doc["diagnosis"]["significance"]
    if sig is not None:
        assert rise is not None and sig["rise"] == pytest.approx(rise["rise"], abs=1e-12)
        assert sig["basis"] in ("epoch jitter", "samples", "none")
        assert (sig["basis"] == "epoch jitter") == (sig["jitter"] is not None and math.isfinite(sig["jitter"]))
        if rise["n_samples"] >= 2:
            assert sig["samples_low"] <= sig["rise"] + 1e-12 <= sig["samples_high"] + 2e-12
        else:  # one sample has no spread: no interval from the samples
            assert sig["samples_low"] is None and sig["samples_high"] is None and sig["basis"] != "samples"
        if sig["assessable"]:
            assert sig["low"] <= sig["high"] and sig["significant"] == (sig["low"] > 0)
        else:
            assert sig["basis"] == "none" and sig["significant"] is None
        if not doc["diagnosis"]["from_epoch_picked"]:
            assert sig["candidates"] <= 1
    issues = doc["label_issues"]
    assert issues["count"] == len(issues["samples"])  # complete, whatever --top is
    assert doc["checkpoint"]["epoch"] in expected
    assert doc["headline"]
    assert doc["n_samples"] <= spec.n_samples
    assert doc["n_classes"] == spec.n_classes or compact


def test_recomputation_notices_a_wrong_loss(tmp_path):
    """The reference is sharp: a changed logit moves the loss beyond the tolerance."""
    spec = Spec("npz", "logits", "float64", 3, 5, 1, 1.0, False, 7)
    expected = write_run(tmp_path, spec)
    (path,) = tmp_path.glob("*.npz")
    with np.load(path) as archive:
        arrays = dict(archive)
    arrays["logits"][0, arrays["labels"][0]] += 1e-6
    np.savez(path, **arrays)
    doc = json.loads(runner.invoke(app, ["analyze", str(tmp_path), "--format", "json"]).stdout)
    (epoch,) = expected
    assert doc["epochs"][0]["loss"] != pytest.approx(expected[epoch], rel=1e-9, abs=1e-12)
    assert math.isfinite(doc["epochs"][0]["loss"])
