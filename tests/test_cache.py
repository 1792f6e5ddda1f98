"""The cache of per-epoch reductions: the same results cold and warm, a warm run reads no epoch
again, damaged or foreign entries are rebuilt, an unwritable folder is one warning."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lossacc_cli.analysis import run as run_module
from lossacc_cli.analysis.run import load_run
from lossacc_cli.cache import EpochCache, clear, usage
from lossacc_cli.cache import entry as entry_module
from lossacc_cli.cli.app import app
from lossacc_cli.writers import PredictionWriter

N, K = 400, 3  # 1,200 scores an epoch: enough to be cached (CACHE_MIN_VALUES)


def make_run(folder: Path, fmt: str = "parquet", epochs: int = 4, ids: str = "int") -> Path:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, K, N)
    sample_ids = np.arange(N) if ids == "int" else np.array([f"s{i:04d}" for i in range(N)], dtype=object)
    with PredictionWriter(folder, format=fmt) as writer:
        for epoch in range(1, epochs + 1):
            writer.add(sample_ids, labels, logits=rng.normal(size=(N, K)) * epoch)
            writer.end_epoch(epoch)
    return folder


@pytest.fixture
def counted(monkeypatch):
    """How many epochs are read and reduced: reduce_source (the per-epoch reading) counted."""
    calls: list[str] = []
    original = run_module.reduce_source

    def counting(source, options, threads=1):
        calls.append(os.path.basename(source.path))
        return original(source, options, threads)

    monkeypatch.setattr(run_module, "reduce_source", counting)
    return calls


def same_run(a, b) -> None:
    """Field for field, array dtypes included: the cached run is the run."""
    assert a.epochs == b.epochs and a.notes == b.notes and a.class_names == b.class_names
    assert a.ids.dtype == b.ids.dtype and np.array_equal(a.ids, b.ids)
    for x, y in zip(a.records, b.records):
        assert x.source == y.source and x.kind == y.kind
        assert repr(x.summary) == repr(y.summary)  # repr: NaN equals NaN, every digit compared
        for name in ("loss", "pred", "correct", "confidence", "true_prob", "margin", "clipped",
                     "recal_loss", "recal_confidence"):
            u, v = getattr(x.stats, name), getattr(y.stats, name)
            assert (u is None) == (v is None), name
            if u is not None:
                assert u.dtype == v.dtype and np.array_equal(u, v, equal_nan=True), name
        assert repr(x.stats.recal_crossfit_loss) == repr(y.stats.recal_crossfit_loss)
        assert x.stats.recal_as_given == y.stats.recal_as_given
        assert x.labels.dtype == y.labels.dtype and np.array_equal(x.labels, y.labels)


@pytest.mark.parametrize("fmt, ids", [("parquet", "int"), ("npz", "str")])
def test_warm_run_reads_no_epoch_and_is_identical(tmp_path, counted, fmt, ids):
    path = str(make_run(tmp_path / "preds", fmt, ids=ids))
    before = sorted(os.listdir(path))
    uncached = load_run(path)
    assert len(counted) == 4
    cache = EpochCache(str(tmp_path / "cache"))
    cold = load_run(path, cache=cache)
    assert len(counted) == 8 and cache.stored == 4
    warm_cache = EpochCache(str(tmp_path / "cache"))
    warm = load_run(path, cache=warm_cache)
    assert len(counted) == 8, "a warm run read an epoch file again"
    assert warm_cache.hits == 4 and warm_cache.stored == 0
    same_run(uncached, cold)
    same_run(uncached, warm)
    assert sorted(os.listdir(path)) == before  # never beside the input


def test_a_new_epoch_is_the_only_one_reduced(tmp_path, counted):
    path = make_run(tmp_path / "preds", epochs=3)
    load_run(str(path), cache=EpochCache(str(tmp_path / "cache")))
    counted.clear()
    rng = np.random.default_rng(9)
    labels = load_run(str(path)).records[0].labels
    counted.clear()
    with PredictionWriter(path) as writer:
        writer.add(np.arange(N), labels, logits=rng.normal(size=(N, K)))
        writer.end_epoch(4)
    load_run(str(path), cache=EpochCache(str(tmp_path / "cache")))
    assert counted == ["epoch_004.parquet"]


def _entries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.npz"))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "other_version"])
def test_damaged_entry_is_rebuilt(tmp_path, counted, damage, monkeypatch):
    path = str(make_run(tmp_path / "preds", epochs=2))
    folder = tmp_path / "cache"
    reference = load_run(path, cache=EpochCache(str(folder)))
    victim = _entries(folder)[0]
    data = victim.read_bytes()
    if damage == "truncate":
        victim.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        victim.write_bytes(os.urandom(len(data)))
    elif damage == "empty":
        victim.write_bytes(b"")
    else:  # an entry at this key written by another version of lossacc
        with open(victim, "rb") as handle:
            fields = entry_module.decode(handle, "x")
        with monkeypatch.context() as patch:
            patch.setattr(entry_module, "__version__", "0.0.0-other")
            victim.write_bytes(entry_module.encode({**fields, "source": "x"}))
    counted.clear()
    cache = EpochCache(str(folder))
    rebuilt = load_run(path, cache=cache)
    assert len(counted) == 1 and cache.hits == 1 and cache.stored == 1
    same_run(reference, rebuilt)
    counted.clear()
    load_run(path, cache=EpochCache(str(folder)))
    assert counted == []  # the rebuilt entry is good


def test_same_size_and_mtime_but_new_content_is_a_miss(tmp_path, counted):
    # two small uncompressed NPZ epochs of one shape: the same size; the content differs
    folder = tmp_path / "preds"
    folder.mkdir()
    rng = np.random.default_rng(1)
    labels = rng.integers(0, K, N)
    for epoch in (1, 2):
        np.savez(folder / f"epoch_{epoch:03d}.npz", labels=labels, sample_ids=np.arange(N),
                 logits=rng.normal(size=(N, K)))
    cache_dir = str(tmp_path / "cache")
    first = load_run(str(folder), cache=EpochCache(cache_dir))
    stamp = os.stat(folder / "epoch_002.npz")
    fresh = rng.normal(size=(N, K)) * 3
    np.savez(folder / "epoch_002.npz", labels=labels, sample_ids=np.arange(N), logits=fresh)
    assert os.stat(folder / "epoch_002.npz").st_size == stamp.st_size
    os.utime(folder / "epoch_002.npz", ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    counted.clear()
    second = load_run(str(folder), cache=EpochCache(cache_dir))
    assert counted == ["epoch_002.npz"]
    assert second.records[1].summary.loss != first.records[1].summary.loss
    same_run(second, load_run(str(folder)))


def test_options_are_part_of_the_key(tmp_path, counted):
    from lossacc_cli.readers.model import ReadOptions

    path = str(make_run(tmp_path / "preds", epochs=2))
    cache_dir = str(tmp_path / "cache")
    load_run(path, cache=EpochCache(cache_dir))
    counted.clear()
    load_run(path, ReadOptions(strict=True), cache=EpochCache(cache_dir))
    assert len(counted) == 2


def run_cli(*args: str, cache: Path | str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"LOSSACC_CACHE_DIR": str(cache),
                                                                       "NO_COLOR": "1"})
    return result.exit_code, result.stdout, result.stderr


def test_cli_cold_warm_and_no_cache_json_equal(tmp_path, counted):
    path = str(make_run(tmp_path / "preds", epochs=5))
    cache = tmp_path / "cache"
    cold = run_cli("analyze", path, "--format", "json", "--jobs", "1", cache=cache)
    assert len(counted) == 5
    warm = run_cli("analyze", path, "--format", "json", "--jobs", "1", cache=cache)
    outliers = run_cli("outliers", path, "--epoch", "5", "--format", "json", "--jobs", "1", cache=cache)
    assert len(counted) == 5, "analyze then outliers re-read the run"
    bypass = run_cli("analyze", path, "--format", "json", "--jobs", "1", "--no-cache", cache=cache)
    assert len(counted) == 10
    assert cold[0] == warm[0] == bypass[0] == outliers[0] == 0
    assert json.loads(cold[1]) == json.loads(warm[1]) == json.loads(bypass[1])
    assert cold[1] == warm[1] == bypass[1]  # byte for byte
    assert json.loads(outliers[1])["epoch"] == 5


def test_unwritable_cache_is_one_warning(tmp_path):
    path = str(make_run(tmp_path / "preds", epochs=2))
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    code, out, err = run_cli("analyze", path, "--format", "json", cache=blocker / "cache")
    assert code == 0
    lines = [line for line in err.splitlines() if "cache" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: cache: cannot write to "), err
    reference = run_cli("analyze", path, "--format", "json", "--no-cache", cache=tmp_path / "c2")
    assert json.loads(out) == json.loads(reference[1])


def test_cache_info_and_clear(tmp_path):
    path = str(make_run(tmp_path / "preds", epochs=3))
    cache = tmp_path / "cache"
    run_cli("analyze", path, cache=cache)
    code, out, _ = run_cli("cache", "info", cache=cache)
    assert code == 0 and "epochs:  3" in out and str(cache) in out
    code, out, _ = run_cli("cache", "clear", cache=cache)
    assert code == 0 and out.startswith("removed 3 cached epochs")
    assert usage(str(cache / "epochs"))[1:] == (0, 0)
    assert clear(str(cache / "epochs")) == (0, 0)


def test_bounded_size_drops_least_recently_used(tmp_path, monkeypatch):
    path = str(make_run(tmp_path / "preds", epochs=4))
    folder = tmp_path / "cache"
    load_run(path, cache=EpochCache(str(folder)))
    sizes = [p.stat().st_size for p in _entries(folder)]
    # room for two entries: the two used longest ago go
    monkeypatch.setenv("LOSSACC_CACHE_MAX_MB", str((max(sizes) * 2 + 10) / (1 << 20)))
    for age, entry in enumerate(_entries(folder)):
        os.utime(entry, (1000 + age, 1000 + age))
    oldest = _entries(folder)[:2]
    EpochCache(str(folder)).prune()
    left = _entries(folder)
    assert len(left) == 2 and not set(oldest) & set(left)
    shutil.rmtree(folder)


def test_with_workers_cached_epochs_are_taken_here_and_the_rest_reduced_in_order(tmp_path, monkeypatch):
    """jobs > 1: the cache's epochs are decoded by this process (not sent through a worker), the
    others reduced by the workers; the run is the run read without the cache, epoch for epoch."""
    monkeypatch.setattr(run_module, "PARALLEL_MIN_BYTES", 0)  # workers even for this small run
    every = make_run(tmp_path / "every", epochs=6)
    path = tmp_path / "preds"
    path.mkdir()
    # epochs 2 and 5 only in the cache: a cold run of the folder while it held just them
    for name in ("epoch_002.parquet", "epoch_005.parquet"):
        shutil.copy2(every / name, path / name)
    load_run(str(path), cache=EpochCache(str(tmp_path / "cache")))
    for name in ("epoch_001.parquet", "epoch_003.parquet", "epoch_004.parquet", "epoch_006.parquet"):
        shutil.copy2(every / name, path / name)
    uncached = load_run(str(path), jobs=2)
    hits: list[str] = []
    original = run_module._cached_epochs

    def seen(sources, options, cache):
        found = original(sources, options, cache)
        hits.extend(os.path.basename(sources[i].path) for i in sorted(found))
        return found

    monkeypatch.setattr(run_module, "_cached_epochs", seen)
    mixed = load_run(str(path), jobs=2, cache=EpochCache(str(tmp_path / "cache")))
    assert hits == ["epoch_002.parquet", "epoch_005.parquet"]
    assert mixed.epochs == [1, 2, 3, 4, 5, 6]
    same_run(uncached, mixed)
