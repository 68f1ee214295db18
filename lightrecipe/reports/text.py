"""How user strings (arch, study, source, error, choice values) and numbers are written into the report's
files: one home for each rule, shared by the HTML page, the Markdown page, the recipe files and the figures."""

from __future__ import annotations

import math
from typing import Any


def number(value: Any, fmt: str = "{:.1f}") -> str:
    """A number for a table cell; a missing one (None, NaN) is an en dash."""
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)
