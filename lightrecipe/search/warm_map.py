"""A recipe found in one space, mapped into another: what `--warm-start` enqueues (issue 23).

The target space itself decides which knobs exist, in what order and which are active (`when`): the mapping
runs `space.suggest()` on `MappingTrial`, a stand-in for an Optuna trial that answers each suggest call
from the source trial instead of sampling. Its rules, one per kind of mismatch, each change said in one
sentence:
- a knob the target fixes (the space's `fixed`, or the sweep's --set, --epochs and arch) takes the fixed value;
- a value outside a target range is clipped to it (an integer knob is rounded first);
- a choice the target does not list is dropped to the space's default: the value of the space's base
  preset (with its fixed fields) when listed, else the first choice;
- a knob the source fixed and the target searches takes the value the source trained with (its recorded
  recipe), by the same rules; with no recipe recorded, the space's default (a range's default is the base
  preset's value clipped into it);
- a source knob the target has nowhere is dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from lightrecipe.spaces.params import same_value


@dataclass(frozen=True)
class Mapped:
    """A source recipe in the target space: the Optuna params to enqueue and what changed on the way."""

    params: dict[str, Any]
    changes: list[str]


def map_recipe(params: Mapping[str, Any], recipe: Mapping[str, Any] | None, space: Any,
               overrides: Mapping[str, Any]) -> Mapped:
    """The source trial's `params` (and its recorded `recipe`, for the knobs its space fixed) as params of
    `space` under the sweep's `overrides`. Raises UserError when the mapped values make no valid recipe."""
    from lightrecipe.trainers.recipe import preset

    fixed = {**space.fixed, **overrides}
    default = preset(space.base, **fixed)
    trial = MappingTrial(params, recipe or {}, default)
    changes = []
    for name, value in params.items():
        if name in fixed and not same_value(value, fixed[name]):
            changes.append(f"{name} {fmt(value)} -> {fmt(fixed[name])} (fixed in the target)")
        elif name not in fixed and name not in space.params:
            changes.append(f"{name} {fmt(value)} dropped (not a knob of space '{space.name}')")
    space.suggest(trial, overrides)  # asks each active knob in the space's own order; validates the recipe
    return Mapped(dict(trial.asked), changes + trial.changes)


class MappingTrial:
    """Answers `Space.suggest`'s calls like an Optuna trial would, from the source trial (module docstring)."""

    def __init__(self, params: Mapping[str, Any], recipe: Mapping[str, Any], default: Any):
        self.params, self.recipe, self.default = dict(params), dict(recipe), default
        self.asked: dict[str, Any] = {}
        self.changes: list[str] = []

    def _source(self, name: str) -> tuple[bool, Any]:
        if name in self.params:
            return True, self.params[name]
        if name in self.recipe:
            return True, self.recipe[name]
        return False, None

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        return self._range(name, float(low), float(high), integer=False)

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int:
        return self._range(name, int(low), int(high), integer=True)

    def _range(self, name: str, low: float, high: float, *, integer: bool) -> Any:
        found, value = self._source(name)
        where = f"[{fmt(low)}, {fmt(high)}]"
        if not found or not _number(value):
            fallback = getattr(self.default, name)
            value = min(max(round(fallback) if integer else float(fallback), low), high)
            why = "not in the source" if not found else f"{fmt(self._source(name)[1])} is not a number"
            self.changes.append(f"{name}: {why}; the space's default {fmt(value)}")
        else:
            cast = round(value) if integer else float(value)
            clipped = min(max(cast, low), high)
            if clipped != value:
                self.changes.append(f"{name} {fmt(value)} -> {fmt(clipped)} (clipped to {where})")
            value = clipped
        value = int(value) if integer else float(value)
        self.asked[name] = value
        return value

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        found, value = self._source(name)
        listed = [c for c in choices if same_value(c, value)] if found else []
        if listed:
            value = listed[0]
        else:
            base = getattr(self.default, name)
            fallback = next((c for c in choices if same_value(c, base)), choices[0])
            listed_as = "[" + ", ".join(fmt(c) for c in choices) + "]"
            head = f"{name} {fmt(value)} not in {listed_as}" if found else f"{name}: not in the source"
            self.changes.append(f"{head}; dropped to the space's default {fmt(fallback)}")
            value = fallback
        self.asked[name] = value
        return value


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fmt(value: Any) -> str:
    """A knob's value as a change sentence shows it: 0.0003 -> 0.0003, True -> true."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
