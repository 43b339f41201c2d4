"""Read a page's visible text, for checks on what a merchant actually sees."""

from __future__ import annotations

import html
import re

_HIDDEN = re.compile(r"<(script|style|code|pre)\b[^>]*>.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")
_LATIN_DIGIT = re.compile(r"[0-9]")


def visible_text(page: str) -> str:
    """The text of an HTML page without tags, attributes, scripts, styles and code samples."""
    return html.unescape(_TAG.sub(" ", _HIDDEN.sub(" ", page)))


def latin_digits(page: str, context: int = 30) -> list[str]:
    """Snippets of visible text around each Latin (ASCII) digit; empty when there is none."""
    text = visible_text(page)
    return [
        text[max(m.start() - context, 0) : m.end() + context] for m in _LATIN_DIGIT.finditer(text)
    ]
