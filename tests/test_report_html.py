"""The HTML report without a browser: structure, every number against the JSON, escaping, size,
previews, and the CLI (`make test-browser` opens the same pages in Chromium)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lossacc_cli.analysis.run import load_run
from lossacc_cli.cli.app import app
from lossacc_cli.readers.model import ReadOptions
from lossacc_cli.render.jsonout import clean
from lossacc_cli.report import analyze, analyze_run
from tests.browser.pagecheck import NASTY_CLASSES, NASTY_IDS, collect, mismatches, write_nasty_run

pytest.importorskip("matplotlib", reason="the report extra (matplotlib) is not installed: pip install 'lossacc[report]'")

from lossacc_cli.render import html  # noqa: E402
from lossacc_cli.render.html import page as page_module  # noqa: E402
from lossacc_cli.render.html.media import BUDGET_BYTES, MAX_IMAGE_BYTES, Media  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "imbalanced"
CHARTS = ["curves", "decomposition", "distributions", "reliability-from", "reliability-to"]
runner = CliRunner()


@pytest.fixture(scope="module")
def sample():
    report = analyze(str(SAMPLE))
    return report, html.render(report, top=20)


def _doc(report, top):
    return clean(report.to_dict(top=top))


def test_one_self_contained_page(sample):
    report, page = sample
    c = collect(page)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert c.scripts == 1 and not c.handlers  # our script only, no inline event handler
    assert c.urls == []  # nothing to fetch: no src/href but data: URIs and anchors
    assert "default-src 'none'" in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") \
        .replace('xmlns:xlink="http://www.w3.org/1999/xlink"', "")
    assert "https://" not in page and "@import" not in page and "url(http" not in page
    assert [x for x in page.split('data-chart="')[1:]] and \
        [x.split('"')[0] for x in page.split('data-chart="')[1:]] == CHARTS


def test_every_number_equals_the_json(sample):
    report, page = sample
    doc = _doc(report, 20)
    items = collect(page).items
    assert mismatches(items, doc) == []
    paths = {p for p, _, _ in items}
    # the numbers the issue names: headline, rise, each verdict's share, checkpoint, per-epoch losses
    assert {"headline", "diagnosis.rise.rise", "checkpoint.epoch", "checkpoint.temperature"} <= paths
    assert {f"diagnosis.verdicts.{i}.share" for i, v in enumerate(doc["diagnosis"]["verdicts"])
            if v["share"] is not None} <= paths
    assert {f"epochs.{i}.loss" for i in range(report.n_epochs)} <= paths
    assert {f"diagnosis.rise.top_samples.{i}.change" for i in range(20)} <= paths


def test_the_json_of_the_cli_is_the_same(sample, tmp_path):
    report, page = sample
    r = runner.invoke(app, ["analyze", str(SAMPLE), "--format", "json", "--top", "20"])
    assert r.exit_code == 0
    assert mismatches(collect(page).items, json.loads(r.stdout)) == []


def test_hover_texts_one_per_drawn_item(sample):
    report, page = sample
    curves = page.split('data-chart="curves"')[1].split("</svg>")[0]
    # one hover text per epoch on each curve, the checkpoint, and each diverging span on both panels
    loss_tips = [t for t in curves.split("<title>")[1:] if t.startswith("epoch ") and ": loss " in t.split("\n")[0]]
    assert len(loss_tips) == report.n_epochs
    first = report.epochs[0]
    assert f"loss {first.loss:.6g} nats" in curves
    rel = page.split('data-chart="reliability-to"')[1].split("</svg>")[0]
    filled = int((report.calibration_to.equal_width.count > 0).sum())
    assert rel.count("<title>") == 3 * filled  # the accuracy bar, the gap and the count of each bin


def test_charts_follow_the_page_colours(sample):
    _, page = sample
    for name in CHARTS:
        svg = page.split(f'data-chart="{name}"')[1].split("</svg>")[0]
        assert "var(--fg)" in svg and "#0000" not in svg, name
    assert "@media (prefers-color-scheme: dark)" in page and "@media print" in page


def test_rendering_twice_gives_the_same_page(sample):
    report, page = sample
    assert html.render(report, top=20) == page


def test_data_is_escaped_everywhere(tmp_path):
    folder = tmp_path / 'run <&"\'>'
    names = write_nasty_run(folder)
    run = load_run(str(folder), ReadOptions())
    run = dataclasses.replace(run, class_names=tuple(names.read_text(encoding="utf-8").split("\n")[:3]))
    report = analyze_run(run)
    page = html.render(report, top=50)
    c = collect(page)
    assert c.scripts == 1 and not c.handlers and c.urls == []
    for raw in NASTY_IDS + NASTY_CLASSES + [str(folder)]:
        if any(ch in raw for ch in "<>&"):
            assert raw not in page, raw
    texts = {t for _, _, t in c.items}
    assert set(NASTY_IDS) <= texts  # shown literally, as the ids they are
    assert str(folder) in texts
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    assert mismatches(c.items, _doc(report, 50)) == []


def _big_run(folder: Path, *, n=3000, k=120, epochs=12) -> None:
    """Many classes and many suspected label errors: what the page must cap."""
    rng = np.random.default_rng(3)
    folder.mkdir()
    labels = rng.integers(0, k, n)
    given = labels.copy()
    flip = rng.random(n) < 0.15
    given[flip] = (labels[flip] + 1) % k
    for e in range(1, epochs + 1):
        logits = rng.standard_normal((n, k)).astype(np.float32)
        logits[np.arange(n), labels] += 2.0 + 0.8 * e
        np.savez(folder / f"epoch_{e:03d}.npz", logits=logits, labels=given, sample_ids=np.arange(n))


def test_large_runs_are_summarised_never_dumped(tmp_path):
    _big_run(tmp_path / "big")
    report = analyze(str(tmp_path / "big"))
    page = html.render(report, top=50)
    doc = _doc(report, 50)
    assert doc["label_issues"]["count"] > page_module.LABEL_ROWS
    assert len(doc["diagnosis"]["rise"]["classes"]) > page_module.CLASS_ROWS
    c = collect(page)
    rows = {name: page.split(f'data-table="{name}"')[1].split("</table>")[0].count("<tr") - 1
            for name in ("samples", "labels", "classes", "epochs")}
    assert rows == {"samples": 50, "labels": page_module.LABEL_ROWS, "classes": page_module.CLASS_ROWS,
                    "epochs": 12}
    assert f"of {doc['label_issues']['count']:,} flagged samples" in page
    assert mismatches(c.items, doc) == []
    assert len(page.encode("utf-8")) < 1_000_000


def _png(path: Path, size: int = 4) -> bytes:
    import matplotlib.image

    matplotlib.image.imsave(path, np.linspace(0, 1, size * size).reshape(size, size))
    return path.read_bytes()


def test_media_previews(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    report = analyze(str(SAMPLE))
    top = report.to_dict(top=4)["diagnosis"]["rise"]["top_samples"]
    (tmp_path / "media").mkdir()
    _png(tmp_path / "media" / f"{top[0]['id']}.png")
    (tmp_path / "media" / f"{top[1]['id']}.png").write_bytes(b"x" * (MAX_IMAGE_BYTES + 1))
    (tmp_path / "media" / f"{top[2]['id']}.png").write_text("not an image </pre><script>alert(5)</script>")
    previews = Media("media/{id}.png")
    page = html.render(report, top=4, media=previews)
    assert page.count('<img class="media" src="data:image/png;base64,') >= 1
    assert "above the 256 KB a preview may take" in page
    assert previews.missing >= 1 and previews.skipped == 1
    assert "<script>alert(5)" not in page
    text = Media("media/{id}.txt")
    (tmp_path / "media" / f"{top[0]['id']}.txt").write_text("a caption <b>" + "y" * 2000)
    page = html.render(report, top=4, media=text)
    assert '<pre class="media-text"' in page and "a caption &lt;b&gt;" in page and "y" * 601 not in page


def test_media_budget_caps_the_page(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    media = Media("{id}.bin")
    blob = b"\x89PNG\r\n\x1a\n" + b"0" * (MAX_IMAGE_BYTES - 100)
    for i in range(BUDGET_BYTES // MAX_IMAGE_BYTES + 3):
        (tmp_path / f"{i}.bin").write_bytes(blob)
        media.preview(i, 0)
    assert media.used <= BUDGET_BYTES and media.skipped == 3


@pytest.mark.parametrize("template", ["images/x.png", "images/{id}.{ext}", "images/{id", "{0}.png"])
def test_media_template_errors_exit_2(template):
    r = runner.invoke(app, ["report", str(SAMPLE), "--media", template, "-o", "-"])
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.startswith("error: --media") and len(r.stderr.strip().splitlines()) == 1


def test_cli_writes_the_page(tmp_path):
    out = tmp_path / "report.html"
    r = runner.invoke(app, ["report", str(SAMPLE), "-o", str(out), "--top", "5"])
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "" and r.stderr.startswith(f"wrote {out} (")
    assert out.read_text(encoding="utf-8") == html.render(analyze(str(SAMPLE)), top=5)
    r = runner.invoke(app, ["report", str(SAMPLE), "-o", "-", "--top", "5"])
    assert r.exit_code == 0 and r.stdout == out.read_text(encoding="utf-8")


def test_cli_without_the_extra_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    r = runner.invoke(app, ["report", str(SAMPLE), "-o", str(tmp_path / "r.html")])
    assert r.exit_code == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert "pip install 'lossacc[report]'" in r.stderr
    assert not (tmp_path / "r.html").exists()


def test_the_cli_never_imports_matplotlib_unless_asked():
    code = "import sys, lossacc_cli.cli.app; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_media_never_opens_a_fifo_or_a_folder(tmp_path, monkeypatch):
    """A template that names a FIFO (which would block a plain open) or a folder shows a note."""
    monkeypatch.chdir(tmp_path)
    os.mkfifo(tmp_path / "a.png")
    (tmp_path / "b.png").mkdir()
    media = Media("{id}.png")
    fifo, folder = media.preview("a", 0), media.preview("b", 0)
    assert "FIFO" in fifo and "<img" not in fifo
    assert "directory" in folder and "<img" not in folder
    assert media.missing == 2
