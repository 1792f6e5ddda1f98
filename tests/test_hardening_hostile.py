"""The hostile corpus (tests/hostile.py), one test per case, family by family.

In-process where possible; in a real process (with a time limit, so that a regression that
hangs fails instead of blocking the run) where the case needs one.
"""

from __future__ import annotations

import pytest

from tests.hostile import HOSTILE, Hostile, run_in_process_or_not


@pytest.mark.parametrize("case", [pytest.param(c, id=f"{c.family}: {c.name}") for c in HOSTILE])
def test_hostile_case(tmp_path, case: Hostile):
    reason = case.skip()
    if reason:
        pytest.skip(reason)
    case.check(run_in_process_or_not(case, tmp_path, timeout=60))


def test_the_hostile_corpus_covers_every_family():
    families = {case.family for case in HOSTILE}
    assert families >= {"claims", "kinds", "outputs", "streams", "terminal", "config", "numbers", "long",
                        "reading"}
    assert len(HOSTILE) >= 100


# --- what a corpus case cannot say ----------------------------------------------------------------

import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from lossacc_cli.cli.app import app  # noqa: E402
from tests.test_hardening import lists, logits, run_dir  # noqa: E402


def test_jobs_are_capped_at_the_cores(tmp_path, monkeypatch):
    import lossacc_cli.cli.loading as loading
    from lossacc_cli.analysis.run import available_cores

    seen = []
    real = loading.load_run

    def recording(path, options, *, jobs, **kwargs):
        seen.append(jobs)
        return real(path, options, jobs=jobs, **kwargs)

    monkeypatch.setattr(loading, "load_run", recording)
    result = CliRunner().invoke(app, ["analyze", str(run_dir(tmp_path)), "--jobs", "1000", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    assert seen and 1 <= seen[0] <= available_cores()


def test_long_format_is_read_once_for_all_epochs(tmp_path, monkeypatch):
    """1,000 epochs of 3 samples in one row group: each epoch must not read the whole file again."""
    epochs = 1000
    pq.write_table(pa.table({"epoch": np.repeat(np.arange(1, epochs + 1), 3),
                             "sample_id": np.tile(np.arange(3), epochs), "label": np.tile([0, 1, 2], epochs),
                             "logits": lists(logits(n=3 * epochs, seed=1))}), tmp_path / "long.parquet")
    reads = []
    for name in ("read", "read_row_groups", "iter_batches"):
        real = getattr(pq.ParquetFile, name)

        def counting(self, *args, _real=real, _name=name, **kwargs):
            reads.append(_name)
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(pq.ParquetFile, name, counting)
    from lossacc_cli.readers import discover, read_epoch, stream_epoch

    sources, _ = discover(tmp_path / "long.parquet")
    assert len(sources) == epochs
    for source in sources:
        stream = stream_epoch(source)
        data = read_epoch(source) if stream is None else stream.header
        assert data.n_samples == 3
    assert len(reads) <= 3, reads[:10]  # the epoch column at discovery, then the table once


def test_long_format_grouped_reads_match_row_group_reads(tmp_path):
    """The grouped read gives each epoch the rows (in file order) that filtering gives."""
    from lossacc_cli.readers import discover, read_epoch
    from lossacc_cli.readers import parquet as reader

    rng = np.random.default_rng(7)
    epochs = np.repeat(np.arange(1, 41), 5)
    order = rng.permutation(epochs.size)  # epochs interleaved in the file
    pq.write_table(pa.table({"epoch": epochs[order], "sample_id": np.tile(np.arange(5), 40)[order],
                             "label": np.tile(np.arange(5) % 3, 40)[order],
                             "logits": lists(logits(n=200, seed=2)[order])}), tmp_path / "long.parquet")
    sources, _ = discover(tmp_path / "long.parquet")
    grouped = [read_epoch(s) for s in sources]
    assert reader._GROUPED, "the small many-epoch file was not grouped"
    reader._GROUPED.clear()
    reader._EPOCH_COUNTS.clear()  # forgetting the count turns grouping off
    direct = [read_epoch(s) for s in sources]
    assert not reader._GROUPED
    for a, b in zip(grouped, direct):
        assert a.epoch == b.epoch and np.array_equal(a.ids, b.ids) and np.array_equal(a.labels, b.labels)
        assert np.array_equal(a.scores, b.scores)


def test_shown_escapes_every_control_character():
    from lossacc_cli.text import shown, shown_lines

    for code in [*range(0x20), *range(0x7F, 0xA0)]:
        assert shown(chr(code)) == f"\\x{code:02x}"
    for char in "\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c":
        assert shown(char) == f"\\u{ord(char):04x}"
    assert shown("img\udcff.npz") == "img\\xff.npz"  # an undecodable byte of a file name
    assert shown("café 猫 [bold]x[/] 🐈") == "café 猫 [bold]x[/] 🐈"  # text is left alone
    assert shown_lines("a\tb\nc\x1b[2J") == "a\tb\nc\\x1b[2J"


def test_memory_budget_follows_the_address_space_limit():
    code = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)); "
            "from lossacc_cli.readers.budget import memory_budget; print(memory_budget())")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LOSSACC_MEMORY_BUDGET", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert 256 << 20 <= int(out.stdout) < 2 << 30


def test_memory_budget_setting(monkeypatch):
    from lossacc_cli.readers.budget import human, memory_budget, parse_size

    assert parse_size("512M") == 512 << 20 and parse_size("1.5G") == 3 << 29 and parse_size("x") is None
    monkeypatch.setenv("LOSSACC_MEMORY_BUDGET", "64K")
    assert memory_budget() == 64 << 10
    assert human(3 << 40) == "3 TiB" and human(512) == "512 bytes"


def test_the_footer_check_reads_valid_footers(tmp_path):
    """Every layout pyarrow writes passes the check, wide footers included."""
    from lossacc_cli.readers.footer import footer_bytes, unsafe_chunks

    tables = {
        "list": {"sample_id": ["a", "b", "c"], "label": [0, 1, 2], "logits": lists(logits(n=3))},
        "wide": {"id": [1, 2, 3], "label": [0, 1, 0]} | {f"prob_{k}": np.full(3, 0.25) for k in range(300)},
        "nested": {"label": [0, 1], "x": pa.array([[[1.0]], [[2.0, 3.0]]], pa.list_(pa.list_(pa.float64())))},
    }
    for name, columns in tables.items():
        path = tmp_path / f"{name}.parquet"
        pq.write_table(pa.table(columns), path, row_group_size=2)
        meta = pq.ParquetFile(path).metadata
        levels = [(meta.schema.column(i).max_definition_level, meta.schema.column(i).max_repetition_level)
                  for i in range(meta.num_columns)]
        fd = os.open(path, os.O_RDONLY)
        try:
            assert unsafe_chunks(footer_bytes(fd, os.fstat(fd).st_size), levels) is None, name
        finally:
            os.close(fd)


ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
