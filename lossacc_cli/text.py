"""Data made safe to show: every piece of text that came from an input (sample ids, class names,
paths, column names, library messages quoting them) passes through :func:`shown` before it
reaches a terminal, a table, a report file or stderr.

A terminal acts on control characters: ``ESC [ 2 J`` clears the screen, ``ESC ] 8 ;;`` plants a
link, ``ESC ] 0 ;`` retitles the window, a bare ``CR`` overwrites the line before it, and the
bidirectional overrides reorder what the reader sees. In data they are escaped into plain
characters (``\\x1b``, ``\\u202e``) that show what the file holds and do nothing. Rich markup is a
separate matter: data is handed to rich as :class:`rich.text.Text`, never parsed as markup.

>>> shown("a\\x1b[31mred\\x07")
'a\\\\x1b[31mred\\\\x07'
>>> shown("two\\nlines"), shown_lines("two\\nlines")
('two\\\\x0alines', 'two\\nlines')
"""

from __future__ import annotations

import re

_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# C0 controls, DEL, C1 controls (0x9b is a one-byte CSI), the line/paragraph separators,
# the bidirectional controls and lone surrogates (a file name's undecodable bytes).
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_BIDI}\ud800-\udfff]")
_UNSAFE_KEEP_LINES = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029{_BIDI}\ud800-\udfff]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    if code < 0x100:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for an undecodable byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\u{code:04x}"


def shown(text: object) -> str:
    """One line of text, safe to print: control, separator and bidirectional characters become
    ``\\xNN`` / ``\\uNNNN`` escapes (a newline too). Everything else is kept as it is.

    Parameters
    ----------
    text : object
        Converted with ``str()`` first.

    Returns
    -------
    str
        Free of characters a terminal would act on; as long as ``text`` when it had none.
    """
    text = str(text)
    if _UNSAFE.search(text) is None:  # the usual case: one scan at C speed, no copy
        return text
    return _UNSAFE.sub(_escape, text)


_ASCII_UNSAFE_KEEP_LINES = bytes(range(0x00, 0x09)) + bytes(range(0x0B, 0x20)) + b"\x7f"
"""What :data:`_UNSAFE_KEEP_LINES` matches among ASCII characters."""

_SCAN_CHARS = 1 << 24


def _clean_ascii(text: str) -> bool:
    """For ASCII text (a JSON document: json.dumps escapes everything else): no character
    :func:`shown_lines` would escape. Scanned as bytes, 16 MB at a time (3x the regex's speed)."""
    for start in range(0, len(text), _SCAN_CHARS):
        raw = text[start : start + _SCAN_CHARS].encode("ascii")
        if len(raw.translate(None, _ASCII_UNSAFE_KEEP_LINES)) != len(raw):
            return False
    return True


def is_shown(text: str) -> bool:
    """True when ``text`` holds nothing :func:`shown_lines` would escape."""
    if text.isascii():
        return _clean_ascii(text)
    return _UNSAFE_KEEP_LINES.search(text) is None


def shown_lines(text: str) -> str:
    """Like :func:`shown` for a whole document: newlines and tabs are kept."""
    if is_shown(text):
        return text
    return _UNSAFE_KEEP_LINES.sub(_escape, text)
