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


# --- long tables: written by Arrow's string kernels ------------------------------------------------


def _floats_of_every_layout(rng, n):
    """Floats of every exponent and layout: random bit patterns, probabilities, tiny
    probabilities, integers, and each power of ten with its neighbours."""
    bits = rng.integers(0, 2**63, n, dtype=np.uint64) | (rng.integers(0, 2, n, dtype=np.uint64) << np.uint64(63))
    random_bits = bits.view(np.float64)
    powers = 10.0 ** np.arange(-330, 309)
    parts = [
        random_bits[np.isfinite(random_bits)],
        rng.random(n), rng.random(n) ** 8, np.exp(-rng.random(n) * 40),
        10.0 ** rng.uniform(-12, 18, n),
        np.round(rng.random(n) * 10.0 ** rng.integers(0, 18, n)),
        rng.integers(-(2**53), 2**53, n).astype(np.float64),
        rng.random(n).astype(np.float32).astype(np.float64),
        powers, np.nextafter(powers, 0.0), np.nextafter(powers, np.inf),
        np.array([0.0, -0.0, 1.0, -1.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
                  9.999999999999999e-05, 9999999999999998.0, 123456789012345.6, 1e-6, 1e-5, 1e-9]),
    ]
    values = np.concatenate(parts)
    return np.concatenate([values, -values])


def test_arrow_floats_are_pythons_repr():
    from lossacc_cli.render.json_columns import float_texts

    values = _floats_of_every_layout(np.random.default_rng(5), 100_000)
    assert float_texts(values).to_pylist() == [repr(v) for v in values.tolist()]


def test_arrow_floats_refuse_nan_and_infinity_as_json_does():
    from lossacc_cli.render.json_columns import float_texts

    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError):
            json.dumps([bad], allow_nan=False)
        with pytest.raises(ValueError):
            float_texts(np.array([0.5, bad]))


def test_arrow_floats_fall_back_to_repr_when_arrows_layout_changes(monkeypatch):
    import lossacc_cli.render.json_columns as json_columns

    monkeypatch.setattr(json_columns, "_KNOWN", False)  # as if another Arrow wrote other layouts
    values = _floats_of_every_layout(np.random.default_rng(6), 1000)
    assert json_columns.float_texts(values).to_pylist() == [repr(v) for v in values.tolist()]


@pytest.mark.parametrize("n", [1, 2, 57, 3000])
def test_long_records_are_written_as_json_dumps_writes_them(monkeypatch, n):
    import lossacc_cli.render.jsonout as jsonout

    rng = np.random.default_rng(n)
    body = {"a": [1, {"samples": _records(n, rng)}], "samples": _records(n, rng).cleaned(),
            "raw": Records({"x": _floats_of_every_layout(rng, 20)[:n], "k": np.arange(n)}),
            "empty": Records({}), "z": None}
    doc = document("analyze", body)
    python_path = dumps(doc)
    monkeypatch.setattr(jsonout, "ARROW_MIN_ROWS", 1)
    monkeypatch.setattr(jsonout, "ARROW_CHUNK_ROWS", 1000)
    assert dumps(doc) == python_path == _reference(doc)


def test_long_records_with_nan_and_no_cleaning_are_refused_as_json_dumps_refuses(monkeypatch):
    import lossacc_cli.render.jsonout as jsonout

    monkeypatch.setattr(jsonout, "ARROW_MIN_ROWS", 1)
    table = Records({"x": np.array([0.5, np.nan])})
    with pytest.raises(ValueError):
        jsonout.dumps({"rows": table})
    assert jsonout.dumps({"rows": table.cleaned()}) == json.dumps({"rows": [{"x": 0.5}, {"x": None}]}, indent=2) + "\n"


def test_long_records_import_no_pandas():
    import subprocess
    import sys

    code = ("import sys, numpy as np\n"
            "from lossacc_cli.render.jsonout import Records, dumps\n"
            "n = 50_000\n"
            "text = dumps({'rows': Records({'id': np.arange(n), 'p': np.random.random(n),"
            " 'ok': np.arange(n) % 2 == 0}, {'p': np.arange(n) % 3 > 0}).cleaned()})\n"
            "assert text.count('\"id\"') == n\n"
            "print('pandas' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("arrow", [False, True])
def test_the_document_comes_in_parts_no_larger_than_a_chunk_of_rows(monkeypatch, arrow):
    """Joined, the parts are the document; a long table comes a chunk of rows at a time, so
    a writer never holds the whole text."""
    import lossacc_cli.render.jsonout as jsonout

    monkeypatch.setattr(jsonout, "RECORDS_CHUNK_ROWS", 40)
    monkeypatch.setattr(jsonout, "ARROW_CHUNK_ROWS", 40)
    monkeypatch.setattr(jsonout, "ARROW_MIN_ROWS", 1 if arrow else 10**9)
    rng = np.random.default_rng(11)
    body = {"before": {"x": 1.5}, "samples": _records(1000, rng).cleaned(),
            "more": [_records(3, rng).cleaned()], "after": "end"}
    doc = document("analyze", body)
    parts = list(jsonout.dump_parts(doc))
    assert "".join(parts) == _reference(doc)
    longest_row = max(len(json.dumps(row, indent=2)) for row in clean(plain(body))["samples"])
    assert len(parts) >= 1000 // 40 and max(map(len, parts)) <= 40 * (longest_row + 40)


def test_a_nan_outside_the_tables_fails_before_any_part():
    import lossacc_cli.render.jsonout as jsonout

    with pytest.raises(ValueError):
        jsonout.dump_parts({"x": float("nan"), "rows": Records({"k": np.arange(3)})})


def test_clean_keeps_plain_scalars_and_converts_the_rest():
    # the plain-scalar fast path and the general one: NaN/inf to None, NumPy scalars to Python
    value = {"f": 1.5, "nan": float("nan"), "inf": -float("inf"), "i": 3, "b": True, "s": "x",
             "none": None, "np_f": np.float32(0.25), "np_nan": np.float64("nan"), "np_i": np.int16(7),
             "np_b": np.bool_(False), "list": (1.0, float("inf"), [np.int64(2)]), 0: "key"}
    out = clean(value)
    assert out == {"f": 1.5, "nan": None, "inf": None, "i": 3, "b": True, "s": "x", "none": None,
                   "np_f": 0.25, "np_nan": None, "np_i": 7, "np_b": False, "list": [1.0, None, [2]],
                   "0": "key"}
    assert [type(out[k]) for k in ("f", "i", "b", "np_f", "np_i", "np_b")] == [float, int, bool, float, int, bool]
    assert json.dumps(document("x", value), indent=2, allow_nan=False) + "\n" == dumps(document("x", value))


def test_flat_fields_is_asdict_for_the_listed_dataclasses():
    import dataclasses

    from lossacc_cli.analysis.compare import ClassStats
    from lossacc_cli.analysis.rise import ClassPart, Concentration, GroupPart
    from lossacc_cli.report_dict import flat_fields

    for obj in (ClassStats(3, 10, 0.5, 0.75, 0.9, 0.8, 0.01, float("nan")),
                ClassPart(1, 4, 0.25, 0.5, 0.1, 2.5, float("inf")),
                Concentration(0.8, 12, 0.012, 1.25), GroupPart("fixed", 5, -0.5, float("nan"))):
        fields = flat_fields(obj)
        expected = dataclasses.asdict(obj)
        assert list(fields) == list(expected)
        assert json.dumps(fields) == json.dumps(expected)  # NaN included, in the same order


def test_flat_records_write_as_the_list_of_asdicts():
    import dataclasses

    from lossacc_cli.analysis.compare import ClassStats
    from lossacc_cli.analysis.rise import ClassPart
    from lossacc_cli.report_dict import flat_records

    rng = np.random.default_rng(5)
    parts = [ClassPart(int(k), int(rng.integers(1, 99)), float(rng.normal()), float(rng.normal()),
                       float(rng.random()), float(rng.normal()), float("nan") if k == 3 else float(rng.normal()))
             for k in range(40)]
    stats = [ClassStats(k, 5, 0.5, float("inf"), 1.0, 0.0, 1e-300, -0.0) for k in range(3)]
    for objs, cls in ((parts, ClassPart), (stats, ClassStats), ([], ClassStats)):
        rows = [dataclasses.asdict(o) for o in objs]
        table = flat_records(objs, cls)
        assert json.dumps(list(table)) == json.dumps(rows)  # NaN included (NaN != NaN in ==)
        # written inside the document as json.dumps writes the list of dicts, at any depth
        for nested, as_lists in (({"a": {"b": [{"classes": table}]}}, {"a": {"b": [{"classes": rows}]}}),
                                 ({"classes": table}, {"classes": rows})):
            expected = json.dumps(document("x", as_lists), indent=2, allow_nan=False) + "\n"
            assert dumps(document("x", nested)) == expected


@pytest.mark.parametrize("arrow", [False, True])
def test_a_document_is_printable_ascii_whatever_its_strings_hold(monkeypatch, arrow):
    """The JSON is shown without a further escaping pass: every character a terminal could act on
    (C0 and C1 controls, DEL, line separators, bidirectional overrides, lone surrogates from
    undecodable file names) and every non-ASCII one is escaped by the encoder, in keys, in values
    and in long tables written by Arrow's kernels, and the text reads back as the same strings."""
    import lossacc_cli.render.jsonout as jsonout

    hostile = [chr(c) for c in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029,
                                0x202E, 0x2066, 0x061C, 0xDC80, 0xE9, 0x1F600)]
    rng = np.random.default_rng(11)
    ids = np.array([f"s{i}" + "".join(rng.choice(hostile, 3)) for i in range(300)], dtype=object)
    table = Records({"id": ids, "x": rng.normal(size=300), "k\x1b[2J": np.arange(300)})
    doc = document("analyze", {"path": "".join(hostile), "samples": table, "".join(hostile): 1})
    if arrow:
        monkeypatch.setattr(jsonout, "ARROW_MIN_ROWS", 1)
        monkeypatch.setattr(jsonout, "ARROW_CHUNK_ROWS", 64)
    text = "".join(jsonout.dump_parts(doc))
    assert set(text) <= {chr(c) for c in range(0x20, 0x7F)} | {"\n"}
    back = json.loads(text)
    assert back["path"] == "".join(hostile) and back["".join(hostile)] == 1
    assert [row["id"] for row in back["samples"]] == ids.tolist()
    assert jsonout.SHOWN_AS_IT_IS
