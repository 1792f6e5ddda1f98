"""The HTML report opened in headless Chromium: no console error, no request, every chart drawn,
the numbers equal the JSON, hover, sorting, dark mode, print; a screenshot in the test's tmp dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser.pagecheck import NASTY_IDS, mismatches, write_nasty_run

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = "sample_data/balanced"  # relative to ROOT, as a user in the project folder would type it
CHARTS = ["curves", "decomposition", "distributions", "reliability-from", "reliability-to"]
TOP = 30

COLLECT = """() => Array.from(document.querySelectorAll('[data-json]')).map(e =>
    [e.getAttribute('data-json'), e.getAttribute('data-value'), e.textContent])"""


def lossacc(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lossacc_cli", *args], cwd=cwd, capture_output=True, text=True,
                          check=True)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The sample run's report and its JSON, each made by the CLI as a user would."""
    out = tmp_path_factory.mktemp("report") / "report.html"
    lossacc("report", str(SAMPLE), "-o", str(out), "--top", str(TOP))
    doc = json.loads(lossacc("analyze", str(SAMPLE), "--format", "json", "--top", str(TOP)).stdout)
    return out, doc


class Opened:
    """A page opened from a file, with every console message, page error and request recorded."""

    def __init__(self, browser, path: Path, **emulate):
        self.page = browser.new_page()
        self.console, self.errors, self.requests, self.dialogs = [], [], [], []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        if emulate:
            self.page.emulate_media(**emulate)
        self.url = path.resolve().as_uri()
        self.page.goto(self.url, wait_until="load")
        self.page.wait_for_selector("html[data-ready='1']")

    def close(self):
        self.page.close()


@pytest.fixture(scope="module")
def opened(browser, sample):
    page = Opened(browser, sample[0])
    yield page
    page.close()


def test_opens_without_console_errors_or_requests(opened):
    assert opened.errors == []
    assert [m for m in opened.console if m.startswith(("error", "warning"))] == []
    assert opened.requests == [opened.url]  # the file itself, nothing else
    assert opened.dialogs == []


def test_each_chart_rendered(opened):
    charts = opened.page.evaluate("""() => Array.from(document.querySelectorAll('svg.chart')).map(s => {
        const r = s.getBoundingClientRect();
        return [s.getAttribute('data-chart'), r.width, r.height, s.querySelectorAll('path, use, text').length,
                s.querySelectorAll('[data-tip]').length];
    })""")
    assert [c[0] for c in charts] == CHARTS
    for name, width, height, drawn, tips in charts:
        assert width > 250 and height > 150 and drawn > 30 and tips > 5, (name, width, height, drawn, tips)


def test_numbers_in_the_page_equal_the_json(opened, sample):
    doc = sample[1]
    items = opened.page.evaluate(COLLECT)
    assert mismatches(items, doc) == []
    by_path = {p: (v, t) for p, v, t in items}
    assert " ".join(by_path["headline"][1].split()) == " ".join(doc["headline"].split())
    assert json.loads(by_path["diagnosis.rise.rise"][0]) == doc["diagnosis"]["rise"]["rise"]
    for i, v in enumerate(doc["diagnosis"]["verdicts"]):
        if v["share"] is not None:
            assert json.loads(by_path[f"diagnosis.verdicts.{i}.share"][0]) == v["share"]
    assert json.loads(by_path["checkpoint.epoch"][0]) == doc["checkpoint"]["epoch"]
    assert json.loads(by_path["checkpoint.temperature"][0]) == doc["checkpoint"]["temperature"]
    table = opened.page.evaluate("""() => Array.from(document.querySelectorAll('#table-epochs tbody tr')).map(
        r => JSON.parse(r.children[1].getAttribute('data-value')))""")
    assert table == [e["loss"] for e in doc["epochs"]]


def test_hover_shows_exact_values(opened, sample):
    doc = sample[1]
    point = opened.page.locator("svg[data-chart='curves'] [data-tip^='epoch 1:']").first
    point.hover(force=True)
    tip = opened.page.locator("#tooltip")
    assert tip.is_visible()
    assert f"loss {doc['epochs'][0]['loss']:.6g} nats" in tip.inner_text()
    cell = opened.page.locator("#table-epochs tbody tr").first.locator("td").nth(1)
    assert cell.get_attribute("title") == f"{doc['epochs'][0]['loss']:.6g}"


def test_tables_sort(opened, sample):
    doc = sample[1]
    header = opened.page.locator("#table-epochs thead th").nth(1)
    column = """() => Array.from(document.querySelectorAll('#table-epochs tbody tr')).map(
        r => JSON.parse(r.children[1].getAttribute('data-value')))"""
    header.click()
    assert opened.page.evaluate(column) == sorted((e["loss"] for e in doc["epochs"]), reverse=True)
    header.click()
    assert opened.page.evaluate(column) == sorted(e["loss"] for e in doc["epochs"])
    assert header.get_attribute("aria-sort") == "ascending"
    opened.page.locator("#table-epochs thead th").first.click()  # back to epoch order (descending)
    opened.page.locator("#table-epochs thead th").first.click()


def _colours(page) -> list[str]:
    return page.evaluate("""() => [getComputedStyle(document.body).backgroundColor,
        getComputedStyle(document.querySelector("svg[data-chart='curves'] text")).fill]""")


def test_light_and_dark(browser, sample):
    light, dark = Opened(browser, sample[0], color_scheme="light"), Opened(browser, sample[0], color_scheme="dark")
    try:
        assert _colours(light.page) == ["rgb(255, 255, 255)", "rgb(31, 35, 40)"]
        assert _colours(dark.page) == ["rgb(13, 17, 23)", "rgb(230, 237, 243)"]
        assert dark.errors == [] and dark.requests == [dark.url]
    finally:
        light.close()
        dark.close()


def test_prints_to_pdf(browser, sample, tmp_path):
    printed = Opened(browser, sample[0], color_scheme="dark", media="print")
    try:
        assert _colours(printed.page)[0] == "rgb(255, 255, 255)"  # print is light whatever the screen
        pdf = printed.page.pdf(format="A4", print_background=True)
        (tmp_path / "report.pdf").write_bytes(pdf)
        assert pdf.startswith(b"%PDF") and len(pdf) > 50_000
    finally:
        printed.close()


def test_screenshot(opened, tmp_path):
    shot = tmp_path / "report.png"
    opened.page.set_viewport_size({"width": 1280, "height": 900})
    opened.page.screenshot(path=str(shot), full_page=True)
    # the headline, the findings and the curves: the picture in the README (`make docs-screenshot`)
    top = tmp_path / "report-top.png"
    bottom = opened.page.evaluate("() => document.getElementById('curves').getBoundingClientRect().bottom + scrollY")
    opened.page.screenshot(path=str(top), clip={"x": 0, "y": 0, "width": 1280, "height": bottom + 8}, full_page=True)
    assert shot.stat().st_size > 50_000 and top.stat().st_size > 20_000
    if os.environ.get("LOSSACC_SCREENSHOT"):
        from PIL import Image  # matplotlib's dependency: in the report extra

        with Image.open(top) as image:  # 3/4 of the width and 256 colours: the README's copy stays small
            small = image.convert("RGB").resize((image.width * 3 // 4, image.height * 3 // 4), Image.LANCZOS)
            small.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(os.environ["LOSSACC_SCREENSHOT"], optimize=True)


def test_hostile_ids_and_names_stay_text(browser, tmp_path):
    folder = tmp_path / 'run <&"\'>'
    names = write_nasty_run(folder)
    out = tmp_path / "nasty.html"
    lossacc("report", str(folder), "--class-names", str(names), "-o", str(out))
    page = Opened(browser, out)
    try:
        assert page.dialogs == [] and page.errors == [] and page.requests == [page.url]
        assert [m for m in page.console if m.startswith("error")] == []
        assert page.page.locator("script").count() == 1
        ids = page.page.evaluate("""() => Array.from(document.querySelectorAll('#table-samples tbody th')).map(
            e => e.textContent)""")
        assert set(NASTY_IDS) <= set(ids)
        assert page.page.locator("h1").inner_text() == str(folder)
    finally:
        page.close()


def test_media_previews_load_from_the_page(browser, tmp_path, sample):
    import matplotlib.image
    import numpy as np

    doc = sample[1]
    (tmp_path / "img").mkdir()
    for s in doc["diagnosis"]["rise"]["top_samples"][:5]:
        matplotlib.image.imsave(tmp_path / "img" / f"{s['id']}.png", np.random.default_rng(0).random((8, 8)))
    out = tmp_path / "media.html"
    lossacc("report", str(ROOT / SAMPLE), "--top", "8", "--media", "img/{id}.png", "-o", str(out), cwd=tmp_path)
    page = Opened(browser, out)
    try:
        widths = page.page.evaluate("() => Array.from(document.querySelectorAll('img.media')).map(i => i.naturalWidth)")
        # the five samples with a file, in each table that lists them; the other three are named as missing
        assert len(widths) >= 5 and set(widths) == {8}
        assert page.page.locator("#table-samples .media-note").count() == 3
        assert page.requests == [page.url] and page.errors == []
    finally:
        page.close()
