"""The one exception type for user mistakes.

Anything a user can get wrong (a flag, a file, a value, a path) raises `UserError` with a message that
names the culprit and what would be valid. The CLI prints it as one line and exits with code 2; library
callers can catch it like any `ValueError`.
"""

from __future__ import annotations

import difflib
from typing import Iterable


class UserError(ValueError):
    """A mistake in user input; the message is meant to be shown as is."""


def nearest(name: str, valid: Iterable[str]) -> str:
    """' (did you mean X?)' for the closest valid name, or '' when nothing is close."""
    match = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def first_line(exc: BaseException) -> str:
    """An exception as one line for a message: its first line, or its type when it says nothing."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def install_extra(extra: str) -> str:
    """How a user gets one of pyproject.toml's optional extras. lightrecipe is installed from its checkout (no
    package index has it), and `make` installs every extra into .venv already."""
    return f"pip install -e '.[{extra}]' in the lightrecipe checkout (`make` installs it into .venv already)"
