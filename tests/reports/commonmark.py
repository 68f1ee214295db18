"""Reading Markdown back the way CommonMark does, for the tests: a backslash before ASCII punctuation makes
it literal, and "_" between two letters or digits is never emphasis. Any other character of `SYNTAX` that
is not escaped would be read as syntax (code, emphasis, link, image, raw HTML, entity, cell, strikethrough)."""

from __future__ import annotations

import re

ESCAPED = re.compile(r"\\([!-/:-@\[-`{-~])")
SYNTAX = re.compile(r"[`*\[\]<>|&~!]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def literal(markdown: str) -> str:
    """What CommonMark renders for `markdown` holding no syntax: each escaped character as itself."""
    assert not SYNTAX.search(ESCAPED.sub("", markdown)), f"unescaped Markdown syntax in {markdown!r}"
    return ESCAPED.sub(r"\1", markdown)


def cells(row: str) -> list[str]:
    """A Markdown table row split on its unescaped pipes."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", row.strip())[1:-1]]
