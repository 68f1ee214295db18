"""How user strings (arch, study, source, error, choice values) and numbers are written into the report's
text files: one home for each rule, shared by the HTML page, the Markdown page and the recipe files. (Figures
show such strings as written through `style.RC`; the HTML page escapes with `html.escape`.)"""

from __future__ import annotations

import math
import re
from typing import Any


def number(value: Any, fmt: str = "{:.1f}", missing: str = "–") -> str:
    """A number for a table cell; a missing one (None, NaN) is `missing`, an en dash unless told."""
    return missing if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


def percent(fraction: Any) -> str:
    """A fraction (0.915) as the percent the report shows (91.5); a missing one is an en dash."""
    return number(None if fraction is None else 100 * fraction)


def plus_minus(mean: Any, half: Any) -> str:
    """`mean ± half` (a 95% half-width), both in the unit given, one decimal; an en dash for a missing mean and no
    `±` part for a missing half-width (one seed)."""
    shown = number(mean)
    if shown == "–" or not isinstance(half, (int, float)) or not math.isfinite(half):
        return shown
    return f"{shown} ± {half:.1f}"


def one_line(value: Any) -> str:
    """A string on one line: every line break Python, YAML and CommonMark know (\\n, \\r, \\u2028, ...) becomes a
    space, so a name can never start a new line in a YAML comment or a Markdown table row."""
    return " ".join(str(value).splitlines())


# CommonMark reads these as inline syntax (code, emphasis, links, images, raw HTML, entities, table cells,
# GFM strikethrough); a backslash before each makes it a plain character. "_" is left alone between two
# letters or digits, where CommonMark never reads it as emphasis (arch names keep their underscores).
_MARKDOWN_SPECIAL = re.compile(r"[\\`*\[\]<>|&~!]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def markdown_text(value: Any) -> str:
    """A user string as Markdown that renders as exactly that text, on one line."""
    return _MARKDOWN_SPECIAL.sub(lambda m: "\\" + m.group(0), one_line(value))
