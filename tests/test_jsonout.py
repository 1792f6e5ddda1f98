"""The JSON renderer writes columnar rows (Records) exactly as json.dumps writes lists of dicts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lossacc_cli.render.jsonout import Records, clean, document, dumps, plain


def _reference(doc) -> str:
    return json.dumps(clean(plain(doc)), indent=2, allow_nan=False) + "\n"


def _records(n, rng):
    ids = np.array([f"a%s{i}" if i % 3 else f'"q\0é{i}, x"' for i in range(n)], dtype=object)
    present = rng.random(n) < 0.7
    return Records(
        {
            "id": ids,
            "label": rng.integers(0, 5, n),
            "score": np.where(rng.random(n) < 0.1, np.nan, rng.random(n) * 1e-12),
            "big": rng.normal(size=n) * 1e300,
            "flag": rng.random(n) < 0.5,
            "odd % key": np.where(rng.random(n) < 0.1, np.inf, rng.normal(size=n)),
            "pred": rng.integers(0, 5, n),
        },
        {"pred": present, "score": present},
    )


@pytest.mark.parametrize("n", [0, 1, 2, 57])
def test_records_write_as_json_dumps_of_the_rows(n):
    rng = np.random.default_rng(n)
    body = {"a": [1, {"samples": _records(n, rng)}], "samples": _records(n, rng), "z": None}
    doc = document("analyze", body)
    assert dumps(doc) == _reference(doc)
    assert json.loads(dumps(doc))["samples"] == clean(plain(body))["samples"]


def test_records_are_a_sequence_of_dicts():
    r = Records({"id": np.array([3, 4, 5]), "x": np.array([0.5, np.nan, 1.0])},
                {"x": np.array([True, True, False])})
    assert len(r) == 3
    assert r[0] == {"id": 3, "x": 0.5}
    assert r[-1] == {"id": 5, "x": None}
    assert r[:1] == [{"id": 3, "x": 0.5}] and r[1:][1] == {"id": 5, "x": None}
    assert np.isnan(r[1]["x"])
    assert clean(r) == [{"id": 3, "x": 0.5}, {"id": 4, "x": None}, {"id": 5, "x": None}]
    assert clean(plain({"s": r})["s"]) == clean(list(r)) == clean(r)
    with pytest.raises(IndexError):
        r[3]


def test_records_written_in_chunks(monkeypatch):
    import lossacc_cli.render.jsonout as jsonout

    body = {"samples": _records(100, np.random.default_rng(9))}
    doc = document("analyze", body)
    whole = dumps(doc)
    monkeypatch.setattr(jsonout, "RECORDS_CHUNK_ROWS", 7)
    assert dumps(doc) == whole == _reference(doc)


def test_the_ascii_scan_is_the_regex():
    from lossacc_cli.text import _UNSAFE_KEEP_LINES, _escape, is_shown, shown_lines

    for code in list(range(0x100)) + [0x2028, 0x202E, 0xDC80]:
        text = "a\tb\n" + chr(code) + "c"
        assert is_shown(text) == (_UNSAFE_KEEP_LINES.search(text) is None), code
        assert shown_lines(text) == _UNSAFE_KEEP_LINES.sub(_escape, text), code
    assert is_shown("x" * 40_000_000 + "\n") and not is_shown("x" * 20_000_000 + "\x7f")
