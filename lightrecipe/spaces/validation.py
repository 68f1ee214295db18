"""Validation of a search space: every mistake a space can hold is a UserError before anything runs, naming the
source (file or built-in), the parameter and the fix. The recipe's own rules are checked by building the recipe
through `optuna.trial.FixedTrial` at the corners of the space.

`space` below is a `spaces.space.Space`, which validates itself through this module on construction (so this
module does not import it; `space.validate_space` is the public entry point).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

from lightrecipe.errors import UserError, nearest
from lightrecipe.spaces.params import Choice, Float, Int, ParamSpec, describe_range, same_value, yaml_value
from lightrecipe.trainers.fields.valid_values import CHOICES, outside_bounds, value_fits
from lightrecipe.trainers.presets import list_presets
from lightrecipe.trainers.recipe import FIELD_NAMES, check_field_names, field_types, preset


def validate(space: Any, source: str) -> None:
    """Raise UserError for the first mistake in `space` (Space runs this on construction)."""
    if not isinstance(space.name, str) or not space.name.strip():
        raise UserError(f"{source}: 'name' must be a non-empty string, e.g. name: my-space")
    if not isinstance(space.description, str):
        raise UserError(f"{source}: 'description' must be a string")
    if space.base not in list_presets():
        raise UserError(
            f"{source}: unknown base preset '{space.base}'{nearest(str(space.base), list_presets())}; "
            f"valid: {', '.join(list_presets())}"
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
    check_corners(space, source, {})


def _validate_spec(spec: ParamSpec, where: str, ftype: type, field_name: str) -> None:
    tname = {bool: "true/false", int: "an integer", float: "a number", str: "a string"}[ftype]
    if isinstance(spec, Choice):
        if not spec.values:
            raise UserError(f"{where}: choice is empty; list at least two values")
        for i, value in enumerate(spec.values):
            if any(same_value(value, other) for other in spec.values[:i]):
                raise UserError(f"{where}: choice lists {yaml_value(value)} twice; remove the duplicate")
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
                    f"{where}: when {{{other}: {yaml_value(value)}}} can never hold: '{other}' takes "
                    f"{describe_range(target)}"
                )


def _validate_fixed(space: Any, source: str) -> None:
    try:
        preset(space.base, **space.fixed)
    except UserError as exc:
        # A fixed value may be legal only together with the searched ones; the corner check decides.
        try:
            check_corners(space, source, {}, low_only=True)
        except UserError:
            raise UserError(f"{source}: fixed: {exc}") from None


def check_corners(space: Any, source: str, overrides: dict[str, Any], *, low_only: bool = False,
                  fit_to: Callable[[Any], int] | None = None) -> None:
    """Build the recipe at the low corner, the high corner, and with each parameter at each of its extremes
    (both range ends, every choice) while the others sit at their low and at their high ends. With `fit_to`
    (a count of training images, trainers/fit.TrainImages) the recipes are fitted as a sweep's trials are, and
    each must also fit its data (`Recipe.check_train_size`)."""
    from optuna.trial import FixedTrial  # lazy: validation is the only user of optuna here

    searched = {n: s for n, s in space.params.items() if n not in overrides}
    if not searched and fit_to is None:
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
                        (f"{name}={yaml_value(value)} (the others at their {base_name} ends)", {**base, name: value})
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
        problem = "an invalid recipe"
        try:
            recipe = space.suggest(trial, overrides, fit_to=fit_to)
            if fit_to is not None:
                problem = "a recipe that does not fit the data"
                recipe.check_train_size(fit_to(recipe))
        except UserError as exc:
            if label is None:  # a whole corner: list the values when they fit on a line
                end = "low" if values is low else "high"
                label = f"every parameter at its {end} end" if searched else "its only recipe"
                if 0 < len(trial.params) <= 6:
                    label += " (" + ", ".join(f"{k}={yaml_value(v)}" for k, v in trial.params.items()) + ")"
            raise UserError(
                f"{source}: the space gives {problem} at {label}: {exc}; narrow that range or change 'fixed'"
            ) from None


__all__ = ["check_corners", "validate"]
