"""A long-format file whose row groups hold many epochs, too large to keep whole, is decoded in one
pass and handed out epoch by epoch: the same run as reading each epoch's row groups and filtering
them, the same errors, and what waits is bounded."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lossacc_cli.readers.long as long_pass
import lossacc_cli.readers.parquet as parquet_module
from lossacc_cli.analysis.run import load_run
from lossacc_cli.errors import InputError
from lossacc_cli.readers.long import _Index
from lossacc_cli.readers.parquet import open_parquet

K = 5


def _list(matrix: np.ndarray) -> pa.Array:
    n, k = matrix.shape
    return pa.ListArray.from_arrays(pa.array(np.arange(0, n * k + 1, k, dtype=np.int32)),
                                    pa.array(matrix.reshape(-1)))


def long_file(path, *, epochs=30, n=40, shuffled=False, row_group_size=None, bad=None, seed=0,
              relabelled=None):
    rng = np.random.default_rng(seed)
    e = np.repeat(np.arange(1, epochs + 1), n)
    ids = np.tile(np.arange(n) + 500, epochs)
    labels = np.tile(np.arange(n) % K, epochs)
    if relabelled is not None:  # from this epoch on, sample 500 has another label
        labels[(e >= relabelled) & (ids == 500)] = 1
    logits = rng.normal(size=(e.size, K)).astype(np.float32)
    if bad is not None:
        logits[(e == bad) & (ids % 7 == 3), 2] = np.nan
    order = rng.permutation(e.size) if shuffled else np.arange(e.size)
    table = pa.table({"epoch": e[order], "sample_id": ids[order], "label": labels[order],
                      "logits": _list(logits[order])})
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


@pytest.fixture
def passes(monkeypatch):
    """The one-pass reading forced on small files (the Parquet reader keeps no file whole), small
    batches (epochs straddle them), and the passes counted."""
    monkeypatch.setattr(parquet_module, "LONG_GROUPED_BYTES", 0)
    monkeypatch.setattr(long_pass, "BATCH_BYTES", 500)
    monkeypatch.setattr(long_pass, "MIN_BATCH_ROWS", 1)
    started: list[str] = []
    original = long_pass._batches

    def counting(opener, columns, batch_rows):
        started.append(batch_rows)
        return original(opener, columns, batch_rows)

    monkeypatch.setattr(long_pass, "_batches", counting)
    yield started
    long_pass.close_passes()  # a test that reads epochs by hand leaves its pass to this


def _filtered_run(monkeypatch, path):
    """The run as each epoch's row groups read and filtered (no pass)."""
    with monkeypatch.context() as m:
        m.setattr(long_pass, "one_pass", lambda path, parquet_file: False)
        return load_run(str(path))


def same_run(a, b) -> None:
    assert a.epochs == b.epochs and a.notes == b.notes and a.ids.tolist() == b.ids.tolist()
    for x, y in zip(a.records, b.records, strict=True):
        assert x.source == y.source and repr(x.summary) == repr(y.summary)
        assert np.array_equal(x.rows, y.rows) and np.array_equal(x.labels, y.labels)
        for name in ("loss", "pred", "confidence", "true_prob", "margin"):
            assert np.array_equal(getattr(x.stats, name), getattr(y.stats, name)), name


@pytest.mark.parametrize("shuffled, row_group_size", [(False, None), (False, 300), (True, None), (True, 250)])
def test_one_pass_gives_the_filtered_run(tmp_path, monkeypatch, passes, shuffled, row_group_size):
    path = long_file(tmp_path / "long.parquet", shuffled=shuffled, row_group_size=row_group_size)
    whole = load_run(str(path))
    assert len(passes) == 1 and passes[0] < 40  # one pass, of batches smaller than an epoch
    assert len(whole.records) == 30
    same_run(whole, _filtered_run(monkeypatch, path))


def test_an_epoch_not_shown_is_checked_in_the_same_pass(tmp_path, monkeypatch, passes):
    path = long_file(tmp_path / "long.parquet")
    shown = load_run(str(path), epochs=("12",))
    assert len(passes) == 1 and [r.epoch for r in shown.records] == [12]


def test_a_bad_value_fails_as_the_filtered_read_does(tmp_path, monkeypatch, passes):
    path = long_file(tmp_path / "long.parquet", shuffled=True, bad=17)
    with pytest.raises(InputError) as one:
        load_run(str(path))
    with monkeypatch.context() as m:
        m.setattr(long_pass, "one_pass", lambda path, parquet_file: False)
        with pytest.raises(InputError) as filtered:
            load_run(str(path))
    assert str(one.value) == str(filtered.value)
    # ids 500..539 with id % 7 == 3: 500, 507, 514, 521, 528, 535
    assert "[epoch=17]: field 'logits'" in str(one.value) and "(6 rows, first ids: " in str(one.value)


def test_no_pass_outlives_a_run_that_fails_between_epochs(tmp_path, passes):
    """A check across epochs (a sample's label changed) fails mid-file: the pass is closed with
    the run, not left open (its file and Arrow's reads ahead) for as long as the process lives."""
    path = long_file(tmp_path / "long.parquet", relabelled=5)
    with pytest.raises(InputError, match="label") as failed:
        load_run(str(path))
    assert "[epoch=5]" in str(failed.value)
    assert len(passes) == 1 and long_pass._PASSES == {}


def test_what_waits_in_a_file_written_epoch_after_epoch_is_at_most_a_batch(tmp_path, monkeypatch, passes):
    path = long_file(tmp_path / "long.parquet", epochs=20, n=100)
    held = []
    original = long_pass._Pass.rows

    def rows(self, epoch):
        table = original(self, epoch)
        held.append(sum(b.num_rows for parts in self.waiting.values() for b in parts))
        return table

    monkeypatch.setattr(long_pass._Pass, "rows", rows)
    load_run(str(path))
    assert len(held) == 20 and max(held) < passes[0]  # rows of the next epoch from the last batch


def test_an_earlier_epoch_starts_a_new_pass(tmp_path, passes):
    path = str(long_file(tmp_path / "long.parquet", shuffled=True))
    columns = ["epoch", "sample_id", "label", "logits"]
    with open_parquet(path) as f:
        later = long_pass.epoch_rows(path, f, columns, 9, lambda: open_parquet(path))
        earlier = long_pass.epoch_rows(path, f, columns, 4, lambda: open_parquet(path))
        table = f.read()
    assert len(passes) == 2
    for epoch, got in ((9, later), (4, earlier)):
        want = table.filter(pa.compute.equal(table.column("epoch"), epoch))
        assert got.column("sample_id").to_pylist() == want.column("sample_id").to_pylist()
        assert got.column("logits").to_pylist() == want.column("logits").to_pylist()


def test_index_by_hand():
    index = _Index(np.array([3, 3, 1, 1, 1, 7, 3]))
    assert index.epochs.tolist() == [1, 3, 7] and index.last.tolist() == [4, 6, 5]
    assert not index.contiguous
    assert index.last_row(3) == 6 and index.last_row(2) is None and index.last_row(8) is None
    assert _Index(np.array([1, 1, 2, 5, 5])).contiguous


def test_few_epochs_per_row_group_are_read_by_row_group(tmp_path, passes):
    """A row group per epoch: each epoch's own row group is read (no pass needed)."""
    path = long_file(tmp_path / "long.parquet", epochs=6, n=40, row_group_size=40)
    load_run(str(path))
    assert passes == []
