"""Streaming reads and parallel loading give the results of the in-memory path, bit for bit.

The comparison is with what the package computes for an epoch already in memory: ``read_epoch`` +
``sample_stats`` + ``summarize_epoch``, which run the same per-block reduction on the whole
matrix. So these tests check the reading paths (layouts, batch boundaries inside row blocks,
threads, worker processes, faults reported as the whole-file reader reports them), not the
arithmetic: that is checked against the independent float64 computations of ``tests/reference.py``
in test_metrics.py, test_perf_temperature.py and, for wide layouts with many classes, below.
"""

from __future__ import annotations

import dataclasses
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lossacc_cli.analysis.run as run_module
import lossacc_cli.metrics.stream as stream_module
import lossacc_cli.readers.npz as npz_module
import lossacc_cli.readers.parquet as parquet_module
from lossacc_cli.analysis.run import load_run, reduce_source
from lossacc_cli.errors import InputError
from lossacc_cli.metrics.per_sample import sample_stats
from lossacc_cli.metrics.summary import fit_epoch, summarize_epoch, with_recalibration
from lossacc_cli.readers import ReadOptions, discover, read_epoch
from lossacc_cli.readers.model import EpochSource
from tests.helpers import list_array
from tests.reference import F32_TOL, ce_from_logits

RNG = np.random.default_rng(20240611)
FIT_FIELDS = ("temperature", "recalibrated_loss", "recalibrated_loss_crossfit")
RECAL_FIELDS = ("recal_loss", "recal_confidence", "recal_crossfit_loss")


# --- writing epochs in every layout ------------------------------------------------------------


def _scores(n, k, kind, dtype, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 3
    y = rng.integers(0, k, n)
    z[np.arange(n), np.where(rng.random(n) < 0.6, y, rng.integers(0, k, n))] += 4
    if kind == "probs":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        z = e / e.sum(axis=1, keepdims=True)
    return z.astype(dtype), y


def _write(path, layout, kind, scores, labels, ids, *, extra=None, row_group_size=None):
    if layout.startswith("npz"):
        save = np.savez_compressed if layout == "npz_compressed" else np.savez
        save(path, **{kind: scores, "labels": labels, "sample_ids": ids})
        return
    columns = {"sample_id": ids, "label": labels, **(extra or {})}
    if layout == "wide":
        columns.update({f"{kind[:-1]}_{k}": scores[:, k] for k in range(scores.shape[1])})
    else:
        columns[kind] = list_array(scores, layout)
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)


LAYOUTS = ["list", "large_list", "fixed_size_list", "wide", "npz", "npz_compressed"]


def _epoch_file(tmp_path, layout, kind="logits", dtype=np.float32, n=1000, k=7, seed=0, **kw):
    scores, labels = _scores(n, k, kind, dtype, seed)
    suffix = "npz" if layout.startswith("npz") else "parquet"
    path = tmp_path / f"epoch_{seed + 1:03d}.{suffix}"
    _write(path, layout, kind, scores, labels, np.arange(n) * 3 + 1, **kw)
    return path


# --- comparing with the whole-matrix path ------------------------------------------------------


def _assert_same(a, b, *, skip=()):
    for field in dataclasses.fields(a):
        if field.name in skip:
            continue
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape, field.name
            assert np.array_equal(x, y, equal_nan=True), field.name
            # equal bits, not just equal values (e.g. -0.0 and 0.0)
            if x.dtype.kind == "f":
                assert np.array_equal(x.view(np.int64 if x.itemsize == 8 else np.int32),
                                      y.view(np.int64 if y.itemsize == 8 else np.int32)), field.name
        elif isinstance(x, float) and np.isnan(x):
            assert np.isnan(y), field.name
        else:
            assert x == y, (field.name, x, y)


def _assert_matches_whole_read(source, options=None, threads=1):
    options = options or ReadOptions()
    streamed = reduce_source(source, options, threads)
    assert streamed.streamed
    data = read_epoch(source, options)
    stats = sample_stats(data)
    summary = summarize_epoch(data, stats)
    _assert_same(stats, streamed.stats, skip=RECAL_FIELDS)
    # the per-sample values at T* follow T*, which both paths find within the fit's tolerance
    fit, recal = fit_epoch(data)
    reference = with_recalibration(stats, recal)
    for name in ("recal_loss", "recal_confidence"):
        np.testing.assert_allclose(getattr(streamed.stats, name), getattr(reference, name),
                                   rtol=1e-6, atol=1e-9)
    _assert_same(summary, streamed.summary, skip=FIT_FIELDS)
    # T* from two starts (the streaming pass's float32-summed moments at T = 1, or an exact pass):
    # both stop within the fit's tolerance, 3e-8 for float32 arithmetic (HALLEY_TOL_FLOAT32)
    fit_tol = 1e-9 if data.scores.dtype == np.float64 else 1e-7
    for name in FIT_FIELDS:
        assert getattr(streamed.summary, name) == pytest.approx(getattr(summary, name), rel=fit_tol, nan_ok=True)
    assert np.array_equal(streamed.ids, data.ids) and np.array_equal(streamed.labels, data.labels)
    assert streamed.notes == data.notes
    return streamed


@pytest.fixture(params=["decoded", "read whole"])
def small_batches(monkeypatch, request):
    """Batches of a few rows, so that batch boundaries fall inside the reducer's row blocks; list
    columns decoded batch by batch from the file, or sliced from a small file read whole."""
    if request.param == "decoded":
        monkeypatch.setattr(parquet_module, "SMALL_FILE_BYTES", 0)
    monkeypatch.setattr(parquet_module, "STREAM_BATCH_BYTES", 37 * 7 * 4)
    monkeypatch.setattr(npz_module, "STREAM_BATCH_BYTES", 37 * 7 * 4)
    monkeypatch.setattr(parquet_module, "WIDE_READ_BYTES", 1)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", ["logits", "probs"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_every_layout_streams_to_the_whole_matrix_result(tmp_path, layout, kind, dtype):
    path = _epoch_file(tmp_path, layout, kind, dtype)
    (source,), _ = discover(path)
    _assert_matches_whole_read(source)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("k", [3, 1000])
def test_batch_boundaries_inside_row_blocks(tmp_path, small_batches, layout, k):
    # K = 1000: 65 rows per block, batches of 7 rows (list) and row groups of 100 rows.
    n = 700 if k == 1000 else 3000
    path = _epoch_file(tmp_path, layout, n=n, k=k, row_group_size=100
                       if not layout.startswith("npz") else None)
    (source,), _ = discover(path)
    _assert_matches_whole_read(source)
    _assert_matches_whole_read(source, threads=2)


def test_epoch_folder_of_part_files(tmp_path, small_batches):
    for fmt in ("parquet", "npz"):
        folder = tmp_path / fmt / "epoch=4"
        folder.mkdir(parents=True)
        for part in range(3):
            scores, labels = _scores(150 + part, 7, "logits", np.float32, part)
            ids = np.arange(150 + part) + 1000 * part
            layout = "list" if fmt == "parquet" else "npz"
            _write(folder / f"part-{part}.{fmt}", layout, "logits", scores, labels, ids)
        (source,), _ = discover(tmp_path / fmt)
        _assert_matches_whole_read(source)


@pytest.mark.parametrize("layout", ["list", "wide"])
def test_long_format_and_split_selection(tmp_path, small_batches, layout):
    # One table, three epochs, rows of each epoch spread over several row groups, two splits.
    tables = []
    for epoch in (1, 2, 3):
        scores, labels = _scores(300, 5, "logits", np.float32, epoch)
        columns = {
            "epoch": np.full(300, epoch), "sample_id": np.arange(300), "label": labels,
            "split": np.where(np.arange(300) % 3 == 0, "train", "val"),
        }
        if layout == "wide":
            columns.update({f"logit_{k}": scores[:, k] for k in range(5)})
        else:
            columns["logits"] = list_array(scores, "list")
        tables.append(pa.table(columns))
    table = pa.concat_tables(tables)
    order = np.random.default_rng(3).permutation(table.num_rows)  # epochs interleaved
    pq.write_table(table.take(order), tmp_path / "long.parquet", row_group_size=128)
    sources, _ = discover(tmp_path / "long.parquet")
    assert [s.epoch for s in sources] == [1, 2, 3]
    for source in sources:
        _assert_matches_whole_read(source)
        _assert_matches_whole_read(source, ReadOptions(split="val"), threads=2)


def test_notes_and_class_names_are_the_readers(tmp_path):
    scores, labels = _scores(200, 3, "logits", np.float32, 0)
    probs, _ = _scores(200, 3, "probs", np.float32, 0)
    table = pa.table({"label": labels, "logits": list_array(scores, "list"),
                      "probs": list_array(probs, "list")})
    table = table.replace_schema_metadata({b"lossacc.class_names": b'["a", "b", "c"]'})
    pq.write_table(table, tmp_path / "epoch_001.parquet")
    (source,), _ = discover(tmp_path)
    streamed = _assert_matches_whole_read(source)
    assert streamed.class_names == ("a", "b", "c") and streamed.ids_from_rows
    assert any("both logits and probabilities" in note for note in streamed.notes)


# --- faults found while streaming: the whole-file reader's message -----------------------------


def _same_error(source, options=None):
    options = options or ReadOptions()
    with pytest.raises(InputError) as whole:
        read_epoch(source, options)
    with pytest.raises(InputError) as streamed:
        reduce_source(source, options, 2)
    assert str(streamed.value) == str(whole.value)
    assert type(streamed.value) is InputError
    return str(whole.value)


@pytest.mark.parametrize("layout", ["list", "wide", "npz", "npz_compressed"])
def test_a_bad_value_in_the_last_batch(tmp_path, small_batches, layout):
    scores, labels = _scores(2000, 7, "logits", np.float32, 0)
    scores[1990, 2] = np.nan
    suffix = "npz" if layout.startswith("npz") else "parquet"
    _write(tmp_path / f"epoch_001.{suffix}", layout, "logits", scores, labels, np.arange(2000))
    (source,), _ = discover(tmp_path)
    assert "finite" in _same_error(source)


def test_probabilities_off_by_more_than_the_tolerance(tmp_path, small_batches):
    probs, labels = _scores(2000, 4, "probs", np.float64, 0)
    probs[1500:1510] *= 1.01
    _write(tmp_path / "epoch_001.parquet", "list", "probs", probs, labels, np.arange(2000))
    (source,), _ = discover(tmp_path)
    assert "--renormalize" in _same_error(source)
    # with --renormalize the epoch streams too, renormalised block by block, with the reader's note
    options = ReadOptions(renormalize=True)
    reduced = reduce_source(source, options, 2)
    assert reduced.streamed
    data = read_epoch(source, options)
    _assert_same(sample_stats(data), reduced.stats, skip=RECAL_FIELDS)
    assert reduced.notes == data.notes and any("renormalised" in n for n in reduced.notes)


def test_unequal_lists_and_null_lists_in_a_later_batch(tmp_path, small_batches):
    scores, labels = _scores(900, 4, "logits", np.float32, 0)
    rows = [list(r) for r in scores]
    rows[800] = rows[800][:3]
    pq.write_table(pa.table({"label": labels, "logits": pa.array(rows, pa.list_(pa.float32()))}),
                   tmp_path / "epoch_001.parquet")
    (source,), _ = discover(tmp_path)
    assert "unequal length" in _same_error(source)
    rows[800] = None
    pq.write_table(pa.table({"label": labels, "logits": pa.array(rows, pa.list_(pa.float32()))}),
                   tmp_path / "epoch_001.parquet")
    assert "null lists" in _same_error(source)


def test_damaged_npz_data_is_refused_like_np_load_refuses_it(tmp_path):
    path = _epoch_file(tmp_path, "npz", n=2000)
    info = zipfile.ZipFile(path).getinfo("logits.npy")
    data = bytearray(path.read_bytes())
    data[info.header_offset + info.compress_size - 100] ^= 0x10  # a bit inside the logits
    path.write_bytes(bytes(data))
    (source,), _ = discover(tmp_path)
    with pytest.raises(InputError) as whole:
        read_epoch(source)
    assert "CRC" in str(whole.value)
    _same_error(source)


def test_header_errors_come_first_as_in_the_whole_read(tmp_path):
    # duplicate ids and a NaN: the whole-file reader names the ids; so must the streaming path
    scores, labels = _scores(300, 4, "logits", np.float32, 0)
    scores[5, 0] = np.nan
    ids = np.arange(300)
    ids[7] = 3
    _write(tmp_path / "epoch_001.parquet", "list", "logits", scores, labels, ids)
    (source,), _ = discover(tmp_path)
    assert "not unique" in _same_error(source)


# --- threads and worker processes ---------------------------------------------------------------


def _run_dir(tmp_path, n_epochs=4, layout="list"):
    suffix = "npz" if layout.startswith("npz") else "parquet"
    for e in range(n_epochs):
        scores, labels = _scores(1500, 11, "logits", np.float32, 0)
        scores += np.random.default_rng(e).normal(size=scores.shape).astype(np.float32) * e
        _write(tmp_path / f"epoch_{e + 1:03d}.{suffix}", layout, "logits", scores, labels,
               np.arange(1500))
    return tmp_path


def _assert_same_run(a, b):
    _assert_same(a, b, skip=("records", "ids"))
    assert np.array_equal(a.ids, b.ids)
    assert len(a.records) == len(b.records)
    for ra, rb in zip(a.records, b.records):
        _assert_same(ra.summary, rb.summary)
        _assert_same(ra.stats, rb.stats)
        _assert_same(ra, rb, skip=("summary", "stats"))


@pytest.mark.parametrize("layout", ["list", "npz"])
def test_the_run_does_not_depend_on_jobs(tmp_path, monkeypatch, layout):
    folder = _run_dir(tmp_path, layout=layout)
    one = load_run(str(folder), ReadOptions(), jobs=1)
    monkeypatch.setattr(run_module, "THREAD_MIN_BYTES", 1)  # threads even for small epochs
    _assert_same_run(one, load_run(str(folder), ReadOptions(), jobs=2))
    monkeypatch.setattr(run_module, "PARALLEL_MIN_BYTES", 0)  # and worker processes
    calls = []
    two = load_run(str(folder), ReadOptions(), jobs=2, on_epoch=lambda d, t: calls.append((d, t)))
    _assert_same_run(one, two)
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]
    _assert_same_run(one, load_run(str(folder), ReadOptions(), jobs=0))


def test_a_fault_in_a_worker_is_the_first_in_epoch_order(tmp_path, monkeypatch):
    folder = _run_dir(tmp_path, n_epochs=5)
    for bad in (2, 4):  # two bad epochs: the earlier one is reported, as when reading in order
        table = pq.read_table(folder / f"epoch_{bad:03d}.parquet")
        labels = table.column("label").to_numpy().copy()
        labels[bad] = 99
        pq.write_table(table.set_column(1, "label", pa.array(labels)), folder / f"epoch_{bad:03d}.parquet")
    with pytest.raises(InputError) as sequential:
        load_run(str(folder), ReadOptions(), jobs=1)
    monkeypatch.setattr(run_module, "PARALLEL_MIN_BYTES", 0)
    with pytest.raises(InputError) as parallel:
        load_run(str(folder), ReadOptions(), jobs=2)
    assert str(parallel.value) == str(sequential.value)
    assert "epoch_002.parquet" in str(sequential.value)


def test_a_check_across_epochs_that_fails_stops_the_workers_at_once(tmp_path, monkeypatch):
    """Epoch 3 changes a sample's label: the check in this process fails while workers are still
    reducing later epochs; they are stopped and waited for before the error arrives (not when the
    error and its traceback are freed, nor at exit)."""
    import multiprocessing
    import threading

    folder = _run_dir(tmp_path, n_epochs=8)
    table = pq.read_table(folder / "epoch_003.parquet")
    labels = table.column("label").to_numpy().copy()
    labels[7] = (labels[7] + 1) % 11
    pq.write_table(table.set_column(1, "label", pa.array(labels)), folder / "epoch_003.parquet")
    monkeypatch.setattr(run_module, "PARALLEL_MIN_BYTES", 0)
    with pytest.raises(InputError, match="label") as failed:  # the traceback kept alive here
        load_run(str(folder), ReadOptions(), jobs=2)
    assert "epoch_003.parquet" in str(failed.value)
    assert multiprocessing.active_children() == []
    assert [t for t in threading.enumerate() if not t.daemon and t is not threading.main_thread()] == []


def test_epochs_share_labels_and_rows_when_they_are_the_same(tmp_path):
    run = load_run(str(_run_dir(tmp_path)), ReadOptions())
    first = run.records[0]
    assert all(r.labels is first.labels and r.rows is first.rows for r in run.records[1:])


def test_wide_float16_with_many_near_equal_classes_is_within_the_contract(tmp_path):
    # Wide columns give column-major blocks, where float32 row sums would drift by ~K/16
    # roundings on rows of near-equal terms (float16 leaves ~40 distinct values here): the sums
    # are float64, so each loss is within F32_TOL * (1 + loss) of plain float64 NumPy.
    rng = np.random.default_rng(2)
    n, k = 100, 2000
    z = (rng.normal(size=(n, k)) * 0.002 - 1.0).astype(np.float16)
    y = rng.integers(0, k, n)
    columns = {"sample_id": np.arange(n), "label": y, **{f"logit_{j}": z[:, j] for j in range(k)}}
    pq.write_table(pa.table(columns), tmp_path / "epoch_001.parquet")
    reduced = reduce_source(EpochSource(1, str(tmp_path / "epoch_001.parquet"), "parquet"),
                            ReadOptions())
    assert reduced.streamed
    ref, p = ce_from_logits(y, z)
    assert (np.abs(reduced.stats.loss - ref) <= F32_TOL * (1 + ref)).all()
    np.testing.assert_allclose(reduced.stats.confidence, p.max(axis=1), rtol=F32_TOL)


def test_the_temperature_fit_holds_no_power_sums_through_the_recalibration():
    # NumPy's allocations, as tracemalloc counts them, while an epoch is finished (fit, per-sample
    # values at T*, summary): at most the fit's row terms (4 x 8 bytes a sample), the
    # recalibrated loss, its exponent and confidence (3 x 8), the summary's two sorted copies
    # (2 x 8), p[label] and correct (9) and some slack: 96 bytes a sample. Holding a pass's
    # power sums (another 4 x 8) or the streaming pass's, or full-length temporaries of the
    # expansion, goes beyond it
    import tracemalloc

    from lossacc_cli.metrics.stream import matrix_passes, reduce_rows

    rng = np.random.default_rng(0)
    n = 200_000
    z = (rng.normal(size=(n, 10)) * 3).astype(np.float32)
    y = rng.integers(0, 10, n)
    reducer = reduce_rows("logits", y, z)
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        stats, summary = reducer.finish(matrix_passes(z))
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert reducer.terms is None  # handed to the fit, which let them go
    assert np.isfinite(summary.recalibrated_loss) and stats.recal_loss.shape == (n,)
    assert peak <= 96 * n, f"{peak / n:.0f} bytes a sample"


def test_a_large_files_scores_are_decoded_by_the_system_allocator_and_let_go(tmp_path, monkeypatch):
    # A file's reader decodes with the pool that was Arrow's default when it was opened: the
    # system allocator (which hands each batch back to the process) is set before a large file
    # is opened, and every batch being reduced lives in it, not in the default pool; once the last
    # temperature pass is made the scores are let go, before the recalibration; the default pool
    # is Arrow's own again after the stream. (Opened before the pool is set, the batches were
    # decoded into the default pool and the system pool held none of them.)
    monkeypatch.setattr(parquet_module, "SMALL_FILE_BYTES", 1 << 10)
    rng = np.random.default_rng(2)
    n, k = 30_000, 10
    logits = rng.normal(size=(n, k)).astype(np.float32) * 3
    table = pa.table({"sample_id": np.arange(n), "label": rng.integers(0, k, n),
                      "logits": pa.FixedSizeListArray.from_arrays(logits.ravel(), k)})
    pq.write_table(table, tmp_path / "epoch_001.parquet")
    default = pa.default_memory_pool()
    seen, released = [], []
    reduce_chunk, recalibrate = stream_module.EpochReducer.reduce_chunk, stream_module.recalibrate

    def spy_chunk(self, start, chunk):
        seen.append((chunk.nbytes, pa.system_memory_pool().bytes_allocated(), chunk.base is not None))
        return reduce_chunk(self, start, chunk)

    def spy_recalibrate(*args):
        released.append(pa.system_memory_pool().bytes_allocated())
        return recalibrate(*args)

    monkeypatch.setattr(stream_module.EpochReducer, "reduce_chunk", spy_chunk)
    monkeypatch.setattr(stream_module, "recalibrate", spy_recalibrate)
    load_run(str(tmp_path), ReadOptions(), jobs=1)
    views = [s for s in seen if s[2]]  # the chunks that are batches' memory, not copies
    assert views and all(system >= nbytes for nbytes, system, _ in views)
    assert released and released[0] < logits.nbytes // 4  # the scores are gone
    assert pa.default_memory_pool().backend_name == default.backend_name
