"""Values as plain JSON types, the one rule every file and database record of lightrecipe is written with."""

from __future__ import annotations

import json
import math
from typing import Any, Mapping


def jsonable(value: Any) -> Any:
    """Plain JSON types: numpy/torch scalars -> Python, tuples -> lists, keys -> str, NaN and inf -> None (so the
    output stays strict JSON, which Optuna's storages and other tools' readers require)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy / torch scalar
        return jsonable(value.item())
    return json.loads(json.dumps(value, default=str))
