"""Framework-free checks of a report page against the JSON of `lossacc analyze` (no browser needed).

Every number in the page that stands for a JSON value carries ``data-json`` (its path in the JSON
document) and ``data-value`` (the value, as JSON); text values (the headline, ids, the path)
carry ``data-json`` alone and are compared by their text.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

NASTY_IDS = ["</script><script>alert(1)</script>", "<img src=x onerror=alert(2)>", "a&b\"c'd <!--",
             "$\\frac{1}{2}$ {id}", "]]></svg><svg onload=alert(3)>", "ünï|code`*_x_*"]
NASTY_CLASSES = ["<b>bold</b>", "$x^2$ & co", "</script><script>alert(4)</script>"]


def resolve(doc, path: str):
    node = doc
    for part in path.split("."):
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def mismatches(items, doc) -> list[str]:
    """``items``: (path, data-value or None, text) of each element with data-json."""
    out = []
    for path, value, text in items:
        try:
            expected = resolve(doc, path)
        except (KeyError, IndexError, ValueError, TypeError):
            out.append(f"{path}: not in the JSON")
            continue
        if value is not None:
            got = json.loads(value)
            if got != expected or isinstance(got, bool) != isinstance(expected, bool):
                out.append(f"{path}: page {got!r}, JSON {expected!r}")
        elif " ".join(text.split()) != " ".join(str(expected).split()):
            out.append(f"{path}: page text {text!r}, JSON {expected!r}")
    return out


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.items: list[tuple[str, str | None, str]] = []
        self.tags: list[str] = []
        self.scripts = 0
        self.handlers: list[tuple[str, str]] = []
        self.urls: list[str] = []
        self._open: list[list] = []  # [path, value, text, depth]

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "script":
            self.scripts += 1
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append((tag, name))
            if name in ("src", "href", "xlink:href", "action", "data", "poster") and value and not (
                    value.startswith(("data:", "#"))):
                self.urls.append(value)
        for item in self._open:
            item[3] += 1
        if "data-json" in a:
            self._open.append([a["data-json"], a.get("data-value"), "", 0])

    def handle_endtag(self, tag):
        for item in list(self._open):
            if item[3] == 0:
                self.items.append((item[0], item[1], item[2]))
                self._open.remove(item)
            else:
                item[3] -= 1

    def handle_data(self, data):
        for item in self._open:
            item[2] += data


def collect(page: str) -> _Collector:
    c = _Collector()
    c.feed(page)
    c.close()
    return c


def write_nasty_run(folder: Path, *, epochs: int = 10, n: int = 80) -> Path:
    """A small run whose ids and class names are markup, script and format strings: a rise carried
    by the six nasty samples (confidently wrong, more so each epoch). Returns the class-names file."""
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    k = len(NASTY_CLASSES)
    labels = rng.integers(0, k, n)
    ids = np.array(NASTY_IDS + [f"s{i}" for i in range(len(NASTY_IDS), n)])
    for e in range(1, epochs + 1):
        logits = rng.standard_normal((n, k)) * 0.6
        logits[np.arange(n), labels] += 1.0 + 0.35 * e
        bad = np.arange(len(NASTY_IDS))
        logits[bad, (labels[bad] + 1) % k] += 0.5 + 0.7 * e
        np.savez(folder / f"epoch_{e:03d}.npz", logits=logits.astype(np.float32), labels=labels, sample_ids=ids)
    names = folder.parent / "class_names.txt"
    names.write_text("\n".join(NASTY_CLASSES) + "\n", encoding="utf-8")
    return names
