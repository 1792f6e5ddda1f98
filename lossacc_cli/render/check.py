"""`check` results -> table, GitHub Actions annotations, JUnit XML, Markdown (the JSON body:
:mod:`.bodies`)."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from lossacc_cli.analysis.check import CheckResult


def _value(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def check_renderable(res: CheckResult, *, plain: bool):
    from rich.console import Group  # the table alone needs rich: the other formats are text
    from rich.text import Text

    from lossacc_cli.render.style import new_table

    t = new_table(f"lossacc check: {res.path}, epoch {res.epoch}", plain=plain)
    for col in ("result", "rule", "value", "threshold", "detail"):
        t.add_column(col, justify="right" if col in ("value", "threshold") else "left")
    for r in res.rules:
        style = None if plain else ("green" if r.passed else "bold red")
        t.add_row("PASS" if r.passed else "FAIL", r.rule, _value(r.value), str(r.threshold), r.message, style=style)
    failed = sum(not r.passed for r in res.rules)
    tail = Text(f"{len(res.rules) - failed} passed, {failed} failed\n")
    return Group(t, tail)


def _escape_property(text: str) -> str:
    # GitHub workflow-command escaping for properties (title=...).
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A").replace(":", "%3A").replace(",", "%2C")


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def check_github(res: CheckResult) -> str:
    """One workflow command per rule: ::error for failures, ::notice for passes."""
    lines = []
    for r in res.rules:
        level = "notice" if r.passed else "error"
        title = _escape_property(f"lossacc {r.rule} {'passed' if r.passed else 'FAILED'}")
        lines.append(f"::{level} title={title}::{_escape_data(r.message)}")
    failed = sum(not r.passed for r in res.rules)
    lines.append(f"lossacc check: {len(res.rules) - failed} passed, {failed} failed")
    return "\n".join(lines) + "\n"


def check_junit(res: CheckResult) -> str:
    """A JUnit XML report: one testcase per rule, a <failure> for each failed rule."""
    failed = sum(not r.passed for r in res.rules)
    suite = ET.Element("testsuite", name="lossacc check", tests=str(len(res.rules)), failures=str(failed),
                       errors="0", skipped="0")
    ET.SubElement(ET.SubElement(suite, "properties"), "property", name="path", value=res.path)
    for r in res.rules:
        case = ET.SubElement(suite, "testcase", classname="lossacc.check", name=r.rule)
        if r.passed:
            ET.SubElement(case, "system-out").text = r.message
        else:
            failure = ET.SubElement(case, "failure", message=r.message, type="threshold")
            failure.text = f"{r.rule}: {r.message} (threshold {r.threshold})"
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


_MD_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "\\|", "\\": "\\\\", "`": "\\`",
                             "*": "\\*", "_": "\\_", "[": "\\[", "]": "\\]", "\r": " ", "\n": " "})


def _md(text: object) -> str:
    """Literal text in a GitHub-flavoured Markdown table cell: no markup, no HTML, no cell break."""
    return str(text).translate(_MD_ESCAPES)


def check_markdown(res: CheckResult) -> str:
    """A Markdown summary for a CI step summary (``$GITHUB_STEP_SUMMARY``) or a PR comment: a heading
    with the verdict, one table row per rule, and the counts."""
    failed = sum(not r.passed for r in res.rules)
    verdict = "passed" if failed == 0 else f"{failed} of {len(res.rules)} rules failed"
    lines = [
        f"### {'✅' if failed == 0 else '❌'} lossacc check {verdict}",
        "",
        f"Run {_md(res.path)}, epoch {res.epoch}.",
        "",
        "| result | rule | value | threshold | detail |",
        "| --- | --- | ---: | ---: | --- |",
    ]
    for r in res.rules:
        result = "✅ PASS" if r.passed else "❌ FAIL"
        lines.append(f"| {result} | {_md(r.rule)} | {_md(_value(r.value))} | {_md(r.threshold)} | {_md(r.message)} |")
    lines += ["", f"{len(res.rules) - failed} passed, {failed} failed."]
    return "\n".join(lines) + "\n"
