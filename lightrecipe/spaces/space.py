"""A search space: a base preset, fixed fields and searched parameters, mapped to a `Recipe` per trial.

The space declares and never computes: `suggest(trial)` asks the trial for each active
parameter and returns the recipe. Everything a user can get wrong in a space is checked by `validate_space`
before anything runs, including the recipe's own combination rules, by building the recipe through
`optuna.trial.FixedTrial` at the corners of the space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from lightrecipe.errors import UserError, nearest
from lightrecipe.spaces.params import KINDS, Choice, Float, Int, ParamSpec, same_value
from lightrecipe.trainers.presets import preset, preset_names
from lightrecipe.trainers.recipe import (
    CHOICES,
    FIELD_NAMES,
    Recipe,
    check_field_names,
    field_types,
    outside_bounds,
    value_fits,
)

BASELINE_PRESET = "resnet50-mocov2"  # docs/science.md: the ResNet-50 MoCo v2 settings every comparison needs
TOP_KEYS = ("name", "description", "base", "fixed", "params")
SPEC_KEYS = ("float", "int", "choice", "log", "when")


@dataclass(frozen=True)
class Space:
    """Searched recipe knobs on top of a preset; see the module docstring.

    `source` names where the space came from (a file path, a built-in name) in error messages; it takes no
    part in equality or serialisation. A Space validates itself on construction.
    """

    name: str
    base: str
    fixed: dict[str, Any]
    params: dict[str, ParamSpec]
    description: str = ""
    source: str = field(default="<python>", compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fixed", dict(self.fixed or {}))
        object.__setattr__(self, "params", dict(self.params or {}))
        _validate(self, self.source)

    # --- trials ---------------------------------------------------------------------------------
    def suggest(self, trial: Any, overrides: Mapping[str, Any] | None = None) -> Recipe:
        """Define-by-run: sample each active parameter, in declaration order, and return the recipe.

        The recipe is preset(base) + fixed + overrides + sampled values. Overrides are the sweep's fixed
        settings (--set, --epochs, arch); a parameter that is also overridden is not sampled.
        """
        overrides = _checked_overrides(overrides)
        sampled: dict[str, Any] = {}
        for name, spec in self.params.items():
            if name in overrides or not _active(spec, sampled, overrides):
                continue
            sampled[name] = spec.suggest(trial, name)
        return preset(self.base, **{**self.fixed, **overrides, **sampled})

    def baseline(self, overrides: Mapping[str, Any] | None = None) -> Recipe:
        """The ResNet-50 settings for comparison: preset('resnet50-mocov2') + fixed + overrides."""
        overrides = _checked_overrides(overrides)
        return preset(BASELINE_PRESET, **{**self.fixed, **overrides})

    def baseline_params(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The baseline as Optuna params (for `study.enqueue_trial`): each searched parameter that is
        active under the baseline's values -> the baseline recipe's value of that field.

        Raises UserError when a baseline value lies outside the space (the trial could not be represented).
        """
        overrides = _checked_overrides(overrides)
        recipe = self.baseline(overrides)
        values: dict[str, Any] = {}
        for name, spec in self.params.items():
            if name in overrides or not _active(spec, values, overrides):
                continue
            value = getattr(recipe, name)
            if not spec.contains(value):
                raise UserError(
                    f"{self.source}: parameter '{name}': the ResNet-50 baseline uses {value!r}, outside "
                    f"{describe_range(spec)}; widen it to include {value!r}, or run the sweep without the "
                    "baseline trial (--no-baseline)"
                )
            if isinstance(spec, Choice):
                value = spec.member(value)
            elif isinstance(spec, Int):
                value = int(value)
            else:
                value = float(value)
            values[name] = value
        return values

    def check(self, overrides: Mapping[str, Any] | None = None) -> None:
        """Build the recipe at the corners of the space (with these overrides); raise UserError naming the
        parameter at the first corner that gives an invalid recipe. A sweep calls this with its overrides."""
        _check_corners(self, self.source, _checked_overrides(overrides))

    # --- serialisation --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        out["base"] = self.base
        out["fixed"] = dict(self.fixed)
        out["params"] = {name: spec.to_dict() for name, spec in self.params.items()}
        return out

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<python>") -> "Space":
        """A validated Space from the YAML/JSON shape; every error names `source`."""
        if not isinstance(data, Mapping):
            raise UserError(f"{source}: a space must be a mapping with keys {', '.join(TOP_KEYS)}")
        for key in data:
            if key not in TOP_KEYS:
                raise UserError(
                    f"{source}: unknown key '{key}'{nearest(str(key), TOP_KEYS)}; valid: {', '.join(TOP_KEYS)}"
                )
        for key in ("name", "params"):
            if key not in data:
                raise UserError(f"{source}: missing key '{key}'")
        params_data = data["params"]
        if not isinstance(params_data, Mapping):
            raise UserError(
                f"{source}: 'params' must map recipe fields to specs, e.g. temperature: {{float: [0.05, 0.5]}}"
            )
        fixed = data.get("fixed") or {}
        if not isinstance(fixed, Mapping):
            raise UserError(f"{source}: 'fixed' must map recipe fields to values, e.g. {{epochs: 20}}")
        params = {str(name): _spec_from_dict(name, spec, source) for name, spec in params_data.items()}
        return cls(
            name=data["name"],
            base=data.get("base", BASELINE_PRESET),
            fixed=dict(fixed),
            params=params,
            description=data.get("description") or "",
            source=source,
        )


# --- helpers used by trials -----------------------------------------------------------------------
def _checked_overrides(overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    overrides = dict(overrides or {})
    check_field_names(overrides, "overrides")
    return overrides


def _active(spec: ParamSpec, sampled: Mapping[str, Any], overrides: Mapping[str, Any]) -> bool:
    """True when every `when` condition holds; a condition on an unsampled (inactive) parameter fails."""
    for other, allowed in spec.when.items():
        if other in overrides:
            value = overrides[other]
        elif other in sampled:
            value = sampled[other]
        else:
            return False
        if not any(same_value(value, a) for a in allowed):
            return False
    return True


def describe_range(spec: ParamSpec) -> str:
    if isinstance(spec, Choice):
        return "choices [" + ", ".join(_fmt(v) for v in spec.values) + "]"
    return f"[{_fmt(spec.low)}, {_fmt(spec.high)}]" + (" (log)" if spec.log else "")


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- parsing --------------------------------------------------------------------------------------
def _spec_from_dict(name: Any, data: Any, source: str) -> ParamSpec:
    where = f"{source}: parameter '{name}'"
    example = "e.g. {float: [0.05, 0.5], log: true}, {int: [1, 64]} or {choice: [none, topk]}"
    if not isinstance(data, Mapping):
        raise UserError(f"{where}: a spec must be a mapping, {example}")
    for key in data:
        if key not in SPEC_KEYS:
            raise UserError(
                f"{where}: unknown spec key '{key}'{nearest(str(key), SPEC_KEYS)}; "
                f"valid kinds: float, int, choice (plus log, when)"
            )
    kinds = [k for k in KINDS if k in data]
    if len(kinds) != 1:
        found = "none" if not kinds else ", ".join(kinds)
        raise UserError(f"{where}: give exactly one kind of float, int, choice (found {found}), {example}")
    kind = kinds[0]
    when = data.get("when")
    if kind == "choice":
        if "log" in data:
            raise UserError(f"{where}: 'log' applies to float and int ranges, not to choices; remove it")
        values = data["choice"]
        if not isinstance(values, (list, tuple)):
            raise UserError(f"{where}: choice must be a list of values, e.g. {{choice: [none, topk]}}")
        return Choice(tuple(values), when=when)
    bounds = data[kind]
    if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
        raise UserError(f"{where}: {kind} must be a [low, high] pair, e.g. {{{kind}: [1, 64]}}")
    log = data.get("log", False)
    if not isinstance(log, bool):
        raise UserError(f"{where}: log must be true or false, got {log!r}")
    return KINDS[kind](bounds[0], bounds[1], log=log, when=when)


# --- validation -----------------------------------------------------------------------------------
def validate_space(space_or_dict: Space | Mapping[str, Any], *, source: str) -> None:
    """Raise UserError for the first mistake in a space (a Space or its dict shape), naming `source`."""
    if isinstance(space_or_dict, Space):
        _validate(space_or_dict, source)
    else:
        Space.from_dict(space_or_dict, source=source)


def _validate(space: Space, source: str) -> None:
    if not isinstance(space.name, str) or not space.name.strip():
        raise UserError(f"{source}: 'name' must be a non-empty string, e.g. name: my-space")
    if not isinstance(space.description, str):
        raise UserError(f"{source}: 'description' must be a string")
    if space.base not in preset_names():
        raise UserError(
            f"{source}: unknown base preset '{space.base}'{nearest(str(space.base), preset_names())}; "
            f"valid: {', '.join(preset_names())}"
        )
    check_field_names(space.fixed, f"{source}: fixed")
    if not space.params:
        raise UserError(f"{source}: 'params' is empty; declare at least one searched recipe field")
    types = field_types()
    names = list(space.params)
    for index, (name, spec) in enumerate(space.params.items()):
        where = f"{source}: parameter '{name}'"
        if name not in FIELD_NAMES:
            raise UserError(f"{where}: unknown recipe field{nearest(str(name), FIELD_NAMES)}")
        if name in space.fixed:
            raise UserError(
                f"{where} is also in 'fixed' ({space.fixed[name]!r}); remove it from one of the two"
            )
        if not isinstance(spec, (Float, Int, Choice)):
            raise UserError(f"{where}: a spec must be Float, Int or Choice, got {type(spec).__name__}")
        _validate_spec(spec, where, types[name], name)
        _validate_when(spec, where, name, names[:index], space.params, names)
    _validate_fixed(space, source)
    _check_corners(space, source, {})


def _validate_spec(spec: ParamSpec, where: str, ftype: type, field_name: str) -> None:
    tname = {bool: "true/false", int: "an integer", float: "a number", str: "a string"}[ftype]
    if isinstance(spec, Choice):
        if not spec.values:
            raise UserError(f"{where}: choice is empty; list at least two values")
        for i, value in enumerate(spec.values):
            if any(same_value(value, other) for other in spec.values[:i]):
                raise UserError(f"{where}: choice lists {_fmt(value)} twice; remove the duplicate")
            _check_value(value, where, ftype, tname, field_name)
        return
    kind = spec.kind()
    for end, value in (("low", spec.low), ("high", spec.high)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise UserError(f"{where}: {kind} range {end} end must be a finite number, got {value!r}")
        if isinstance(spec, Int) and not isinstance(value, int):
            raise UserError(f"{where}: int range {end} end must be an integer, got {value!r}; use float: [...]")
    if ftype in (bool, str):
        raise UserError(
            f"{where}: recipe field '{field_name}' takes {tname}, not a {kind} range; use choice: [...]"
        )
    if ftype is int and isinstance(spec, Float):
        raise UserError(
            f"{where}: recipe field '{field_name}' is an integer, so a float range cannot fill it; "
            f"use int: [{math.ceil(spec.low)}, {math.floor(spec.high)}]"
        )
    if spec.low == spec.high:
        raise UserError(
            f"{where}: empty range [{spec.low}, {spec.high}]; widen it, or set one value under fixed: "
            f"{{{field_name}: {spec.low}}}"
        )
    if spec.low > spec.high:
        raise UserError(
            f"{where}: reversed range [{spec.low}, {spec.high}]; write it low first: [{spec.high}, {spec.low}]"
        )
    if spec.log:
        minimum = 1 if isinstance(spec, Int) else 0
        if spec.low < minimum or (minimum == 0 and spec.low <= 0):
            lowest = "1" if isinstance(spec, Int) else "a value above 0"
            raise UserError(
                f"{where}: a log range must start above 0, got low {spec.low}; raise low to {lowest} or drop log"
            )
    for value in (spec.low, spec.high):
        _check_bounds(value, where, field_name)


def _check_value(value: Any, where: str, ftype: type, tname: str, field_name: str) -> None:
    if not value_fits(ftype, value):
        raise UserError(
            f"{where}: choice {value!r} does not fit recipe field '{field_name}', which takes {tname}"
            + ("; write true/false without quotes" if ftype is bool else "")
        )
    if ftype is str and field_name in CHOICES and value not in CHOICES[field_name]:
        raise UserError(
            f"{where}: choice '{value}' is not a valid {field_name}{nearest(value, CHOICES[field_name])}; "
            f"valid: {', '.join(CHOICES[field_name])}"
        )
    if ftype in (int, float):
        _check_bounds(value, where, field_name)


def _check_bounds(value: Any, where: str, field_name: str) -> None:
    span = outside_bounds(field_name, value)
    if span:
        raise UserError(f"{where}: {value!r} is outside what recipe field '{field_name}' accepts, {span}")


def _validate_when(
    spec: ParamSpec, where: str, name: str, earlier: list[str], params: Mapping[str, ParamSpec], names: list[str]
) -> None:
    if not isinstance(spec.when, Mapping):
        raise UserError(f"{where}: when must map parameter names to values, e.g. when: {{smoothing: topk}}")
    for other, allowed in spec.when.items():
        if other not in names:
            raise UserError(
                f"{where}: when refers to '{other}', which is not a searched parameter"
                f"{nearest(str(other), names)}; name one declared above it in params"
            )
        if other == name:
            raise UserError(f"{where}: when refers to the parameter itself; name another parameter")
        if other not in earlier:
            raise UserError(
                f"{where}: when refers to '{other}', declared after '{name}'; "
                f"declare '{other}' first (parameters are sampled in order)"
            )
        if not allowed:
            raise UserError(f"{where}: when {{{other}: []}} lists no value; give at least one")
        target = params[other]
        for value in allowed:
            if not target.contains(value):
                raise UserError(
                    f"{where}: when {{{other}: {_fmt(value)}}} can never hold: '{other}' takes "
                    f"{describe_range(target)}"
                )


def _validate_fixed(space: Space, source: str) -> None:
    try:
        preset(space.base, **space.fixed)
    except UserError as exc:
        # A fixed value may be legal only together with the searched ones; the corner check decides.
        try:
            _check_corners(space, source, {}, low_only=True)
        except UserError:
            raise UserError(f"{source}: fixed: {exc}") from None


def _check_corners(space: Space, source: str, overrides: dict[str, Any], *, low_only: bool = False) -> None:
    """Build the recipe at the low corner, the high corner, and with each parameter at each of its extremes
    (both range ends, every choice) while the others sit at their low and at their high ends."""
    from optuna.trial import FixedTrial  # lazy: validation is the only user of optuna here

    searched = {n: s for n, s in space.params.items() if n not in overrides}
    if not searched:
        return
    low = {n: s.extremes()[0] for n, s in searched.items()}
    high = {n: s.extremes()[-1] for n, s in searched.items()}
    # Single-parameter moves come before the all-high corner, so a failure names one parameter when it can.
    corners: list[tuple[str | None, dict[str, Any]]] = [(None, low)]
    if not low_only:
        for base_name, base in (("low", low), ("high", high)):
            for name, spec in searched.items():
                for value in spec.extremes():
                    corners.append(
                        (f"{name}={_fmt(value)} (the others at their {base_name} ends)", {**base, name: value})
                    )
            if base_name == "low":
                corners.append((None, high))
    seen: set[tuple] = set()
    for label, values in corners:
        key = tuple((k, type(v).__name__, v) for k, v in values.items())
        if key in seen:
            continue
        seen.add(key)
        trial = FixedTrial(values)
        try:
            space.suggest(trial, overrides)
        except UserError as exc:
            if label is None:  # a whole corner: list the values when they fit on a line
                end = "low" if values is low else "high"
                label = f"every parameter at its {end} end"
                if len(trial.params) <= 6:
                    label += " (" + ", ".join(f"{k}={_fmt(v)}" for k, v in trial.params.items()) + ")"
            raise UserError(
                f"{source}: the space gives an invalid recipe at {label}: {exc}; "
                "narrow that range or change 'fixed'"
            ) from None


__all__ = ["BASELINE_PRESET", "Space", "describe_range", "validate_space"]
