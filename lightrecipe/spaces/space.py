"""A search space: a base preset, fixed fields and searched parameters, mapped to a `Recipe` per trial.

The space declares and never computes: `suggest(trial)` asks the trial for each active
parameter and returns the recipe. Everything a user can get wrong in a space is checked by `validate_space`
before anything runs, including the recipe's own combination rules, by building the recipe through
`optuna.trial.FixedTrial` at the corners of the space.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from lightrecipe.errors import UserError, nearest
from lightrecipe.spaces.params import KINDS, Choice, Int, ParamSpec, describe_range, same_value
from lightrecipe.spaces.validation import check_corners, validate
from lightrecipe.trainers.fit import Fit, fit_preset
from lightrecipe.trainers.recipe import SHARED_FIELDS, Recipe, check_field_names, preset

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
        validate(self, self.source)

    # --- trials ---------------------------------------------------------------------------------
    def suggest(self, trial: Any, overrides: Mapping[str, Any] | None = None, *,
                fit_to: Callable[[Recipe], int] | None = None) -> Recipe:
        """Define-by-run: sample each active parameter, in declaration order, and return the recipe.

        The recipe is preset(base) + fixed + overrides + sampled values. Overrides are the sweep's fixed
        settings (--set, --epochs, arch); a parameter that is also overridden is not sampled. With `fit_to` (a
        count of training images, fit.TrainImages) the queue and batch the base preset supplies are fitted to
        the data (trainers/fit.py); fixed, overridden and sampled values are kept.
        """
        return self.suggest_fit(trial, overrides, fit_to=fit_to).recipe

    def suggest_fit(self, trial: Any, overrides: Mapping[str, Any] | None = None, *,
                    fit_to: Callable[[Recipe], int] | None = None) -> Fit:
        """`suggest` with the record of what fitting changed."""
        overrides = _checked_overrides(overrides)
        sampled: dict[str, Any] = {}
        for name, spec in self.params.items():
            if name in overrides or not _active(spec, sampled, overrides):
                continue
            sampled[name] = spec.suggest(trial, name)
        return _build(self.base, {**self.fixed, **overrides, **sampled}, fit_to)

    def baseline(self, overrides: Mapping[str, Any] | None = None, *,
                 fit_to: Callable[[Recipe], int] | None = None) -> Recipe:
        """The ResNet-50 settings for comparison: preset('resnet50-mocov2') on the data, resolution, evaluation
        and hardware of this space's base (recipe.SHARED_FIELDS), + fixed + overrides; with `fit_to`, its
        queue and batch fitted to the data (trainers/fit.py) unless fixed or overridden."""
        return self.baseline_fit(overrides, fit_to=fit_to).recipe

    def baseline_fit(self, overrides: Mapping[str, Any] | None = None, *,
                     fit_to: Callable[[Recipe], int] | None = None) -> Fit:
        """`baseline` with the record of what fitting changed."""
        overrides = _checked_overrides(overrides)
        base = preset(self.base)
        shared = {name: getattr(base, name) for name in SHARED_FIELDS}
        return _build(BASELINE_PRESET, {**shared, **self.fixed, **overrides}, fit_to)

    def baseline_params(self, overrides: Mapping[str, Any] | None = None, *,
                        fit_to: Callable[[Recipe], int] | None = None) -> dict[str, Any]:
        """The baseline as Optuna params (for `study.enqueue_trial`): each searched parameter that is
        active under the baseline's values -> the baseline recipe's value of that field.

        Raises UserError when a baseline value lies outside the space (the trial could not be represented).
        """
        overrides = _checked_overrides(overrides)
        recipe = self.baseline(overrides, fit_to=fit_to)
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

    def check(self, overrides: Mapping[str, Any] | None = None, *,
              fit_to: Callable[[Recipe], int] | None = None) -> None:
        """Build the recipe at the corners of the space (with these overrides); raise UserError naming the
        parameter at the first corner that gives an invalid recipe. A sweep calls this with its overrides and
        `fit_to`, the count of training images: then each corner must also fit its data
        (`Recipe.check_train_size`), so a recipe that cannot run stops the sweep before any trial starts."""
        check_corners(self, self.source, _checked_overrides(overrides), fit_to=fit_to)

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
        _reject_unknown_keys(data, TOP_KEYS, f"{source}: unknown key", f"valid: {', '.join(TOP_KEYS)}")
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
def _build(base: str, values: Mapping[str, Any], fit_to: Callable[[Recipe], int] | None) -> Fit:
    """preset(base) + values; with `fit_to`, the queue and batch the preset supplies fitted to the data."""
    if fit_to is None:
        return Fit(preset(base, **values))
    return fit_preset(base, values, fit_to, source=f"preset '{base}'")


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


# --- parsing --------------------------------------------------------------------------------------
def _reject_unknown_keys(data: Mapping, allowed: Any, what: str, valid: str) -> None:
    """A UserError for the first key of `data` not in `allowed`: "<what> 'key' (did you mean ...); <valid>"."""
    for key in data:
        if key not in allowed:
            raise UserError(f"{what} '{key}'{nearest(str(key), allowed)}; {valid}")


def _spec_from_dict(name: Any, data: Any, source: str) -> ParamSpec:
    where = f"{source}: parameter '{name}'"
    example = "e.g. {float: [0.05, 0.5], log: true}, {int: [1, 64]} or {choice: [none, topk]}"
    if not isinstance(data, Mapping):
        raise UserError(f"{where}: a spec must be a mapping, {example}")
    _reject_unknown_keys(data, SPEC_KEYS, f"{where}: unknown spec key",
                         "valid kinds: float, int, choice (plus log, when)")
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


def validate_space(space_or_dict: Space | Mapping[str, Any], *, source: str) -> None:
    """Raise UserError for the first mistake in a space (a Space or its dict shape), naming `source`."""
    if isinstance(space_or_dict, Space):
        validate(space_or_dict, source)
    else:
        Space.from_dict(space_or_dict, source=source)


__all__ = ["BASELINE_PRESET", "Space", "validate_space"]
