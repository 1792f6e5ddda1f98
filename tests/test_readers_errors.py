"""Readers: every bad input is one InputError line naming the file and the field (and the
count / first offending id where rows are at fault), never a traceback."""

from __future__ import annotations

import json
import os
import pickle
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lossacc_cli.errors import InputError
from lossacc_cli.readers import ReadOptions, discover, read_epoch


def write_parquet(path, columns, *, metadata=None):
    table = pa.table(columns)
    if metadata:
        table = table.replace_schema_metadata(metadata)
    pq.write_table(table, path)


def list_column(rows, value_type=pa.float32()):
    return pa.array(rows, type=pa.list_(value_type))


def read_all(path, options=None):
    sources, _ = discover(path)
    return [read_epoch(source, options or ReadOptions()) for source in sources]


def input_error(call, *expected):
    """The InputError message of ``call()``; asserts it is one line holding every ``expected``."""
    with pytest.raises(InputError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"
    return message


def fails(path, *expected, options=None):
    return input_error(lambda: read_all(path, options), *expected)


def ids_frame(n_rows):
    return np.array([f"s{i}" for i in range(n_rows)])


# --- score values -------------------------------------------------------------------------


def test_nan_logit(tmp_path):
    logits = np.zeros((5, 3), dtype=np.float32)
    logits[1, 2] = logits[3, 0] = np.nan
    np.savez(tmp_path / "epoch_7.npz", labels=np.zeros(5, int), logits=logits,
             sample_ids=ids_frame(5))
    fails(tmp_path, "epoch_7.npz", "'logits'", "finite", "2 rows, first ids: s1, s3")


def test_inf_logit_from_float16_overflow(tmp_path):
    with np.errstate(over="ignore"):  # 70000 > float16 max (65504): the cast gives inf
        logits = np.array([[1.0, 70000.0], [0.0, 1.0]], dtype=np.float32).astype(np.float16)
    np.savez(tmp_path / "epoch_1.npz", labels=[0, 1], logits=logits)
    fails(tmp_path, "epoch_1.npz", "'logits'", "1 row, first ids: 0", "float16 overflow")


def test_binary_logit_nan(tmp_path):
    write_parquet(tmp_path / "e1.parquet", {"label": [0, 1], "logit": [0.3, np.nan]})
    fails(tmp_path, "e1.parquet", "'logit'", "1 row, first ids: 1")


def test_probs_out_of_range(tmp_path):
    probs = np.array([[0.5, 0.5], [1.2, -0.2], [0.3, 0.7]])
    np.savez(tmp_path / "e1.npz", labels=[0, 1, 1], probs=probs)
    fails(tmp_path, "e1.npz", "'probs'", "outside [0, 1]", "1 row, first ids: 1",
          "--renormalize")


def test_probs_row_sums_off(tmp_path):
    probs = np.array([[0.5, 0.5], [0.6, 0.6], [0.3, 0.3], [0.2, 0.8]])
    write_parquet(tmp_path / "e1.parquet",
                  {"label": [0, 1, 1, 0], "sample_id": ["a", "b", "c", "d"],
                   "probs": list_column(probs.tolist(), pa.float64())})
    fails(tmp_path, "e1.parquet", "'probs'", "row sums differ from 1 by up to 0.4",
          "2 rows, first ids: b, c", "pass --renormalize to rescale")


def test_renormalize_rescales_only_the_rows_beyond_tolerance(tmp_path):
    probs = np.array([[0.5, 0.5], [0.6, 0.6], [0.9, -0.1], [0.2, 0.8 + 5e-4]], dtype=np.float32)
    np.savez(tmp_path / "e1.npz", labels=[0, 1, 1, 0], probs=probs)

    (data,) = read_all(tmp_path, ReadOptions(renormalize=True))

    expected = probs.copy()
    expected[1] = [0.5, 0.5]  # 0.6 / 1.2
    expected[2] = [1.0, 0.0]  # -0.1 clipped, then 0.9 / 0.9
    np.testing.assert_allclose(data.scores, expected, rtol=1e-6)
    assert data.scores[3].tolist() == probs[3].tolist()  # within tolerance: untouched
    assert data.scores.dtype == np.float32
    (note,) = data.notes
    assert "renormalised 2 of 4 rows" in note and "e1.npz" in note
    assert np.load(tmp_path / "e1.npz")["probs"].tolist() == probs.tolist()  # input untouched


def test_renormalize_cannot_fix_rows_summing_to_zero(tmp_path):
    np.savez(tmp_path / "e1.npz", labels=[0, 1], probs=np.array([[0.0, -0.2], [0.4, 0.6]]))
    fails(tmp_path, "e1.npz", "'probs'", "sum to 0", "1 row, first ids: 0",
          options=ReadOptions(renormalize=True))


def test_binary_prob_out_of_range(tmp_path):
    np.savez(tmp_path / "e1.npz", labels=[0, 1, 1], prob=np.array([0.2, 1.5, 0.9]))
    fails(tmp_path, "e1.npz", "'prob'", "outside [0, 1]", "1 row, first ids: 1")


def test_integer_scores(tmp_path):
    np.savez(tmp_path / "e1.npz", labels=[0, 1], logits=np.array([[1, 2], [3, 4]]))
    fails(tmp_path, "e1.npz", "'logits'", "floating point", "int64")


def test_string_logits_column(tmp_path):
    write_parquet(tmp_path / "e1.parquet", {"label": [0, 1], "logits": ["[0.1, 0.9]", "[1, 2]"]})
    fails(tmp_path, "e1.parquet", "'logits'", "list of floats", "string")


def test_list_of_integers_logits_column(tmp_path):
    write_parquet(tmp_path / "e1.parquet",
                  {"label": [0, 1], "logits": list_column([[1, 2], [3, 4]], pa.int64())})
    fails(tmp_path, "e1.parquet", "'logits'", "floating point", "int64")


def test_lists_of_unequal_length(tmp_path):
    write_parquet(tmp_path / "e1.parquet",
                  {"label": [0, 1, 0, 1], "sample_id": [10, 11, 12, 13],
                   "logits": list_column([[0.1, 0.2], [0.3], [0.1, 0.2], [1.0, 2.0, 3.0]])})
    fails(tmp_path, "e1.parquet", "'logits'", "unequal length", "2 rows, first ids: 11, 13")


def test_null_inside_lists(tmp_path):
    write_parquet(tmp_path / "e1.parquet",
                  {"label": [0, 1], "logits": list_column([[0.1, 0.2], [0.3, None]])})
    fails(tmp_path, "e1.parquet", "'logits'", "null", "1 row, first ids: 1")


def test_gap_in_wide_columns(tmp_path):
    write_parquet(tmp_path / "e1.parquet",
                  {"label": [0, 1], "logit_0": [0.1, 0.2], "logit_2": [0.3, 0.4]})
    fails(tmp_path, "e1.parquet", "logit_k", "missing logit_1")


def test_single_score_column_is_not_a_classifier(tmp_path):
    np.savez(tmp_path / "e1.npz", labels=[0, 0], logits=np.ones((2, 1)))
    fails(tmp_path, "e1.npz", "'logits'", "at least 2 classes")


def test_no_scores(tmp_path):
    write_parquet(tmp_path / "e1.parquet", {"label": [0, 1], "loss": [0.1, 0.2]})
    fails(tmp_path, "e1.parquet", "'logits'", "no scores", "missing: pred, confidence")


def test_requested_scores_missing(tmp_path):
    np.savez(tmp_path / "e1.npz", labels=[0, 1], logits=np.ones((2, 2)))
    fails(tmp_path, "e1.npz", "'probs'", "not found", options=ReadOptions(scores="probs"))


# --- labels, ids, lengths ---------------------------------------------------------------------


def test_labels_out_of_range(tmp_path):
    np.savez(tmp_path / "e1.npz", labels=[0, 3, 1, 5], logits=np.zeros((4, 3)),
             sample_ids=[100, 101, 102, 103])
    fails(tmp_path, "e1.npz", "'labels'", "outside [0, 3)", "2 rows, first ids: 101, 103")


def test_negative_labels(tmp_path):
    write_parquet(tmp_path / "e1.parquet",
                  {"target": [0, -1], "logits": list_column([[0.1, 0.2], [0.3, 0.4]])})
    fails(tmp_path, "e1.parquet", "'target'", "negative", "1 row, first ids: 1")


def test_binary_labels_must_be_zero_or_one(tmp_path):
    np.savez(tmp_path / "e1.npz", labels=[0, 2], logit=np.array([0.1, 0.2]))
    fails(tmp_path, "e1.npz", "'labels'", "outside {0, 1}", "1 row, first ids: 1")


def test_float_labels(tmp_path):
    np.savez(tmp_path / "e1.npz", labels=np.array([0.0, 1.0]), logits=np.zeros((2, 2)))
    fails(tmp_path, "e1.npz", "'labels'", "must be integers", "float64", "cast")


def test_string_labels(tmp_path):
    write_parquet(tmp_path / "e1.parquet",
                  {"label": ["cat", "dog"], "logits": list_column([[0.1, 0.2], [0.3, 0.4]])})
    fails(tmp_path, "e1.parquet", "'label'", "must be integers", "strings")


def test_null_labels(tmp_path):
    write_parquet(tmp_path / "e1.parquet",
                  {"label": pa.array([0, None, 1]), "sample_id": ["a", "b", "c"],
                   "logits": list_column([[0.1, 0.2]] * 3)})
    fails(tmp_path, "e1.parquet", "'label'", "null", "1 row, first ids: b")


def test_missing_label_column(tmp_path):
    np.savez(tmp_path / "e1.npz", classes=[0, 1], logits=np.zeros((2, 2)))
    fails(tmp_path, "e1.npz", "'label'", "not found", "labels, label, targets, y_true, y")


def test_forced_label_column_missing(tmp_path):
    np.savez(tmp_path / "e1.npz", labels=[0, 1], logits=np.zeros((2, 2)))
    fails(tmp_path, "e1.npz", "'gold'", "not found", options=ReadOptions(label_col="gold"))


@pytest.mark.parametrize("ids", [[4, 7, 4, 9, 7, 4], ["x", "y", "x", "z", "y", "x"]])
def test_duplicate_ids(tmp_path, ids):
    write_parquet(tmp_path / "e1.parquet",
                  {"label": [0] * 6, "sample_id": ids, "logits": list_column([[0.1, 0.2]] * 6)})
    message = fails(tmp_path, "e1.parquet", "'sample_id'", "not unique", "3 rows")
    assert f"first ids: {ids[0]}, {ids[1]}" in message  # the repeated ids, in order of repeat


def test_float_ids(tmp_path):
    np.savez(tmp_path / "e1.npz", labels=[0, 1], ids=np.array([1.0, 2.0]),
             logits=np.zeros((2, 2)))
    fails(tmp_path, "e1.npz", "'ids'", "integers or strings")


def test_mismatched_lengths(tmp_path):
    np.savez(tmp_path / "e1.npz", labels=[0, 1, 1], logits=np.zeros((2, 2)))
    fails(tmp_path, "e1.npz", "'logits'", "mismatched lengths", "labels 3", "logits 2")


@pytest.mark.parametrize("fmt", ["parquet", "npz"])
def test_zero_rows(tmp_path, fmt):
    if fmt == "npz":
        np.savez(tmp_path / "e1.npz", labels=np.zeros(0, int), logits=np.zeros((0, 3)))
    else:
        write_parquet(tmp_path / "e1.parquet",
                      {"label": pa.array([], pa.int64()), "logits": list_column([])})
    fails(tmp_path, f"e1.{fmt}", "label", "no samples")


def test_compact_stats_values(tmp_path):
    base = {"label": [0, 1, 1], "loss": [0.1, 0.2, 0.3], "pred": [0, 1, 1],
            "confidence": [0.9, 0.8, 0.7]}
    cases = [("loss", [0.1, -0.5, np.inf], "'loss'", "2 rows, first ids: 1, 2"),
             ("pred", [0, 1, -1], "'pred'", "1 row, first ids: 2"),
             ("confidence", [0.9, 1.2, 0.7], "'confidence'", "1 row, first ids: 1"),
             ("true_prob", [0.9, 0.8, -0.3], "'true_prob'", "1 row, first ids: 2")]
    for n, (name, values, field, rows) in enumerate(cases):
        folder = tmp_path / str(n)
        folder.mkdir()
        write_parquet(folder / "epoch_1.parquet", {**base, name: values})
        fails(folder, "epoch_1.parquet", field, rows)


# --- class names, split -----------------------------------------------------------------------


@pytest.mark.parametrize("value", [json.dumps(["a", "b"]), json.dumps({"a": 1}),
                                   json.dumps(["a", 2, "c"]), "not json"])
def test_bad_class_names(tmp_path, value):
    write_parquet(tmp_path / "e1.parquet",
                  {"label": [0, 1], "logits": list_column([[0.1, 0.2, 0.7]] * 2)},
                  metadata={"lossacc.class_names": value})
    fails(tmp_path, "e1.parquet", "'lossacc.class_names'")


def test_split_requested_without_split_column(tmp_path):
    np.savez(tmp_path / "e1.npz", labels=[0, 1], logits=np.zeros((2, 2)))
    write_parquet(tmp_path / "e2.parquet",
                  {"label": [0, 1], "logits": list_column([[0.1, 0.2]] * 2)})
    sources, _ = discover(tmp_path)
    for source, name in zip(sources, ["e1.npz", "e2.parquet"]):
        input_error(lambda s=source: read_epoch(s, ReadOptions(split="val")), name, "'split'")


def test_split_with_no_matching_rows(tmp_path):
    write_parquet(tmp_path / "e1.parquet",
                  {"split": ["train", "test"], "label": [0, 1],
                   "logits": list_column([[0.1, 0.2]] * 2)})
    fails(tmp_path, "e1.parquet", "'split'", "no rows with split == 'val'", "train",
          options=ReadOptions(split="val"))


# --- epochs and discovery ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "npz"])
def test_epoch_not_constant_in_a_per_epoch_file(tmp_path, fmt):
    if fmt == "npz":
        np.savez(tmp_path / "epoch_1.npz", epoch=[1, 2, 2], labels=[0, 1, 1],
                 logits=np.zeros((3, 2)))
    else:
        write_parquet(tmp_path / "epoch_1.parquet",
                      {"epoch": [1, 2, 2], "label": [0, 1, 1],
                       "logits": list_column([[0.1, 0.2]] * 3)})
    np.savez(tmp_path / "epoch_9.npz", labels=[0], logits=np.zeros((1, 2)))
    fails(tmp_path, f"epoch_1.{fmt}", "'epoch'", "not constant", "1, 2")


def test_two_files_claim_the_same_epoch(tmp_path):
    np.savez(tmp_path / "epoch_005.npz", labels=[0], logits=np.zeros((1, 2)))
    write_parquet(tmp_path / "val-ep5.parquet",
                  {"label": [0], "logits": list_column([[0.1, 0.2]])})
    message = input_error(lambda: discover(tmp_path), "'epoch'", "epoch 5", "epoch_005.npz",
                          "val-ep5.parquet")
    assert "two files" in message


def test_hive_folder_part_disagreeing_with_folder_epoch(tmp_path):
    (tmp_path / "epoch=3").mkdir()
    np.savez(tmp_path / "epoch=3" / "part-0.npz", epoch=4, labels=[0], logits=np.zeros((1, 2)))
    fails(tmp_path, "part-0.npz", "'epoch'", "expected only 3")


def test_file_without_any_epoch_number(tmp_path):
    np.savez(tmp_path / "preds.npz", labels=[0], logits=np.zeros((1, 2)))
    input_error(lambda: discover(tmp_path), "preds.npz", "'epoch'", "file name")


def test_part_folder_without_epoch_column(tmp_path):
    write_parquet(tmp_path / "part-0.parquet", {"label": [0], "logits": list_column([[0.1, 0.2]])})
    input_error(lambda: discover(tmp_path), "part-0.parquet", "'epoch'", "long table")


@pytest.mark.parametrize("unrelated", [False, True])
def test_empty_directory(tmp_path, unrelated):
    if unrelated:
        (tmp_path / "notes.txt").write_text("x")
    input_error(lambda: discover(tmp_path), str(tmp_path), "no .parquet or .npz")


def test_missing_path(tmp_path):
    input_error(lambda: discover(tmp_path / "nope"), "nope", "no such file")


def test_path_of_another_file_type(tmp_path):
    (tmp_path / "preds.csv").write_text("label,logit\n0,1.0\n")
    input_error(lambda: discover(tmp_path / "preds.csv"), "preds.csv", ".parquet or .npz")


def test_non_utf8_name_in_an_error(tmp_path):
    with open(os.fsencode(tmp_path) + b"/\xffepoch_2.npz", "wb") as handle:
        np.savez(handle, labels=[0, 7], logits=np.zeros((2, 2)))
    message = fails(os.fsencode(tmp_path), "\\xffepoch_2.npz", "'labels'")
    message.encode("utf-8")  # printable


# --- damaged or hostile files -------------------------------------------------------------------


class _WritesMarker:
    """Unpickling this object creates a folder: proof that something was unpickled."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.mkdir, (self.path,))


@pytest.mark.parametrize("field", ["sample_ids", "logits"])
def test_object_array_npz_is_refused_without_unpickling(tmp_path, field):
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(_WritesMarker(control)))
    assert control.exists()  # the payload works when unpickled

    marker = tmp_path / "marker"
    arrays = {"labels": np.array([0, 1]), "sample_ids": np.array(["a", "b"]),
              "logits": np.zeros((2, 2))}
    arrays[field] = np.array([_WritesMarker(marker), None], dtype=object)
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "epoch_1.npz", **arrays)

    fails(tmp_path / "data", "epoch_1.npz", f"'{field}'", "object arrays are not read")
    assert not marker.exists()


def test_pickle_disguised_as_npz(tmp_path):
    marker = tmp_path / "marker"
    (tmp_path / "epoch_1.npz").write_bytes(pickle.dumps(_WritesMarker(marker)))
    input_error(lambda: discover(tmp_path), "epoch_1.npz", "cannot read")
    assert not marker.exists()


def test_truncated_parquet(tmp_path):
    path = tmp_path / "epoch_1.parquet"
    write_parquet(path, {"label": [0, 1] * 50, "logits": list_column([[0.1, 0.9]] * 100)})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    input_error(lambda: read_all(tmp_path), "epoch_1.parquet", "cannot read")


@pytest.mark.parametrize("name", ["epoch_1.parquet", "epoch_1.npz"])
def test_zero_byte_file(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    input_error(lambda: read_all(tmp_path), name, "cannot read")


def test_truncated_npz(tmp_path):
    path = tmp_path / "epoch_1.npz"
    logits = np.random.default_rng(0).random((1000, 4))
    np.savez_compressed(path, labels=np.zeros(1000, int), logits=logits)
    path.write_bytes(path.read_bytes()[:-200])
    input_error(lambda: read_all(tmp_path), "epoch_1.npz", "cannot read")


@pytest.mark.parametrize("compressed", [True, False])
def test_corrupt_npz_member(tmp_path, compressed):
    path = tmp_path / "epoch_1.npz"
    save = np.savez_compressed if compressed else np.savez
    save(path, labels=np.zeros(1000, int), logits=np.random.default_rng(0).random((1000, 4)))
    with zipfile.ZipFile(path) as archive:
        member = archive.getinfo("logits.npy")
    data = bytearray(path.read_bytes())
    start = member.header_offset + 30 + len(member.filename) + 200  # inside the array data
    data[start:start + 50] = bytes(b ^ 0xFF for b in data[start:start + 50])
    path.write_bytes(bytes(data))
    input_error(lambda: read_all(tmp_path), "epoch_1.npz", "'logits'", "cannot read")


def test_npy_file_named_npz(tmp_path):
    np.save(tmp_path / "arr.npy", np.zeros(3))
    os.rename(tmp_path / "arr.npy", tmp_path / "epoch_1.npz")
    input_error(lambda: read_all(tmp_path), "epoch_1.npz", "not named arrays")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root can read any file")
def test_unreadable_file(tmp_path):
    path = tmp_path / "epoch_1.npz"
    np.savez(path, labels=[0], logits=np.zeros((1, 2)))
    path.chmod(0)
    try:
        input_error(lambda: read_all(tmp_path), "epoch_1.npz", "cannot read")
    finally:
        path.chmod(0o600)
