"""matplotlib's SVG made fit to sit inline in one HTML page among other charts.

* Colours: charts are drawn with sentinel colours (``#0000NN``), one per role, which become CSS
  variables (``var(--fg)``) so that the page's light, dark and print styles recolour them.
* Hover: artists given a gid in :data:`TIPS` get an SVG ``<title>`` per drawn item (a bar, a
  point), which the browser shows on hover and the page's script shows at once.
* Ids: every id is prefixed with the chart's name, so two charts' clip paths cannot collide in
  the one document; matplotlib's document-wide ``<style>`` and its metadata are dropped.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)

ROLES = ("fg", "muted", "grid", "loss", "recal", "acc", "from", "to", "cal", "ref", "mark", "base",
         "check", "bar")
"""The colour roles of the charts; each is a CSS variable ``--<role>`` in the page's style sheet."""

SENTINEL = {role: f"#0000{i + 1:02x}" for i, role in enumerate(ROLES)}
"""The colour matplotlib draws each role in (never a colour a chart uses for itself)."""

_DRAWN = {f"{{{SVG_NS}}}path", f"{{{SVG_NS}}}use"}
_URL = re.compile(r"url\(#([^)]+)\)")


def _drawn_items(group: ET.Element) -> list[ET.Element]:
    """The visible items of an artist's group, in drawing order (not its <defs>)."""
    out: list[ET.Element] = []

    def walk(node: ET.Element) -> None:
        for child in node:
            if child.tag == f"{{{SVG_NS}}}defs":
                continue
            if child.tag in _DRAWN:
                out.append(child)
            else:
                walk(child)

    walk(group)
    return out


def _add_tips(root: ET.Element, tips: dict[str, list[str]]) -> None:
    parent = {child: node for node in root.iter() for child in node}
    for group in list(root.iter(f"{{{SVG_NS}}}g")):
        texts = tips.get(group.get("id", ""))
        if not texts:
            continue
        items = _drawn_items(group)
        if len(texts) == 1 or len(items) != len(texts):
            title = ET.Element(f"{{{SVG_NS}}}title")
            title.text = "\n".join(texts)
            group.insert(0, title)
            group.set("class", "tip")
            continue
        for item, text in zip(items, texts):
            holder = parent[item]
            wrapper = ET.Element(f"{{{SVG_NS}}}g", {"class": "tip"})
            title = ET.SubElement(wrapper, f"{{{SVG_NS}}}title")
            title.text = text
            index = list(holder).index(item)
            holder.remove(item)
            wrapper.append(item)
            holder.insert(index, wrapper)


def _prefix_ids(root: ET.Element, prefix: str) -> None:
    href = f"{{{XLINK_NS}}}href"
    for node in root.iter():
        if "id" in node.attrib:
            node.set("id", f"{prefix}-{node.get('id')}")
        for name, value in node.attrib.items():
            if name in (href, "href") and value.startswith("#"):
                node.set(name, f"#{prefix}-{value[1:]}")
            elif "url(#" in value:
                node.set(name, _URL.sub(lambda m: f"url(#{prefix}-{m.group(1)})", value))


def inline_svg(svg_text: str, *, name: str, tips: dict[str, list[str]], label: str) -> str:
    """matplotlib's SVG document -> an ``<svg>`` element for the page (see the module docstring).

    ``name`` prefixes the ids, ``tips`` maps an artist's gid to the hover text of each item it
    draws (one text: the whole artist), ``label`` is the chart's accessible name.
    """
    root = ET.fromstring(svg_text)
    for node in list(root):
        if node.tag == f"{{{SVG_NS}}}metadata":
            root.remove(node)
    for defs in root.iter(f"{{{SVG_NS}}}defs"):
        for style in [c for c in defs if c.tag == f"{{{SVG_NS}}}style"]:
            defs.remove(style)
    _add_tips(root, tips)
    _prefix_ids(root, name)
    # responsive: the viewBox keeps the aspect ratio, the page sets the width
    for attribute in ("width", "height"):
        root.attrib.pop(attribute, None)
    root.set("class", "chart")
    root.set("role", "img")
    root.set("aria-label", label)
    root.set("data-chart", name)
    text = ET.tostring(root, encoding="unicode")
    for role, colour in SENTINEL.items():
        text = text.replace(colour, f"var(--{role})")
    return text
