"""Is a name a timm architecture? Answered from a snapshot of `timm.list_models()` so that validating a recipe,
a space or a command line does not import timm and torch (seconds) just to say yes or no.

The snapshot (timm_models.txt) is taken from the pinned timm; a test checks it equals the installed timm's list.
timm itself is asked only when the snapshot cannot answer: a different timm version is installed, or timm is
already imported (a user may have registered their own models).
"""

from __future__ import annotations

import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from lightrecipe.errors import UserError, nearest

SNAPSHOT = Path(__file__).with_name("timm_models.txt")


@lru_cache(maxsize=1)
def snapshot() -> tuple[str, frozenset[str]]:
    """(timm version the snapshot was taken from, model names)."""
    lines = SNAPSHOT.read_text().splitlines()
    return lines[0].split()[2].rstrip(":"), frozenset(line for line in lines[1:] if line)


def check_arch(arch: str, what: str = "recipe field 'arch'") -> None:
    """Raise a UserError naming the nearest valid names unless `arch` is a timm model; `what` names the culprit."""
    version, names = snapshot()
    if arch in names:
        return
    if "timm" not in sys.modules and _installed_timm() == version:
        valid: object = names
    else:
        import timm

        if timm.is_model(arch):
            return
        valid = timm.list_models()
    raise UserError(f"{what} is '{arch}', not a timm model{nearest(arch, valid)}; "
                    "see timm.list_models() for valid names")


def _installed_timm() -> str | None:
    try:
        return metadata.version("timm")
    except metadata.PackageNotFoundError:
        return None
