"""Readers: every supported layout round-trips exactly (the expected values are the arrays the
test itself wrote)."""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lossacc_cli.readers import EpochSource, ReadOptions, discover, read_epoch
from lossacc_cli.readers.discover import epoch_from_name
from lossacc_cli.readers.parquet import list_matrix
from tests.helpers import list_array

RNG = np.random.default_rng(20240601)


def write_parquet(path, columns, *, metadata=None, **kwargs):
    table = pa.table(columns)
    if metadata:
        table = table.replace_schema_metadata(metadata)
    pq.write_table(table, path, **kwargs)


def read_all(path, options=None):
    sources, _ = discover(path)
    return [read_epoch(source, options or ReadOptions()) for source in sources]


def read_one(path, options=None):
    (data,) = read_all(path, options)
    return data


def logits_of(n_rows, n_classes, dtype=np.float32):
    return RNG.normal(size=(n_rows, n_classes)).astype(dtype)


def probs_of(n_rows, n_classes, dtype=np.float64):
    raw = RNG.random((n_rows, n_classes)) + 0.05
    return (raw / raw.sum(axis=1, keepdims=True)).astype(dtype)


# --- multi-class scores ---------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["list", "large_list", "fixed_size_list"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_list_column_round_trip_keeps_values_and_dtype(tmp_path, layout, dtype):
    logits = logits_of(7, 4, dtype)
    labels = np.array([0, 1, 2, 3, 0, 1, 2])
    path = tmp_path / "epoch_003.parquet"
    write_parquet(path, {"label": labels, "logits": list_array(logits, layout)})

    data = read_one(path)

    assert (data.epoch, data.kind, data.n_classes) == (3, "logits", 4)
    assert data.scores.dtype == dtype
    np.testing.assert_array_equal(data.scores, logits)
    np.testing.assert_array_equal(data.labels, labels)
    assert data.labels.dtype == np.int64
    assert data.ids_from_rows
    np.testing.assert_array_equal(data.ids, np.arange(7))


@pytest.mark.parametrize("prefix,kind", [("logit", "logits"), ("prob", "probs")])
def test_wide_columns_in_numeric_class_order(tmp_path, prefix, kind):
    n_classes = 12  # prefix_10 and prefix_11 must come after prefix_9, not after prefix_1
    scores = logits_of(5, n_classes) if kind == "logits" else probs_of(5, n_classes, np.float32)
    labels = np.array([0, 11, 5, 10, 9])
    columns = {"label": labels}
    for k in RNG.permutation(n_classes):  # column order in the file is irrelevant
        columns[f"{prefix}_{k}"] = scores[:, k]
    write_parquet(tmp_path / "epoch_1.parquet", columns)

    data = read_one(tmp_path / "epoch_1.parquet")

    assert (data.kind, data.n_classes) == (kind, n_classes)
    assert data.scores.dtype == np.float32
    np.testing.assert_array_equal(data.scores, scores)


@pytest.mark.parametrize("name", ["logit", "prob"])
@pytest.mark.parametrize("fmt", ["parquet", "npz"])
def test_binary_scores(tmp_path, name, fmt):
    scores = RNG.random(6) if name == "prob" else RNG.normal(size=6)
    labels = np.array([0, 1, 1, 0, 1, 0])
    if fmt == "parquet":
        write_parquet(tmp_path / "e2.parquet", {"y": labels, name: scores})
    else:
        np.savez(tmp_path / "e2.npz", y=labels, **{name: scores})

    data = read_one(tmp_path / f"e2.{fmt}")

    assert (data.epoch, data.kind, data.n_classes) == (2, name, 2)
    np.testing.assert_array_equal(data.scores, scores)
    np.testing.assert_array_equal(data.labels, labels)


@pytest.mark.parametrize("name", ["logits", "probs"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_npz_score_matrix(tmp_path, name, dtype):
    scores = logits_of(5, 3, dtype) if name == "logits" else probs_of(5, 3, dtype)
    labels = np.array([2, 1, 0, 1, 2], dtype=np.int32)
    ids = np.array([10, 11, 12, 13, 14])
    np.savez(tmp_path / "run3_epoch12.npz", labels=labels, sample_ids=ids, **{name: scores})

    data = read_one(tmp_path)

    assert (data.epoch, data.kind, data.n_classes) == (12, name, 3)
    assert data.scores.dtype == dtype
    np.testing.assert_array_equal(data.scores, scores)
    np.testing.assert_array_equal(data.ids, ids)
    assert data.ids.dtype == np.int64 and not data.ids_from_rows
    assert data.labels.dtype == np.int64


@pytest.mark.parametrize("fmt", ["parquet", "npz"])
def test_compact_stats(tmp_path, fmt):
    labels = np.array([0, 2, 1, 2])
    loss = np.array([0.1, 2.3, 0.0, 0.7], dtype=np.float32)
    pred = np.array([0, 1, 1, 2])
    confidence = np.array([0.9, 0.6, 1.0, 0.5], dtype=np.float32)
    true_prob = np.array([0.9, 0.1, 1.0, 0.5], dtype=np.float32)
    columns = {"label": labels, "loss": loss, "pred": pred, "confidence": confidence}
    if fmt == "parquet":
        write_parquet(tmp_path / "epoch_4.parquet", {**columns, "true_prob": true_prob})
    else:
        np.savez(tmp_path / "epoch_4.npz", **columns)

    data = read_one(tmp_path)

    assert (data.kind, data.scores, data.n_classes) == ("stats", None, 3)  # max(2, 2) + 1
    np.testing.assert_array_equal(data.stats.loss, loss)
    np.testing.assert_array_equal(data.stats.pred, pred)
    np.testing.assert_array_equal(data.stats.confidence, confidence)
    if fmt == "parquet":
        np.testing.assert_array_equal(data.stats.true_prob, true_prob)
    else:
        assert data.stats.true_prob is None


def test_compact_stats_n_classes_from_class_names(tmp_path):
    names = ["cat", "dog", "eel", "fox", "gnu"]
    write_parquet(
        tmp_path / "epoch_1.parquet",
        {"label": [0, 1], "loss": [0.2, 0.3], "pred": [0, 1], "confidence": [0.8, 0.7]},
        metadata={"lossacc.class_names": json.dumps(names)},
    )
    data = read_one(tmp_path)
    assert data.n_classes == 5 and data.class_names == tuple(names)


def test_scores_win_over_compact_columns(tmp_path):
    logits = logits_of(3, 2)
    write_parquet(
        tmp_path / "epoch_1.parquet",
        {"label": [0, 1, 0], "logits": list_array(logits), "loss": [1.0, 1.0, 1.0],
         "pred": [0, 0, 0], "confidence": [0.5, 0.5, 0.5]},
    )
    data = read_one(tmp_path)
    assert data.kind == "logits" and data.stats is None
    np.testing.assert_array_equal(data.scores, logits)


def test_both_logits_and_probs_prefers_logits_with_a_note(tmp_path):
    logits, probs = logits_of(4, 3), probs_of(4, 3)
    labels = [0, 1, 2, 0]
    write_parquet(tmp_path / "e1.parquet",
                  {"label": labels, "probs": list_array(probs), "logits": list_array(logits)})

    default = read_one(tmp_path)
    chosen = read_one(tmp_path, ReadOptions(scores="probs"))

    assert default.kind == "logits"
    np.testing.assert_array_equal(default.scores, logits)
    assert any("--scores probs" in note for note in default.notes)
    assert chosen.kind == "probs"
    np.testing.assert_array_equal(chosen.scores, probs)


def test_probabilities_within_tolerance_are_kept_unchanged(tmp_path):
    # float16 rounding plus a +1e-5 offset on every entry: row sums off by ~3e-5 + rounding.
    probs = (probs_of(50, 3) + 1e-5).astype(np.float16)
    probs[0] = [0.0, 0.0, 1.0]
    probs[1] = [-5e-4, 0.0005, 1.0]  # a tiny negative entry, within the tolerance
    np.savez(tmp_path / "epoch_1.npz", labels=np.zeros(50, dtype=np.int64), probs=probs)

    data = read_one(tmp_path)

    assert data.scores.dtype == np.float16 and data.notes == ()
    np.testing.assert_array_equal(data.scores, probs)


# --- folders, long format, epochs -------------------------------------------------------


@pytest.mark.parametrize("fmt", ["parquet", "npz"])
def test_hive_folders_with_two_parts_each(tmp_path, fmt):
    expected = {}
    for epoch in (2, 10):
        folder = tmp_path / f"epoch={epoch}"
        folder.mkdir()
        logits = logits_of(6, 3)
        labels = RNG.integers(0, 3, 6)
        ids = np.arange(6) + 100 * epoch
        expected[epoch] = (logits, labels, ids)
        # file-name order decides how the parts are combined: part-0 first, then part-1
        for part, rows in (("part-1", slice(3, 6)), ("part-0", slice(0, 3))):
            if fmt == "parquet":
                write_parquet(folder / f"{part}.parquet",
                              {"label": labels[rows], "sample_id": ids[rows],
                               "logits": list_array(logits[rows])})
            else:
                np.savez(folder / f"{part}.npz", labels=labels[rows], sample_ids=ids[rows],
                         logits=logits[rows])

    sources, notes = discover(tmp_path)
    got = [read_epoch(s, ReadOptions()) for s in sources]

    assert [s.epoch for s in sources] == [2, 10] and notes == ()
    assert {s.fmt for s in sources} == {fmt}
    for data in got:
        logits, labels, ids = expected[data.epoch]
        np.testing.assert_array_equal(data.scores, logits)
        np.testing.assert_array_equal(data.labels, labels)
        np.testing.assert_array_equal(data.ids, ids)


def test_one_epoch_folder_given_as_path(tmp_path):
    folder = tmp_path / "epoch=8"
    folder.mkdir()
    logits = logits_of(4, 2)
    for n, rows in enumerate((slice(0, 1), slice(1, 4))):
        write_parquet(folder / f"part-{n}.parquet",
                      {"label": [0, 1, 1, 0][rows], "logits": list_array(logits[rows])})
    (data,) = read_all(folder)
    assert data.epoch == 8
    np.testing.assert_array_equal(data.scores, logits)


def _long_table(epochs, n_rows):
    rows = [(e, i) for e in epochs for i in range(n_rows)]
    epoch_col = np.array([e for e, _ in rows])
    ids = np.array([f"s{i}" for _, i in rows], dtype=object)
    logits = logits_of(len(rows), 3)
    labels = RNG.integers(0, 3, len(rows))
    return epoch_col, ids, logits, labels


def test_long_format_single_file(tmp_path):
    epoch_col, ids, logits, labels = _long_table([1, 2, 5], 4)
    path = tmp_path / "predictions.parquet"
    # small row groups: some are skipped from their statistics, one spans two epochs
    write_parquet(path, {"epoch": epoch_col, "sample_id": ids, "label": labels,
                         "logits": list_array(logits)}, row_group_size=3)

    sources, notes = discover(path)

    assert [(s.epoch, s.fmt) for s in sources] == [(1, "long"), (2, "long"), (5, "long")]
    assert notes == ()
    data = read_epoch(sources[1], ReadOptions())
    rows = epoch_col == 2
    assert data.epoch == 2 and data.source.endswith("predictions.parquet[epoch=2]")
    np.testing.assert_array_equal(data.scores, logits[rows])
    np.testing.assert_array_equal(data.labels, labels[rows])
    assert data.ids.tolist() == ids[rows].tolist()


def test_folder_of_part_files_is_one_long_table(tmp_path):
    epoch_col, ids, logits, labels = _long_table([3, 7], 5)
    halves = (slice(0, 6), slice(6, 10))  # epoch 3 rows land in both parts
    for n, rows in enumerate(halves):
        write_parquet(tmp_path / f"part-{n:05d}.parquet",
                      {"epoch": epoch_col[rows], "sample_id": ids[rows], "label": labels[rows],
                       "logits": list_array(logits[rows])})
    (tmp_path / "_SUCCESS").write_text("")

    sources, notes = discover(tmp_path)
    got = [read_epoch(s, ReadOptions()) for s in sources]

    assert [(s.epoch, s.fmt) for s in sources] == [(3, "long"), (7, "long")] and notes == ()
    for data in got:
        rows = epoch_col == data.epoch
        np.testing.assert_array_equal(data.scores, logits[rows])
        assert data.ids.tolist() == ids[rows].tolist()


def test_long_file_with_one_epoch_is_read_as_that_epoch(tmp_path):
    write_parquet(tmp_path / "preds.parquet",
                  {"epoch": [4, 4], "label": [0, 1], "logits": list_array(logits_of(2, 2))})
    (source,) = discover(tmp_path / "preds.parquet")[0]
    assert (source.epoch, source.fmt) == (4, "parquet")


@pytest.mark.parametrize(
    "name,epoch",
    [("epoch_050.parquet", 50), ("val-ep50.npz", 50), ("50.npz", 50), ("run3_epoch12.npz", 12),
     ("ckpt-7.snappy.parquet", 7)],
)
def test_epoch_from_file_name(tmp_path, name, epoch):
    if name.endswith(".npz"):
        np.savez(tmp_path / name, labels=[0, 1], logits=logits_of(2, 2))
    else:
        write_parquet(tmp_path / name, {"label": [0, 1], "logits": list_array(logits_of(2, 2))})
    assert epoch_from_name(name) == epoch
    assert [s.epoch for s in discover(tmp_path)[0]] == [epoch]


def test_epoch_column_wins_over_file_name_and_gaps_are_fine(tmp_path):
    write_parquet(tmp_path / "epoch_1.parquet",
                  {"epoch": [9, 9], "label": [0, 1], "logits": list_array(logits_of(2, 2))})
    np.savez(tmp_path / "a.npz", epoch=np.array(3), labels=[1, 0], logits=logits_of(2, 2))
    np.savez(tmp_path / "ep20.npz", labels=[1, 0], logits=logits_of(2, 2))
    sources, _ = discover(tmp_path)
    assert [s.epoch for s in sources] == [3, 9, 20]
    assert [read_epoch(s).epoch for s in sources] == [3, 9, 20]


def test_unrelated_files_are_ignored_with_a_note(tmp_path):
    np.savez(tmp_path / "epoch_1.npz", labels=[0, 1], logits=logits_of(2, 2))
    for name in ("README.txt", "config.yaml", "plot.png"):
        (tmp_path / name).write_text("x")
    (tmp_path / "logs").mkdir()
    (tmp_path / ".DS_Store").write_text("")  # hidden bookkeeping: skipped without a note

    sources, notes = discover(tmp_path)

    assert [s.epoch for s in sources] == [1]
    (note,) = notes
    assert "ignored 4 unrelated files" in note
    for name in ("README.txt", "config.yaml", "logs/", "plot.png"):
        assert name in note
    assert ".DS_Store" not in note


def test_symlink_loops_do_not_hang(tmp_path):
    np.savez(tmp_path / "epoch_1.npz", labels=[0, 1], logits=logits_of(2, 2))
    os.symlink(tmp_path, tmp_path / "loop")  # a folder link pointing at its own parent
    os.symlink(tmp_path / "self", tmp_path / "self")  # a link pointing at itself

    sources, notes = discover(tmp_path)

    assert [s.epoch for s in sources] == [1]
    assert "loop/" in notes[0] and "self" in notes[0]


def test_non_utf8_file_names(tmp_path):
    folder = os.fsencode(tmp_path)
    logits = logits_of(3, 2)
    with open(folder + b"/ep\xff_3.npz", "wb") as handle:
        np.savez(handle, labels=[0, 1, 1], logits=logits)
    with open(folder + b"/\xfe_epoch_4.parquet", "wb") as handle:
        pq.write_table(pa.table({"label": [1, 0, 1], "logits": list_array(logits)}), handle)

    sources, _ = discover(folder)
    got = [read_epoch(s) for s in sources]

    assert [d.epoch for d in got] == [3, 4]
    for data in got:
        np.testing.assert_array_equal(data.scores, logits)
        data.source.encode("utf-8")  # printable: undecodable bytes are shown as escapes
    assert "ep\\xff_3.npz" in got[0].source


# --- ids, labels, options ---------------------------------------------------------------------


def test_string_ids_are_kept_as_str_objects(tmp_path):
    ids = ["img_3", "img_1", "img_2"]
    write_parquet(tmp_path / "e5.parquet",
                  {"sample_id": ids, "label": [0, 1, 0], "logits": list_array(logits_of(3, 2))})
    data = read_one(tmp_path)
    assert data.ids.dtype == object and data.ids.tolist() == ids and not data.ids_from_rows


def test_npz_unicode_ids_become_str_objects(tmp_path):
    np.savez(tmp_path / "e5.npz", ids=np.array(["a", "bb", "c"]), labels=[0, 1, 0],
             logits=logits_of(3, 2))
    data = read_one(tmp_path)
    assert data.ids.dtype == object and data.ids.tolist() == ["a", "bb", "c"]


@pytest.mark.parametrize("label_name", ["label", "labels", "target", "y_true", "y"])
@pytest.mark.parametrize("id_name", ["sample_id", "id", "idx", "index", "uid"])
def test_parquet_aliases(tmp_path, label_name, id_name):
    write_parquet(tmp_path / "e1.parquet",
                  {label_name: [1, 0], id_name: [7, 8], "logits": list_array(logits_of(2, 2))})
    data = read_one(tmp_path)
    assert data.labels.tolist() == [1, 0] and data.ids.tolist() == [7, 8]


@pytest.mark.parametrize("label_name", ["labels", "label", "targets", "y_true", "y"])
@pytest.mark.parametrize("id_name", ["sample_ids", "ids"])
def test_npz_aliases(tmp_path, label_name, id_name):
    np.savez(tmp_path / "e1.npz", **{label_name: [1, 0], id_name: [7, 8]},
             logits=logits_of(2, 2))
    data = read_one(tmp_path)
    assert data.labels.tolist() == [1, 0] and data.ids.tolist() == [7, 8]


def test_first_alias_wins(tmp_path):
    write_parquet(tmp_path / "e1.parquet",
                  {"y": [0, 0], "label": [1, 0], "uid": [5, 6], "id": [1, 2],
                   "logits": list_array(logits_of(2, 2))})
    data = read_one(tmp_path)
    assert data.labels.tolist() == [1, 0] and data.ids.tolist() == [1, 2]


def test_forced_label_and_id_columns(tmp_path):
    write_parquet(tmp_path / "e1.parquet",
                  {"label": [0, 0, 0], "gold": [2, 1, 0], "sample_id": [1, 2, 3],
                   "key": ["x", "y", "z"], "logits": list_array(logits_of(3, 3))})
    data = read_one(tmp_path, ReadOptions(label_col="gold", id_col="key"))
    assert data.labels.tolist() == [2, 1, 0] and data.ids.tolist() == ["x", "y", "z"]


def test_split_filter_keeps_only_that_split(tmp_path):
    logits = logits_of(5, 2)
    split = ["train", "val", "val", "test", "val"]
    write_parquet(tmp_path / "e1.parquet",
                  {"split": split, "label": [0, 1, 0, 1, 1], "sample_id": [1, 2, 3, 4, 5],
                   "logits": list_array(logits)})
    rows = np.array(split) == "val"

    data = read_one(tmp_path, ReadOptions(split="val"))
    everything = read_one(tmp_path)

    assert data.ids.tolist() == [2, 3, 5]
    np.testing.assert_array_equal(data.scores, logits[rows])
    assert everything.n_samples == 5
    assert any("--split" in note and "train" in note for note in everything.notes)


def test_class_names_from_schema_metadata(tmp_path):
    names = ["cat", "dog", "emu"]
    write_parquet(tmp_path / "e1.parquet",
                  {"label": [0, 2], "logits": list_array(logits_of(2, 3))},
                  metadata={"lossacc.class_names": json.dumps(names)})
    assert read_one(tmp_path).class_names == tuple(names)


def test_boolean_labels_count_as_zero_one(tmp_path):
    np.savez(tmp_path / "e1.npz", labels=np.array([True, False]), logit=np.array([0.5, -1.0]))
    data = read_one(tmp_path)
    assert data.labels.dtype == np.int64 and data.labels.tolist() == [1, 0]


def test_single_sample_epoch(tmp_path):
    np.savez(tmp_path / "e1.npz", labels=[1], probs=np.array([[0.25, 0.75]]))
    data = read_one(tmp_path / "e1.npz")
    assert data.n_samples == 1 and data.scores.tolist() == [[0.25, 0.75]]


def test_read_epoch_on_a_hand_built_source(tmp_path):
    np.savez(tmp_path / "whatever.npz", labels=[0], logits=[[1.0, 2.0]])
    data = read_epoch(EpochSource(epoch=6, path=str(tmp_path / "whatever.npz"), fmt="npz"))
    assert data.epoch == 6 and data.scores.tolist() == [[1.0, 2.0]]


# --- Arrow conversion details -----------------------------------------------------------------


@pytest.mark.parametrize("layout", ["list", "large_list", "fixed_size_list"])
def test_sliced_arrow_arrays_respect_their_offset(layout):
    matrix = logits_of(8, 3)
    whole = list_array(matrix, layout)
    chunks = pa.chunked_array([whole.slice(2, 3), whole.slice(6, 2)])  # two sliced chunks
    single = pa.chunked_array([whole.slice(1, 4)])

    np.testing.assert_array_equal(list_matrix(chunks, where="t", name="logits"),
                                  np.concatenate([matrix[2:5], matrix[6:8]]))
    np.testing.assert_array_equal(list_matrix(single, where="t", name="logits"), matrix[1:5])


@pytest.mark.parametrize("layout", ["list", "fixed_size_list"])
def test_large_list_column_is_a_view_of_the_arrow_buffer(layout):
    matrix = RNG.standard_normal((20000, 100), dtype=np.float32)
    column = list_array(matrix, layout)
    arrow_values = np.frombuffer(column.values.buffers()[1], dtype=np.float32)

    out = list_matrix(pa.chunked_array([column]), where="t", name="logits")

    assert out.dtype == np.float32 and out.shape == (20000, 100)
    assert np.shares_memory(out, arrow_values)  # reshaped in place, no per-row objects
    np.testing.assert_array_equal(out, matrix)


def test_large_list_column_through_a_parquet_file(tmp_path):
    matrix = RNG.standard_normal((20000, 100), dtype=np.float32)
    labels = RNG.integers(0, 100, 20000)
    write_parquet(tmp_path / "epoch_1.parquet", {"label": labels, "logits": list_array(matrix)})
    data = read_one(tmp_path)
    assert data.scores.dtype == np.float32
    np.testing.assert_array_equal(data.scores, matrix)


def test_repeated_ids_are_found_without_pandas():
    """The rows whose id appeared on an earlier row, against a plain dict walk, for text ids
    (hashed, then compared exactly) and integer ids, with and without repeats."""
    from lossacc_cli.readers.validate import _repeated_rows

    rng = np.random.default_rng(11)

    def expected(values):
        seen, rows = set(), []
        for i, v in enumerate(values.tolist()):
            if v in seen:
                rows.append(i)
            seen.add(v)
        return rows

    for trial in range(20):
        n = int(rng.integers(2, 3000))
        pool = int(rng.integers(1, 2 * n))
        numbers = rng.integers(0, pool, size=n)
        text = np.array([f"id-{v}" + "é" * int(v % 3) for v in numbers.tolist()])  # varied widths, non-ASCII
        for ids in (text, numbers.astype(np.int64)):
            found = _repeated_rows(ids)
            assert ([] if found is None else found.tolist()) == expected(ids), (trial, ids.dtype)
    assert _repeated_rows(np.array(["a", "b", "ab", "ba"])) is None
    assert _repeated_rows(np.array(["x", "y", "x", "x"])).tolist() == [2, 3]


@pytest.mark.parametrize("dtype", [np.int8, np.int64, np.uint64])
def test_sorted_distinct_is_np_unique(dtype):
    """Epoch numbers are made distinct without np.unique (whose first call imports numpy.ma):
    the same values in the same order, for empty, one-valued and extreme arrays."""
    from lossacc_cli.readers.validate import sorted_distinct

    info = np.iinfo(dtype)
    rng = np.random.default_rng(3)
    cases = [np.empty(0, dtype), np.array([info.max], dtype), np.full(5, info.min, dtype),
             rng.integers(info.min, info.max, size=400, dtype=dtype, endpoint=True),
             rng.integers(0, 7, size=1000).astype(dtype)]
    for values in cases:
        found = sorted_distinct(values)
        assert found.dtype == values.dtype
        assert found.tolist() == np.unique(values).tolist()
