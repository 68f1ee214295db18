"""Parameter specs of a search space: a float range, an int range or a list of choices.

A spec only declares. `suggest()` hands it to an Optuna trial (`trial.suggest_float`, `suggest_int`,
`suggest_categorical`); whether the spec fits the recipe field it names is checked by
`lightrecipe.spaces.validate_space`, which knows the file and the parameter to name in an error.

`when` makes a spec conditional: `{"smoothing": "topk"}` or `{"smoothing": ["topk", "uniform"]}` means the
parameter is sampled only while every named parameter has one of the listed values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Union

Scalar = Union[bool, int, float, str]


def _normalise_when(when: Mapping[str, Any] | None) -> dict[str, tuple[Any, ...]]:
    """{'a': 'x', 'b': [1, 2]} -> {'a': ('x',), 'b': (1, 2)}; a bad shape is left for validation to name."""
    if when is None:
        return {}
    if not isinstance(when, Mapping):
        return when  # type: ignore[return-value]  # validate_space reports the type
    out: dict[str, tuple[Any, ...]] = {}
    for key, value in when.items():
        out[key] = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    return out


def same_value(a: Any, b: Any) -> bool:
    """Equality that keeps booleans apart from numbers (True == 1 in Python, not in a recipe)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


@dataclass(frozen=True)
class _Spec:
    def kind(self) -> str:
        return type(self).__name__.lower()

    def extremes(self) -> list[Any]:
        """The values validation builds a recipe at: both ends of a range, every choice."""
        raise NotImplementedError

    def contains(self, value: Any) -> bool:
        raise NotImplementedError

    def suggest(self, trial: Any, name: str) -> Any:
        raise NotImplementedError

    def _when_dict(self) -> dict[str, Any]:
        when = getattr(self, "when")
        if not when:
            return {}
        return {"when": {k: (v[0] if len(v) == 1 else list(v)) for k, v in when.items()}}


@dataclass(frozen=True)
class _Range(_Spec):
    """[low, high], both included, log-uniform when `log`; Float and Int differ in what a value may be."""

    low: float
    high: float
    log: bool = False
    when: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "when", _normalise_when(self.when))

    def extremes(self) -> list[Any]:
        return [self.low, self.high]

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return self._fits_type(value) and self.low <= value <= self.high

    def _fits_type(self, value: int | float) -> bool:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {self.kind(): [self.low, self.high]}
        if self.log:
            out["log"] = True
        return {**out, **self._when_dict()}


@dataclass(frozen=True)
class Float(_Range):
    """A float in [low, high], log-uniform when `log`."""

    def _fits_type(self, value: int | float) -> bool:
        return True

    def suggest(self, trial: Any, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log)


@dataclass(frozen=True)
class Int(_Range):
    """An integer in [low, high] (both included), log-uniform when `log`."""

    low: int
    high: int

    def _fits_type(self, value: int | float) -> bool:
        return float(value).is_integer()

    def suggest(self, trial: Any, name: str) -> int:
        return trial.suggest_int(name, self.low, self.high, log=self.log)


@dataclass(frozen=True)
class Choice(_Spec):
    """One of `values` (strings, numbers or booleans), sampled as an Optuna categorical."""

    values: tuple[Scalar, ...]
    when: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.values, list):
            object.__setattr__(self, "values", tuple(self.values))
        object.__setattr__(self, "when", _normalise_when(self.when))

    def extremes(self) -> list[Any]:
        return list(self.values)

    def contains(self, value: Any) -> bool:
        return any(same_value(value, v) for v in self.values)

    def member(self, value: Any) -> Any:
        """The listed choice equal to `value` (0.0 -> 0 when the list holds 0), for enqueueing a trial."""
        return next(v for v in self.values if same_value(value, v))

    def suggest(self, trial: Any, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.values))

    def to_dict(self) -> dict[str, Any]:
        return {"choice": list(self.values), **self._when_dict()}


ParamSpec = Union[Float, Int, Choice]
KINDS: dict[str, type] = {"float": Float, "int": Int, "choice": Choice}

def describe_range(spec: ParamSpec) -> str:
    if isinstance(spec, Choice):
        return "choices [" + ", ".join(yaml_value(v) for v in spec.values) + "]"
    return f"[{yaml_value(spec.low)}, {yaml_value(spec.high)}]" + (" (log)" if spec.log else "")


def yaml_value(value: Any) -> str:
    """A parameter value as a space file writes it (YAML: true/false for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)



__all__ = ["Choice", "Float", "Int", "KINDS", "ParamSpec", "same_value", "yaml_value"]
