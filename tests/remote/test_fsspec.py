"""Any fsspec URL: a run in fsspec's in-memory file system reads as the same run from a folder."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from lossacc_cli.analysis.run import load_run
from lossacc_cli.errors import InputError
from lossacc_cli.render.jsonout import document, dumps
from lossacc_cli.report import analyze_run
from tests.remote.test_s3 import make_run


@pytest.fixture
def memory_run(tmp_path):
    fsspec = pytest.importorskip("fsspec") if os.environ.get("LOSSACC_REMOTE_TESTS") != "required" \
        else __import__("fsspec")
    local = make_run(tmp_path / "preds", "parquet")
    (local / "notes.md").write_bytes(b"not an epoch")
    fs = fsspec.filesystem("memory")
    for path in sorted(local.iterdir()):
        fs.pipe(f"/lossacc-test/preds/{path.name}", path.read_bytes())
    yield local, "memory://lossacc-test/preds"
    fs.rm("/lossacc-test", recursive=True)


def test_memory_url_equals_local(memory_run):
    local, url = memory_run
    here, there = load_run(str(local)), load_run(url)
    assert there.path == url
    assert [r.source for r in there.records] == [r.source.replace(str(local), url) for r in here.records]
    assert there.notes == tuple(n.replace(str(local), url) for n in here.notes)
    assert any("notes.md" in n for n in there.notes)
    expected = dumps(document("analyze", analyze_run(here).to_dict())).replace(str(local), url)
    assert json.loads(dumps(document("analyze", analyze_run(there).to_dict()))) == json.loads(expected)


def test_memory_url_missing(memory_run):
    with pytest.raises(InputError, match=r"^memory://lossacc-test/nothing: no such file or directory$"):
        load_run("memory://lossacc-test/nothing")
