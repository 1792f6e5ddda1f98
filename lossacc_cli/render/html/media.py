"""Sample previews: ``--media 'images/{id}.png'`` puts each listed sample's file beside its row.

Images are embedded as data URIs (each at most :data:`MAX_IMAGE_BYTES`, all together at most
:data:`BUDGET_BYTES`, so the page stays one file of bounded size); any other file is shown as
text (its first :data:`MAX_TEXT_CHARS` characters, escaped). A file that is missing, too large or
over the budget is named beside the row instead, and counted.
"""

from __future__ import annotations

import base64
import html
import string
from dataclasses import dataclass, field
from pathlib import Path

from lossacc_cli.errors import InputError, UsageError
from lossacc_cli.readers.files import open_regular

FIELDS = ("id", "label")
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".webp": "image/webp", ".bmp": "image/bmp", ".svg": "image/svg+xml"}
MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"),
         (b"BM", "image/bmp"))
MAX_IMAGE_BYTES = 256 * 1024
BUDGET_BYTES = 2 * 1024 * 1024
MAX_TEXT_CHARS = 600


def check_template(template: str) -> str:
    """The template, or a UsageError naming what is wrong with it."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise UsageError(f"--media {template!r}: {exc} (write '{{{{' for a literal brace)") from None
    unknown = [n for n in names if n not in FIELDS]
    if unknown:
        raise UsageError(f"--media {template!r}: unknown field {{{unknown[0]}}}; use {{id}} and {{label}}")
    if "id" not in names:
        raise UsageError(f"--media {template!r}: the path template needs {{id}}, e.g. 'images/{{id}}.png'")
    return template


@dataclass
class Media:
    """Previews for one page; ``missing``/``skipped`` count the files not shown."""

    template: str
    used: int = 0
    missing: int = 0
    skipped: int = 0
    _cache: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_template(self.template)

    def preview(self, sample_id, label) -> str:
        """The preview cell's HTML for one sample (escaped)."""
        key = (str(sample_id), label)
        if key not in self._cache:
            self._cache[key] = self._load(self.template.format(id=sample_id, label=label))
        return self._cache[key]

    def _note(self, text: str) -> str:
        return f'<span class="media-note">{html.escape(text)}</span>'

    def _load(self, name: str) -> str:
        path = Path(name)
        try:  # a regular file only, opened without blocking (a FIFO named by the template never hangs)
            with open_regular(path, name) as (handle, info):
                size = info.st_size
                head = handle.read(MAX_IMAGE_BYTES + 1)
        except InputError as exc:
            self.missing += 1
            return self._note(str(exc))
        except (OSError, ValueError) as exc:
            self.missing += 1
            return self._note(f"cannot read {name} ({exc.__class__.__name__})")
        mime = IMAGE_TYPES.get(path.suffix.lower())
        if mime is None:
            mime = next((m for magic, m in MAGIC if head.startswith(magic)), None)
        if mime is None:
            text = head[: 4 * MAX_TEXT_CHARS].decode("utf-8", errors="replace")
            cut = len(text) > MAX_TEXT_CHARS or size > len(head)
            return (f'<pre class="media-text" title="{html.escape(name)}">'
                    f"{html.escape(text[:MAX_TEXT_CHARS])}{'…' if cut else ''}</pre>")
        if size > MAX_IMAGE_BYTES:
            self.skipped += 1
            return self._note(f"{name}: {size / 1024:.0f} KB, above the {MAX_IMAGE_BYTES // 1024} KB a preview may take")
        if self.used + size > BUDGET_BYTES:
            self.skipped += 1
            return self._note(f"{name}: not embedded, the page's {BUDGET_BYTES // 2**20} MB for previews is used up")
        self.used += size
        data = base64.b64encode(head).decode("ascii")
        return f'<img class="media" src="data:{mime};base64,{data}" alt="{html.escape(name)}">'
