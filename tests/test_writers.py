"""PredictionWriter without any framework: NumPy arrays and lists in, files lossacc reads out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from lossacc_cli.cli.app import app
from lossacc_cli.errors import InputError
from lossacc_cli.readers import discover, read_epoch
from lossacc_cli.writers import (
    PredictionError,
    PredictionWriter,
    ValidationSetChanged,
    metadata_of,
    with_ids,
)
from lossacc_cli.writers import files as writer_files

FORMATS = ["parquet", "npz"]


def _epochs(folder):
    return [read_epoch(source) for source in discover(folder)[0]]


def _logits(n, k, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).normal(size=(n, k)).astype(dtype)


# -- round trips through lossacc's reader --------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_batches_in_any_order_round_trip_sorted_by_id(tmp_path, fmt):
    n, k = 90, 4
    labels = np.arange(n) % k
    rng = np.random.default_rng(1)
    logits = {e: _logits(n, k, seed=e) for e in (3, 7)}
    with PredictionWriter(tmp_path, format=fmt) as writer:
        for epoch in (3, 7):
            order = rng.permutation(n)  # a shuffled loader: each epoch another order
            for rows in np.array_split(order, 4):
                writer.add(rows, labels[rows], logits=logits[epoch][rows])
            path = writer.end_epoch(epoch)
    assert os.path.basename(path) == f"epoch_007.{fmt}"
    assert sorted(os.listdir(tmp_path)) == [f"epoch_003.{fmt}", f"epoch_007.{fmt}"]
    for saved in _epochs(tmp_path):
        assert saved.ids.tolist() == list(range(n))  # rows in id order in every file
        assert saved.labels.tolist() == labels.tolist()
        assert saved.kind == "logits" and saved.scores.dtype == np.float32
        np.testing.assert_array_equal(saved.scores, logits[saved.epoch])
        assert not saved.ids_from_rows


@pytest.mark.parametrize("fmt", FORMATS)
def test_lists_and_string_ids(tmp_path, fmt):
    with PredictionWriter(tmp_path, format=fmt) as writer:
        writer.add(["b", "a"], [1, 0], probs=[[0.25, 0.75], [0.9, 0.1]])
        writer.add(np.array([b"c"]), [1], probs=[[0.5, 0.5]])  # byte strings decode as UTF-8
        writer.end_epoch(0)
    saved = _epochs(tmp_path)[0]
    assert saved.ids.tolist() == ["a", "b", "c"]
    assert saved.labels.tolist() == [0, 1, 1]
    assert saved.kind == "probs" and saved.scores.dtype == np.float64
    np.testing.assert_array_equal(saved.scores, [[0.9, 0.1], [0.25, 0.75], [0.5, 0.5]])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_float_widths_are_kept(tmp_path, fmt, dtype):
    logits = _logits(10, 3, dtype=dtype)
    with PredictionWriter(tmp_path, format=fmt) as writer:
        writer.add(range(10), np.zeros(10, int), logits=logits)
        writer.end_epoch(1)
    saved = _epochs(tmp_path)[0]
    assert saved.scores.dtype == dtype
    np.testing.assert_array_equal(saved.scores, logits)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("shape", [(6,), (6, 1)])
def test_binary_scores(tmp_path, fmt, shape):
    prob = np.linspace(0.1, 0.9, 6).reshape(shape)
    with PredictionWriter(tmp_path, format=fmt) as writer:
        writer.add(range(6), [0, 1, 0, 1, 0, 1], probs=prob)
        writer.end_epoch(1)
    saved = _epochs(tmp_path)[0]
    assert saved.kind == "prob" and saved.n_classes == 2
    np.testing.assert_array_equal(saved.scores, prob.reshape(-1))


def test_integral_float_and_bool_labels_are_class_indices(tmp_path):
    with PredictionWriter(tmp_path) as writer:
        writer.add([0, 1], np.array([1.0, 0.0], np.float32), logits=[0.3, -0.2])
        writer.add([2], np.array([True]), logits=[1.5])
        writer.end_epoch(1)
    assert _epochs(tmp_path)[0].labels.tolist() == [1, 0, 1]


def test_class_names_and_provenance_are_in_the_metadata(tmp_path):
    names = ["chat", "chien", "oiseau"]
    with PredictionWriter(tmp_path / "pq", class_names=names, split="val", model_name="resnet18") as pq_writer, \
         PredictionWriter(tmp_path / "npz", format="npz", class_names=names, split="val") as npz_writer:
        for writer in (pq_writer, npz_writer):
            writer.add([0, 1, 2], [0, 1, 2], logits=_logits(3, 3))
            writer.end_epoch(5)
    saved = _epochs(tmp_path / "pq")[0]
    assert saved.class_names == tuple(names)  # read by lossacc's own reader
    meta = metadata_of(tmp_path / "pq" / "epoch_005.parquet")
    assert meta["class_names"] == names
    provenance = meta["provenance"]
    assert provenance["framework"] == "numpy" and provenance["model"] == "resnet18"
    assert provenance["split"] == "val" and provenance["epoch"] == 5
    assert provenance["writer"].startswith("lossacc ") and provenance["created"].endswith("+00:00")
    npz_meta = metadata_of(tmp_path / "npz" / "epoch_005.npz")
    assert npz_meta["class_names"] == names and npz_meta["provenance"]["model"] is None


def test_npz_needs_no_pickle_for_any_member(tmp_path):
    with PredictionWriter(tmp_path, format="npz", class_names=["a", "b"]) as writer:
        writer.add(["x", "y"], [0, 1], logits=_logits(2, 2))
        writer.end_epoch(1)
    with np.load(tmp_path / "epoch_001.npz", allow_pickle=False) as archive:
        assert sorted(archive.files) == ["class_names", "labels", "logits", "provenance", "sample_ids"]
        for name in archive.files:
            assert not archive[name].dtype.hasobject
        assert json.loads(str(archive["provenance"]))["epoch"] == 1


def test_analyze_reads_what_the_writer_wrote(tmp_path):
    rng = np.random.default_rng(0)
    n, k = 200, 3
    labels = rng.integers(k, size=n)
    with PredictionWriter(tmp_path, class_names=["a", "b", "c"]) as writer:
        for epoch in range(1, 6):
            logits = rng.normal(size=(n, k)) + 2.0 * epoch * np.eye(k)[labels]
            writer.add(np.arange(n), labels, logits=logits.astype(np.float32))
            writer.end_epoch(epoch)
    result = CliRunner().invoke(app, ["analyze", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [e["epoch"] for e in report["epochs"]] == [1, 2, 3, 4, 5]
    assert (report["n_samples"], report["n_classes"]) == (n, k)
    assert report["class_names"] == ["a", "b", "c"]
    assert report["diagnosis"]["verdicts"]


# -- the evaluation set must stay the same -------------------------------------------------------


def _write(writer, ids, labels, epoch, k=3):
    writer.add(ids, labels, logits=_logits(len(ids), k))
    return writer.end_epoch(epoch)


def test_missing_and_new_ids_are_named(tmp_path):
    with PredictionWriter(tmp_path) as writer:
        _write(writer, range(10), np.zeros(10, int), 1)
        with pytest.raises(ValidationSetChanged) as caught:
            _write(writer, [0, 1, 2, 3, 4, 5, 6, 7, 42], np.zeros(9, int), 2)
    message = str(caught.value)
    assert message.startswith("epoch 2: the evaluation set changed since epoch 1 (epoch_001.parquet)")
    assert "9 samples instead of 10" in message
    assert "2 ids of epoch 1 are missing (first: 8, 9)" in message
    assert "1 ids are new (first: 42)" in message
    assert sorted(os.listdir(tmp_path)) == ["epoch_001.parquet"]  # nothing written for epoch 2


def test_a_changed_label_is_named_with_before_and_after(tmp_path):
    labels = np.array([0, 1, 2, 0, 1])
    with PredictionWriter(tmp_path) as writer:
        _write(writer, ["a", "b", "c", "d", "e"], labels, 1)
        changed = labels.copy()
        changed[[1, 4]] = [2, 0]
        with pytest.raises(ValidationSetChanged) as caught:
            _write(writer, ["a", "b", "c", "d", "e"], changed, 2)
    message = str(caught.value)
    assert "labels changed since epoch 1 (epoch_001.parquet) for 2 of 5 samples" in message
    assert "b: 1 -> 2, e: 1 -> 0" in message
    assert "shuffled loader" in message


def test_shuffled_positions_used_as_ids_fail_loudly(tmp_path):
    """Issue 12's silent pitfall: row positions of a shuffled loader standing in for ids."""
    rng = np.random.default_rng(0)
    labels = rng.integers(3, size=100)
    with PredictionWriter(tmp_path) as writer:
        _write(writer, np.arange(100), labels, 1)
        shuffled = rng.permutation(100)
        with pytest.raises(ValidationSetChanged, match="labels changed"):
            _write(writer, np.arange(100), labels[shuffled], 2)


@pytest.mark.parametrize(
    "second, problem",
    [
        (dict(ids=range(4), labels=[0] * 4, logits=np.zeros((4, 5))), "5 classes here but 3 before"),
        (dict(ids=range(4), labels=[0] * 4, probs=np.full((4, 3), 1 / 3)), "scores are probs here but were logits"),
        (dict(ids=list("abcd"), labels=[0] * 4, logits=np.zeros((4, 3))), "ids are strings here but were integers"),
    ],
)
def test_kind_classes_and_id_type_stay_fixed(tmp_path, second, problem):
    with PredictionWriter(tmp_path) as writer:
        _write(writer, range(4), [0] * 4, 1)
        with pytest.raises(PredictionError, match=problem):
            writer.add(**second)


def test_a_resumed_run_is_checked_against_the_files_already_there(tmp_path):
    with PredictionWriter(tmp_path) as writer:
        _write(writer, range(6), [0, 1, 2, 0, 1, 2], 1)
        _write(writer, range(6), [0, 1, 2, 0, 1, 2], 2)
    with PredictionWriter(tmp_path) as resumed:
        _write(resumed, range(6), [0, 1, 2, 0, 1, 2], 2)  # re-evaluated after a restart: replaced
        _write(resumed, range(6), [0, 1, 2, 0, 1, 2], 3)
    with PredictionWriter(tmp_path) as other_run:
        with pytest.raises(ValidationSetChanged, match="since epoch 3 "):
            _write(other_run, range(6), [2, 1, 0, 0, 1, 2], 4)
    assert [e.epoch for e in _epochs(tmp_path)] == [1, 2, 3]


def test_an_epoch_already_in_the_folder_under_another_name_is_refused(tmp_path):
    with PredictionWriter(tmp_path, format="npz") as writer:
        _write(writer, range(4), [0] * 4, 1)
    with PredictionWriter(tmp_path) as parquet_writer:
        with pytest.raises(PredictionError, match=r"epoch 1 is already in the folder as .*epoch_001.npz"):
            _write(parquet_writer, range(4), [0] * 4, 1)
        _write(parquet_writer, range(4), [0] * 4, 2)
    assert [e.epoch for e in _epochs(tmp_path)] == [1, 2]


def test_a_folder_with_files_that_have_no_ids_is_refused(tmp_path):
    np.savez(tmp_path / "epoch_001.npz", labels=np.array([0, 1]), logits=_logits(2, 2))
    with PredictionWriter(tmp_path) as writer:
        with pytest.raises(PredictionError, match="no sample ids"):
            _write(writer, [0, 1], [0, 1], 2, k=2)


# -- input errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "batch, problem",
    [
        (dict(ids=[0, 1], labels=[0, 1]), "exactly one of logits= or probs="),
        (dict(ids=[0, 1], labels=[0, 1], logits=np.zeros((2, 2)), probs=np.zeros((2, 2))), "exactly one"),
        (dict(ids=[0, 1, 2], labels=[0, 1], logits=np.zeros((2, 2))), r"mismatched lengths \(ids 3, labels 2, logits 2\)"),
        (dict(ids=[0, 1], labels=[0, 1], logits=np.zeros((2, 2), int)), "must be floating point"),
        (dict(ids=[0, 1], labels=[0, 1], logits=np.zeros((2, 2, 2))), r"expected shape \(N, K\)"),
        (dict(ids=[0, 1], labels=[0, 3], logits=np.zeros((2, 3))), r"1 values >= 3.*first ids: 1"),
        (dict(ids=[0, 1], labels=[0, -100], logits=np.zeros((2, 3))), "negative"),
        (dict(ids=[0, 1], labels=[0.0, 0.5], logits=np.zeros((2, 3))), "non-integer"),
        (dict(ids=[0, 1], labels=np.eye(2), logits=np.zeros((2, 2))), "labels.argmax"),
        (dict(ids=[0.5, 1.5], labels=[0, 1], logits=np.zeros((2, 2))), "ids must be integers or strings"),
        (dict(ids=np.array([0, "a"], dtype=object), labels=[0, 1], logits=np.zeros((2, 2))), "all integers or all strings"),
        (dict(ids=[0, 1], labels=["cat", "dog"], logits=np.zeros((2, 2))), "integer class indices"),
    ],
)
def test_bad_batches_are_refused_with_the_reason(tmp_path, batch, problem):
    with PredictionWriter(tmp_path) as writer:
        with pytest.raises(PredictionError, match=problem):
            writer.add(**batch)


def test_repeated_ids_within_an_epoch(tmp_path):
    with PredictionWriter(tmp_path) as writer:
        writer.add([3, 1, 2], [0, 0, 0], logits=np.zeros((3, 2)))
        writer.add([2, 3], [0, 0], logits=np.zeros((2, 2)))
        with pytest.raises(PredictionError, match=r"2 rows repeat an id .*first ids: 2, 3"):
            writer.end_epoch(1)
    assert os.listdir(tmp_path) == []


def test_epoch_numbers(tmp_path):
    with PredictionWriter(tmp_path) as writer:
        with pytest.raises(PredictionError, match="no predictions were added"):
            writer.end_epoch(1)
        for bad in (-1, 1.5, "3", True):
            writer.add([0], [0], logits=[[0.0, 1.0]])
            with pytest.raises(PredictionError, match="epoch must be"):
                writer.end_epoch(bad)
            writer.discard()
        _write(writer, [0], [0], np.int64(2), k=2)
        _write(writer, [0], [0], 3.0, k=2)  # e.g. a Trainer's float epoch count
        with pytest.raises(PredictionError, match="epoch 3 was already written"):
            _write(writer, [0], [0], 3, k=2)
        assert writer.pending == 1  # kept, to be written under another number
        assert sorted(writer.written) == [2, 3]
        writer.discard()


def test_constructor_arguments_are_checked(tmp_path):
    with pytest.raises(PredictionError, match="format"):
        PredictionWriter(tmp_path, format="csv")
    with pytest.raises(PredictionError, match="prefix"):
        PredictionWriter(tmp_path, prefix="run1_epoch")
    with pytest.raises(PredictionError, match="class_names"):
        PredictionWriter(tmp_path, class_names="cat")
    writer = PredictionWriter(tmp_path, class_names=["a", "b", "c"])
    with pytest.raises(PredictionError, match="2 classes, but 3 class names"):
        writer.add([0], [0], logits=[[0.0, 1.0]])


def test_errors_are_value_errors():
    assert issubclass(ValidationSetChanged, PredictionError)
    assert issubclass(PredictionError, ValueError)


# -- writing atomically --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_failed_write_leaves_the_previous_file_and_no_partial_one(tmp_path, fmt, monkeypatch):
    with PredictionWriter(tmp_path, format=fmt) as writer:
        _write(writer, range(50), np.zeros(50, int), 1)
    before = (tmp_path / f"epoch_001.{fmt}").read_bytes()
    real = writer_files.WRITERS[fmt]

    def failing(*args, **kwargs):
        write = real(*args, **kwargs)

        def half_then_fail(handle):
            write(handle)
            handle.truncate(handle.tell() // 2)
            raise OSError(28, "No space left on device")

        return half_then_fail

    monkeypatch.setitem(writer_files.WRITERS, fmt, failing)
    with PredictionWriter(tmp_path, format=fmt) as resumed:
        resumed.add(range(50), np.zeros(50, int), logits=_logits(50, 3, seed=9))
        with pytest.raises(OSError, match="No space left"):
            resumed.end_epoch(1)
        resumed.add(range(50), np.zeros(50, int), logits=_logits(50, 3, seed=9))
        with pytest.raises(OSError, match="No space left"):
            resumed.end_epoch(2)
    assert os.listdir(tmp_path) == [f"epoch_001.{fmt}"]  # no temporary file left behind
    assert (tmp_path / f"epoch_001.{fmt}").read_bytes() == before


def _visible_epochs(folder):
    try:
        return [s.epoch for s in discover(folder)[0]]
    except InputError as exc:
        assert "no .parquet or .npz epoch files found" in str(exc)
        return []


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_final_name_appears_only_once_the_file_is_complete(tmp_path, fmt, monkeypatch):
    """At the rename, the temporary file is complete and hidden from discovery, and the
    final name does not exist yet: a reader sees no file or the whole file, never part."""
    real_replace = os.replace
    checked = []

    def checking_replace(source, target):
        assert os.path.dirname(source) == os.path.dirname(target)  # same folder: atomic
        assert os.path.basename(source).startswith(".")
        assert not os.path.exists(target)
        assert _visible_epochs(tmp_path) == list(range(1, len(checked) + 1))
        real_replace(source, target)
        checked.append(target)

    monkeypatch.setattr(writer_files.os, "replace", checking_replace)
    with PredictionWriter(tmp_path, format=fmt) as writer:
        for epoch in (1, 2, 3):
            _write(writer, range(20), np.zeros(20, int), epoch)
    assert len(checked) == 3


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_reader_running_alongside_never_sees_a_partial_file(tmp_path, fmt):
    n, k, epochs = 20_000, 16, 12
    labels = np.arange(n) % k
    done = threading.Event()
    failures: list[str] = []
    reads = during = 0

    def write_all():
        try:
            with PredictionWriter(tmp_path, format=fmt) as writer:
                for epoch in range(epochs):
                    writer.add(np.arange(n), labels, logits=_logits(n, k, seed=epoch))
                    writer.end_epoch(epoch)
        finally:
            done.set()

    thread = threading.Thread(target=write_all)
    thread.start()
    while not done.is_set() or reads == 0:
        try:
            sources, _ = discover(tmp_path)
        except InputError as exc:
            if "no .parquet or .npz epoch files found" in str(exc):
                continue  # nothing written yet
            failures.append(str(exc))
            break
        for source in sources:
            writing = not done.is_set()
            try:
                assert read_epoch(source).n_samples == n
                reads += 1
                during += writing
            except (InputError, AssertionError) as exc:
                failures.append(f"{source.path}: {exc}")
    thread.join()
    assert not failures, failures[:3]
    # the reader really ran alongside the writer (how often depends on the machine's load)
    assert during >= 1, reads


def test_a_leftover_temporary_file_is_ignored_by_readers(tmp_path):
    with PredictionWriter(tmp_path) as writer:
        _write(writer, range(5), np.zeros(5, int), 1)
    (tmp_path / ".epoch_002.parquet.0123abcd.tmp").write_bytes(b"PAR1 half a file")
    sources, notes = discover(tmp_path)
    assert [s.epoch for s in sources] == [1] and notes == ()


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_new_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        with PredictionWriter(tmp_path) as writer:
            path = _write(writer, range(3), [0, 0, 0], 1)
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o640


# -- lifetime ------------------------------------------------------------------------------------


def test_an_exception_inside_the_block_writes_no_partial_epoch(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with PredictionWriter(tmp_path) as writer:
            _write(writer, range(4), [0] * 4, 1)
            writer.add(range(2), [0] * 2, logits=_logits(2, 3))
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == ["epoch_001.parquet"]
    with pytest.raises(PredictionError, match="closed"):
        writer.add(range(2), [0] * 2, logits=_logits(2, 3))


def test_rows_never_ended_are_reported_on_close(tmp_path):
    writer = PredictionWriter(tmp_path)
    writer.add(range(2), [0] * 2, logits=_logits(2, 3))
    with pytest.warns(RuntimeWarning, match="2 rows added after the last end_epoch"):
        writer.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        writer.close()  # once is enough


def test_with_ids_gives_indices():
    data = with_ids([("x0", 0), ("x1", 1)])
    assert len(data) == 2 and data[1] == (1, ("x1", 1))


def test_importing_the_writers_imports_no_framework():
    code = (
        "import sys, lossacc_cli.writers\n"
        "heavy = {'torch', 'lightning', 'pytorch_lightning', 'keras', 'tensorflow', 'jax',"
        " 'transformers', 'pyarrow', 'pandas'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
