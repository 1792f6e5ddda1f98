"""The streaming readers raise, for every bad value and every broken rule, the very message the
whole-file reader raises: no second read decides what is shown.

Each case is run through ``stream_epoch`` alone (its header, then its blocks) and through
``read_epoch``; batches of a few rows put the faults in several blocks, so that counts and first
ids gathered block by block are checked against the whole matrix's.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lossacc_cli.readers.npz as npz_module
import lossacc_cli.readers.parquet as parquet_module
from lossacc_cli.errors import InputError
from lossacc_cli.readers import ReadOptions, discover, read_epoch, stream_epoch
from tests.helpers import list_array

LAYOUTS = ["list", "list read whole", "fixed_size_list", "wide", "npz", "npz_compressed"]
N, K = 300, 4


@pytest.fixture(autouse=True)
def small_batches(monkeypatch):
    """Batches of 7 rows (list columns decoded from the file unless the layout says otherwise)."""
    monkeypatch.setattr(parquet_module, "STREAM_BATCH_BYTES", 7 * K * 8)
    monkeypatch.setattr(npz_module, "STREAM_BATCH_BYTES", 7 * K * 8)
    monkeypatch.setattr(parquet_module, "WIDE_READ_BYTES", 1)
    monkeypatch.setattr(parquet_module, "SMALL_FILE_BYTES", 0)


def _scores(kind, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(N, K)) * 2
    if kind == "probs":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        z = e / e.sum(axis=1, keepdims=True)
    return z.astype(dtype)


def _write(tmp_path, layout, kind, scores, *, labels=None, ids=None, metadata=None, monkeypatch=None):
    labels = np.arange(N) % K if labels is None else labels
    ids = np.arange(N) * 2 + 5 if ids is None else ids
    if layout.startswith("npz"):
        save = np.savez_compressed if layout == "npz_compressed" else np.savez
        path = tmp_path / "epoch_001.npz"
        save(path, **{kind: scores, "labels": labels, "sample_ids": ids})
        return path
    path = tmp_path / "epoch_001.parquet"
    columns = {"sample_id": ids, "label": labels}
    if layout == "wide":
        columns.update({f"{kind[:-1]}_{k}": scores[:, k] for k in range(scores.shape[1])})
    elif isinstance(scores, pa.Array):
        columns[kind] = scores
    else:
        columns[kind] = list_array(scores, "list" if layout.startswith("list") else layout)
    table = pa.table(columns)
    if metadata:
        table = table.replace_schema_metadata(metadata)
    pq.write_table(table, path, row_group_size=50)
    if layout == "list read whole" and monkeypatch is not None:
        monkeypatch.setattr(parquet_module, "SMALL_FILE_BYTES", 8 << 20)
    return path


def _streamed(source, options):
    """The streaming path's outcome: its error, or the epoch and its blocks stacked."""
    try:
        stream = stream_epoch(source, options)
        assert stream is not None, "this epoch should stream"
        with stream:
            blocks = [np.array(b) for b in stream.blocks()]
            return None, stream.epoch, (np.concatenate(blocks) if blocks else None)
    except InputError as exc:
        return str(exc), None, None


def _whole(source, options):
    try:
        return None, read_epoch(source, options)
    except InputError as exc:
        return str(exc), None


def _same(path, options=None):
    options = options or ReadOptions()
    (source,), _ = discover(path)
    whole_error, data = _whole(source, options)
    stream_error, epoch, scores = _streamed(source, options)
    assert stream_error == whole_error
    if data is not None:
        assert epoch.notes == data.notes and epoch.n_classes == data.n_classes
        assert np.array_equal(epoch.ids, data.ids) and np.array_equal(epoch.labels, data.labels)
        assert scores.dtype == data.scores.dtype and np.array_equal(scores, data.scores)
    return whole_error


def _set(scores, rows, column, value):
    scores = scores.copy()
    scores[rows, column] = value
    return scores


VALUE_FAULTS = {
    # name: (kind, dtype, damage)
    "NaN logits in several batches": ("logits", np.float32, lambda s: _set(s, [3, 40, 41, 299], 1, np.nan)),
    "inf in float16 logits": ("logits", np.float16, lambda s: _set(s, [100, 200], 0, np.inf)),
    "NaN probabilities": ("probs", np.float64, lambda s: _set(s, [9, 150], 2, np.nan)),
    "probabilities out of range": ("probs", np.float64, lambda s: _set(s, [12, 13, 250], 0, 1.2)),
    "logits stored as probabilities": ("probs", np.float32, lambda s: s * 9 - 3),
    "row sums off": ("probs", np.float64, lambda s: s * np.where(np.arange(N) % 37 == 5, 1.01, 1.0)[:, None]),
    "NaN after rows out of range": ("probs", np.float64,
                                    lambda s: _set(_set(s, [1], 0, 1.5), [290], 3, np.nan)),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("fault", list(VALUE_FAULTS))
def test_bad_values_give_the_whole_read_message(tmp_path, monkeypatch, layout, fault):
    kind, dtype, damage = VALUE_FAULTS[fault]
    path = _write(tmp_path, layout, kind, damage(_scores(kind, dtype)), monkeypatch=monkeypatch)
    assert _same(path) is not None


@pytest.mark.parametrize("layout", LAYOUTS)
def test_renormalize_streams_with_the_whole_read_values_and_note(tmp_path, monkeypatch, layout):
    probs = _scores("probs", np.float32)
    probs[np.arange(N) % 11 == 3] *= 1.05
    probs[20, 0] = -0.01
    path = _write(tmp_path, layout, "probs", probs, monkeypatch=monkeypatch)
    assert "--renormalize" in _same(path)
    assert _same(path, ReadOptions(renormalize=True)) is None
    probs[[30, 260]] = 0.0  # rows that sum to 0 cannot be renormalised
    path = _write(tmp_path, layout, "probs", probs, monkeypatch=monkeypatch)
    assert "sum to 0" in _same(path, ReadOptions(renormalize=True))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_header_faults_give_the_whole_read_message(tmp_path, monkeypatch, layout):
    scores = _scores("logits")
    labels = np.arange(N) % K
    labels[[7, 270]] = K  # outside [0, K)
    assert "labels outside" in _same(_write(tmp_path, layout, "logits", scores, labels=labels,
                                            monkeypatch=monkeypatch))
    ids = np.arange(N)
    ids[200] = 3
    # a repeated id and a NaN: the header's fault comes first, as in the whole read
    assert "not unique" in _same(_write(tmp_path, layout, "logits", _set(scores, [5], 0, np.nan),
                                        ids=ids, monkeypatch=monkeypatch))


@pytest.mark.parametrize("layout", ["list", "list read whole", "fixed_size_list", "wide"])
def test_class_names_are_counted_after_the_values(tmp_path, monkeypatch, layout):
    names = {b"lossacc.class_names": json.dumps(["a", "b", "c"]).encode()}
    scores = _scores("logits")
    assert "class names" in _same(_write(tmp_path, layout, "logits", scores, metadata=names,
                                         monkeypatch=monkeypatch))
    assert "finite" in _same(_write(tmp_path, layout, "logits", _set(scores, [9], 1, np.nan),
                                    metadata=names, monkeypatch=monkeypatch))


def _lists(rows):
    return pa.array(rows, pa.list_(pa.float32()))


@pytest.mark.parametrize("layout", ["list", "list read whole"])
def test_list_faults_give_the_whole_read_message(tmp_path, monkeypatch, layout):
    rows = [list(r) for r in _scores("logits", np.float32)]
    for damage, words in [
        (lambda r: r.__setitem__(100, r[100][:3]) or r.__setitem__(250, r[250] + [0.0]), "unequal length"),
        (lambda r: r.__setitem__(0, r[0][:2]), "unequal length"),  # the first row sets K
        (lambda r: r.__setitem__(120, None) or r.__setitem__(290, None), "null lists"),
        (lambda r: r.__setitem__(0, None), "null lists"),
        (lambda r: r.__setitem__(60, [1.0, None, 2.0, 3.0]), "null values inside lists"),
    ]:
        broken = [None if r is None else list(r) for r in rows]
        damage(broken)
        path = _write(tmp_path, layout, "logits", _lists(broken), monkeypatch=monkeypatch)
        assert words in _same(path)
        labels = np.arange(N) % K
        labels[3] = 99  # and a header fault: the lists' fault still comes first
        path = _write(tmp_path, layout, "logits", _lists(broken), labels=labels,
                      monkeypatch=monkeypatch)
        assert words in _same(path)


def test_wide_nulls_name_the_first_column_holding_any(tmp_path):
    scores = _scores("logits")
    columns = {"sample_id": np.arange(N), "label": np.arange(N) % K}
    for k in range(K):
        values = scores[:, k].tolist()
        if k >= 2:
            values[10 * k] = None
        columns[f"logit_{k}"] = pa.array(values, pa.float64())
    pq.write_table(pa.table(columns), tmp_path / "epoch_001.parquet", row_group_size=50)
    assert "logit_2" in _same(tmp_path / "epoch_001.parquet")


def test_split_rows_stream_as_they_are_read_whole(tmp_path):
    scores = _scores("logits", np.float32)
    rows = [list(r) for r in scores]
    split = np.where(np.arange(N) % 3 == 0, "val", "train")
    for r in np.flatnonzero(split == "train")[:5]:
        rows[r] = rows[r][:2]  # rows that are not kept may be of another length
    table = pa.table({"sample_id": np.arange(N), "label": np.arange(N) % K, "split": split,
                      "logits": _lists(rows)})
    pq.write_table(table, tmp_path / "epoch_001.parquet", row_group_size=50)
    assert _same(tmp_path / "epoch_001.parquet", ReadOptions(split="val")) is None
    rows[30] = None  # a kept row
    pq.write_table(table.set_column(3, "logits", _lists(rows)), tmp_path / "epoch_001.parquet",
                   row_group_size=50)
    assert "null lists" in _same(tmp_path / "epoch_001.parquet", ReadOptions(split="val"))


def test_parts_of_an_epoch_folder_stream_as_they_are_read_whole(tmp_path):
    folder = tmp_path / "epoch=1"
    folder.mkdir()
    scores = _scores("probs")
    scores[150, 0] = 2.0
    for part, rows in enumerate((slice(0, 100), slice(100, 300))):
        np.savez(folder / f"part-{part}.npz", probs=scores[rows], labels=(np.arange(N) % K)[rows],
                 sample_ids=np.arange(N)[rows])
    assert "outside [0, 1]" in _same(folder)
    np.savez(folder / "part-1.npz", probs=scores[100:, :3], labels=(np.arange(N) % K)[100:],
             sample_ids=np.arange(N)[100:])
    assert "do not stack" in _same(folder)


def test_a_stream_closes_its_files(tmp_path, monkeypatch):
    import os

    for layout in ("npz", "list"):
        path = _write(tmp_path, layout, "logits", _scores("logits"), monkeypatch=monkeypatch)
        (source,), _ = discover(path)
        before = len(os.listdir("/proc/self/fd"))
        with stream_epoch(source, ReadOptions()) as stream:
            assert len(os.listdir("/proc/self/fd")) > before  # the header read left the file open
            for _ in stream.blocks():
                pass
        assert len(os.listdir("/proc/self/fd")) == before


def _either(source, options=None):
    """The error both paths give (the stream may decline, from the directory, to stream)."""
    options = options or ReadOptions()
    whole_error, _ = _whole(source, options)
    try:
        stream = stream_epoch(source, options)
        if stream is None:
            return whole_error
        with stream:
            for _ in stream.blocks():
                pass
            stream.epoch
        stream_error = None
    except InputError as exc:
        stream_error = str(exc)
    assert stream_error == whole_error
    return whole_error


@pytest.mark.parametrize("index", [776, 941])
def test_damaged_zip_directories_of_the_fuzzer_give_the_whole_read_message(tmp_path, index):
    from tests.fuzz_inputs import DEFAULT_SEED, build_case

    path = build_case(index, DEFAULT_SEED).write(tmp_path / "case")
    sources, _ = discover(path)
    for source in sources:
        _either(source)


@pytest.mark.parametrize("sizes", [(1, None), (None, 10), (10**6, None), ("+8", None)])
def test_a_stored_member_whose_directory_sizes_disagree(tmp_path, sizes):
    """A stored member whose sizes in the zip directory disagree (with each other, or with its
    .npy header) is judged as the whole read judges it, damaged data included."""
    import struct
    import zipfile

    path = _write(tmp_path, "npz", "logits", _scores("logits"))
    info = zipfile.ZipFile(path).getinfo("logits.npy")
    data = bytearray(path.read_bytes())
    entry = next(at for at in range(len(data) - 56) if data[at : at + 4] == b"PK\x01\x02"
                 and data[at + 46 : at + 56] == info.filename.encode())
    compressed, uncompressed = sizes
    if compressed == "+8":
        compressed = info.compress_size + 8
        data[info.header_offset + 200] ^= 0x01  # a bit of the logits: the CRC-32 no longer matches
    if compressed is not None:
        struct.pack_into("<I", data, entry + 20, compressed)
    if uncompressed is not None:
        struct.pack_into("<I", data, entry + 24, uncompressed)
    path.write_bytes(bytes(data))
    (source,), _ = discover(path)
    _either(source)
