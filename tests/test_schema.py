"""The JSON output schema (lossacc_cli/schema/output.schema.json) against real documents.

Every object in the schema lists all of its keys in ``required`` and forbids others, so a
renamed, added or dropped key fails here; the documents come from every command on the sample
data and on small runs that reach the other branches (binary, compact, one epoch, null fields).
"""

from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from lossacc_cli.cli.app import app

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = [ROOT / "sample_data" / name for name in ("balanced", "imbalanced")]
COMMANDS = ("analyze", "compare", "outliers", "calibration")  # check: see CHECK_RULES
runner = CliRunner()


def load_schema() -> dict:
    text = resources.files("lossacc_cli").joinpath("schema/output.schema.json").read_text("utf-8")
    return json.loads(text)


@pytest.fixture(scope="module")
def validator():
    schema = load_schema()
    return jsonschema.Draft202012Validator(schema)


def run_json(command: str, path, *args) -> dict:
    result = runner.invoke(app, [command, str(path), "--format", "json", *map(str, args)],
                           env={"NO_COLOR": "1"})
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def assert_valid(validator, doc: dict) -> None:
    """Validate against the body of ``doc["command"]`` too, for a precise message."""
    if validator.is_valid(doc):
        return
    body = validator.evolve(schema={**validator.schema, "oneOf": [
        {"$ref": f"#/$defs/{doc.get('command')}"}]})
    errors = sorted(body.iter_errors(doc), key=lambda e: list(e.absolute_path)) or list(
        validator.iter_errors(doc))
    raise AssertionError("\n".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors[:10]
    ))


# --- small runs reaching the other branches -----------------------------------------------------


def _binary_run(folder: Path) -> Path:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 30)
    for epoch in (1, 2, 3):
        logit = rng.normal(size=30) + (2 * labels - 1) * epoch
        logit[:3] = -(2 * labels[:3] - 1) * 4.0 * epoch  # a few confidently wrong, growing worse
        np.savez(folder / f"epoch_{epoch}.npz", logit=logit, labels=labels, sample_ids=np.arange(30))
    return folder


def _binary_prob_parquet_run(folder: Path) -> Path:
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 12)
    for epoch in (5, 10):
        prob = np.where(labels == 1, 0.6 + 0.03 * epoch, 0.4 - 0.03 * epoch)
        prob[0] = 1.0 - labels[0]  # p[label] = 0: clipped, warned, reported
        table = pa.table({"sample_id": [f"s{i}" for i in range(12)], "label": labels, "prob": prob})
        table = table.replace_schema_metadata({b"lossacc.class_names": b'["neg", "pos"]'})
        pq.write_table(table, folder / f"epoch_{epoch:03d}.parquet")
    return folder


def _compact_run(folder: Path) -> Path:
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 20)
    for epoch, scale in ((1, 0.3), (2, 0.9)):
        loss = rng.exponential(scale, 20)
        pred = np.where(loss > 0.7, (labels + 1) % 3, labels)
        pq.write_table(pa.table({"sample_id": np.arange(20), "label": labels, "loss": loss,
                                 "pred": pred, "confidence": np.exp(-loss / 3)}),
                       folder / f"epoch_{epoch}.parquet")
    return folder


def _one_epoch_run(folder: Path) -> Path:
    rng = np.random.default_rng(6)
    np.savez(folder / "epoch_7.npz", logits=rng.normal(size=(9, 4)).astype(np.float16),
             labels=np.arange(9) % 4)
    return folder


def _ids_missing_run(folder: Path) -> Path:
    rng = np.random.default_rng(7)
    labels = np.arange(15) % 3
    for epoch, keep in ((1, slice(0, 15)), (2, slice(2, 15)), (3, slice(0, 12))):
        z = rng.normal(size=(15, 3))
        z[np.arange(15), labels] += epoch
        np.savez(folder / f"epoch_{epoch}.npz", logits=z[keep], labels=labels[keep],
                 sample_ids=np.arange(15)[keep])
    return folder


SMALL_RUNS = {"binary logit": _binary_run, "binary prob": _binary_prob_parquet_run,
              "compact": _compact_run, "one epoch": _one_epoch_run,
              "ids missing": _ids_missing_run}


@pytest.fixture(scope="module", params=list(SMALL_RUNS))
def small_run(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param.replace(" ", "_"))
    return SMALL_RUNS[request.param](folder)


# --- the schema itself --------------------------------------------------------------------------


def test_the_schema_is_a_valid_draft_2020_12_schema():
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def _objects(node, where="#"):
    """Every object shape below the root (the root only dispatches on ``command``)."""
    if isinstance(node, dict):
        if "properties" in node and node.get("type") == "object" and where != "#":
            yield where, node
        for key, value in node.items():
            yield from _objects(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _objects(value, f"{where}/{i}")


def test_every_object_requires_all_its_keys_and_forbids_others():
    shapes = list(_objects(load_schema()))
    assert len(shapes) > 20
    for where, shape in shapes:
        assert shape.get("additionalProperties") is False, where
        assert sorted(shape["required"]) == sorted(shape["properties"]), where


def test_the_command_discriminator_covers_every_command():
    schema = load_schema()
    commands = schema["properties"]["command"]["enum"]
    assert commands == ["analyze", "compare", "outliers", "calibration", "check"]
    for command in commands:
        body = schema["$defs"][command]
        assert body["properties"]["command"] == {"const": command}
        assert {"$ref": f"#/$defs/{command}"} in schema["oneOf"]


def test_the_schema_ships_with_the_package():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    assert "schema/*.json" in config["tool"]["setuptools"]["package-data"]["lossacc_cli"]
    assert resources.files("lossacc_cli").joinpath("schema/output.schema.json").is_file()


# --- real documents validate ----------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_sample_data_documents_validate(validator, sample, command):
    if not sample.is_dir():
        pytest.skip(f"{sample.name} sample data not generated")
    assert_valid(validator, run_json(command, sample))


@pytest.mark.parametrize("command", COMMANDS)
def test_small_run_documents_validate(validator, small_run, command):
    assert_valid(validator, run_json(command, small_run))


def test_every_verdict_kind_seen_validates(validator):
    """analyze on every training-run fixture and between pairs of epochs of a sample: many kinds of
    findings, each with its own evidence keys."""
    runs = sorted(p for p in (ROOT / "tests" / "fixtures" / "runs").iterdir() if p.is_dir())
    seen = set()
    for run in runs:
        doc = run_json("analyze", run)
        assert_valid(validator, doc)
        seen.update(v["verdict"] for v in doc["diagnosis"]["verdicts"])
    sample = SAMPLES[1]
    epochs = [row["epoch"] for row in run_json("analyze", sample)["epochs"]]
    for a, b in [(epochs[3], epochs[3]), (epochs[2], epochs[8])]:
        doc = run_json("analyze", sample, "--from", a, "--to", b)
        assert_valid(validator, doc)
        seen.update(v["verdict"] for v in doc["diagnosis"]["verdicts"])
    assert len(seen) >= 5, seen


CHECK_RULES = [
    ("--max-loss-rise", "5%", "--min-accuracy", "0.5", "--max-ece", "1"),
    ("--max-loss", "0.01", "--max-top1pct-share", "0.9", "--max-above-baseline", "0",
     "--fail-on", "tail-driven", "--fail-on", "overconfidence", "--epoch", "best"),
    ("--max-loss-rise", "0.001",),
]


@pytest.mark.parametrize("rules", CHECK_RULES, ids=["pass", "many rules", "fail"])
def test_check_documents_validate(validator, small_run, rules):
    """The CI gate's document: exit 0 when every rule passes, 1 when one fails."""
    result = runner.invoke(app, ["check", str(small_run), "--format", "json", *rules],
                           env={"NO_COLOR": "1"})
    assert result.exit_code in (0, 1), result.stderr
    doc = json.loads(result.stdout)
    assert_valid(validator, doc)
    assert doc["passed"] is (result.exit_code == 0)


# --- renamed, dropped and added keys fail -----------------------------------------------------


def _key_paths(doc, path=()):
    """One path per distinct key position (list items collapsed to their first element)."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield (*path, key)
            yield from _key_paths(value, (*path, key))
    elif isinstance(doc, list) and doc:
        yield from _key_paths(doc[0], (*path, 0))


def _parent(doc, path):
    for step in path[:-1]:
        doc = doc[step]
    return doc


@pytest.mark.parametrize("command", (*COMMANDS, "check"))
def test_a_renamed_or_dropped_key_fails(validator, tmp_path, command):
    folder = _ids_missing_run(tmp_path)
    if command == "check":
        result = runner.invoke(app, ["check", str(folder), "--format", "json", *CHECK_RULES[0]])
        doc = json.loads(result.stdout)
    else:
        doc = run_json(command, folder)
    paths = list(_key_paths(doc))
    assert len(paths) > 10
    for path in paths:
        renamed = copy.deepcopy(doc)
        parent = _parent(renamed, path)
        parent[f"{path[-1]}_renamed"] = parent.pop(path[-1])
        assert not validator.is_valid(renamed), f"renaming {'/'.join(map(str, path))} passed"
        dropped = copy.deepcopy(doc)
        del _parent(dropped, path)[path[-1]]
        assert not validator.is_valid(dropped), f"dropping {'/'.join(map(str, path))} passed"
