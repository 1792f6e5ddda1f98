"""Remote PATHs without a server: which strings are URLs, and the one line a missing package gives."""

from __future__ import annotations

import importlib.util

import pytest
from typer.testing import CliRunner

from lossacc_cli.cli.app import app
from lossacc_cli.readers.remote import is_url, local_path


@pytest.mark.parametrize("text, remote", [
    ("s3://bucket/run/preds/", True), ("gs://b/x", True), ("hf://datasets/u/r", True),
    ("memory://x", True), ("file:///tmp/x", False), ("preds", False), ("C:\\runs\\preds", False),
    ("./s3:/bucket", False),
])
def test_is_url(text, remote):
    assert is_url(text) is remote


def test_file_url_is_local():
    assert local_path("file:///tmp/run") == "/tmp/run"


@pytest.mark.skipif(importlib.util.find_spec("gcsfs") is not None, reason="gcsfs is installed here")
def test_missing_extra_is_one_line_naming_it():
    result = CliRunner().invoke(app, ["analyze", "gs://bucket/run/preds/"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "gs:// paths need the" in lines[0] and "pip install 'lossacc[gs]'" in lines[0]
