"""MoCo's published settings on a smaller training set: the queue and the batch fitted to the training images.

MoCo v2 (queue 65536, batch 256) and MoCo v3 (batch 4096) were set for ImageNet's 1.28M training images. On a
dataset smaller than the queue they cannot run (`Recipe.check_train_size`). MoCo's own CIFAR-10 demo keeps the
method and fits the queue to the data (K = 4096 for 50 000 images); lightrecipe does the same with one rule, for
N training images (after `data_fraction`):

    queue = min(the preset's queue, the largest power of two <= N / 8)      (0, in-batch negatives, stays 0)
    batch = min(the preset's batch, the largest power of two <= N / 16)     (at least 2 images per BatchNorm group)

and every other value stays the preset's. ImageNet keeps 65536 and 256 (4096 for MoCo v3), CIFAR-10's 45 000
training images give queue 4096 and batch 256, the bundled digits' 1078 give queue 128 and batch 64.

What is fitted: the queue and batch that MoCo's published settings supply (presets `FITTED_PRESETS` and the
Recipe field defaults, which are MoCo v2's), wherever they are turned into a run: `lightrecipe train` without
`--recipe`, a sweep's ResNet-50 baseline and the trials of a space built on them, confirm's baseline. What a user
wrote is never changed: a field given with `--set`, a space's `fixed` or sampled value, a recipe file. Such a
value that does not fit the data gets `check_train_size`'s error, whose suggestion comes from this rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from lightrecipe.trainers.fields.fit_rule import fitted_batch, fitted_queue
from lightrecipe.trainers.presets import FITTED_PRESETS
from lightrecipe.trainers.recipe import Recipe, preset

FITTED_FIELDS = {"queue_size": "queue", "batch_size": "batch"}  # field -> its name in a note
DATA_FIELDS = ("dataset", "data_root", "data_fraction")  # what the number of training images depends on


@dataclass(frozen=True)
class Fit:
    """A recipe and what fitting changed: field -> (the preset's value, the fitted value)."""

    recipe: Recipe
    train_images: int | None = None
    changed: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def record(self) -> dict[str, Any] | None:
        """What the trial database keeps (records.FITTED); None when nothing changed."""
        if not self.changed or self.train_images is None:
            return None
        return {"train_images": int(self.train_images),
                "changed": {name: [int(before), int(after)] for name, (before, after) in self.changed.items()}}

    def note(self) -> str:
        return describe(self.record())


def describe(record: Any) -> str:
    """'queue 128, batch 64: fitted to 1078 training images' for a `Fit.record()`; '' for None or a record
    this version cannot read."""
    if not isinstance(record, Mapping) or not isinstance(record.get("changed"), Mapping):
        return ""
    parts = []
    for name, label in FITTED_FIELDS.items():
        pair = record["changed"].get(name)
        if isinstance(pair, (list, tuple)) and len(pair) == 2:
            parts.append(f"{label} {pair[1]}")
    n = record.get("train_images")
    if not parts or not isinstance(n, int):
        return ""
    return f"{', '.join(parts)}: fitted to {n} training images"


def fit_to_data(recipe: Recipe, train_images: int, *, keep: Iterable[str] = (),
                start: Recipe | None = None) -> Fit:
    """`recipe` with its queue and batch fitted to `train_images` by the rule, except the fields in `keep` (what
    the user wrote). The rule starts from `start`'s queue and batch (default: the recipe's own)."""
    keep = set(keep)
    start = recipe if start is None else start
    batch = recipe.batch_size if "batch_size" in keep else fitted_batch(start.batch_size, train_images,
                                                                          recipe.bn_splits)
    queue = recipe.queue_size if "queue_size" in keep else fitted_queue(start.queue_size, train_images, batch)
    values = {"batch_size": batch, "queue_size": queue}
    changed = {name: (getattr(start, name), value) for name, value in values.items()
               if name not in keep and value != getattr(start, name)}
    return Fit(recipe.replace(source="fit", **values), int(train_images), changed)


def fit_preset(name: str | None, explicit: Mapping[str, Any], count: Callable[[Recipe], int], *,
               source: str = "override") -> Fit:
    """Preset `name` (None: the Recipe field defaults, MoCo v2's) with the `explicit` fields, its queue and batch
    fitted to `count(recipe)` training images when it is one of MoCo's published settings (FITTED_PRESETS).

    Every field is checked before the data is counted (a mistake answers before torch loads): the recipe is
    first built with in-batch negatives in place of the preset's queue, which only the fit may make valid (a
    batch of 48 does not divide 65536)."""
    explicit = dict(explicit)
    if name is not None and name not in FITTED_PRESETS:
        return Fit(preset(name, **explicit))
    base = Recipe() if name is None else preset(name)
    placeholder = {} if "queue_size" in explicit else {"queue_size": 0}
    checked = base.replace(source=source, **{**explicit, **placeholder})
    return fit_to_data(checked, count(checked), keep=explicit, start=base)


class TrainImages:
    """`count_train_images` of each recipe, counted once per (dataset, data_root, data_fraction): a sweep asks
    for every trial and every corner of its space."""

    def __init__(self) -> None:
        self._counts: dict[tuple, int] = {}

    def __call__(self, recipe: Recipe) -> int:
        key = tuple(getattr(recipe, name) for name in DATA_FIELDS)
        if key not in self._counts:
            from lightrecipe.trainers.data.datasets import count_train_images  # loads torch: only when data is counted

            self._counts[key] = count_train_images(recipe)
        return self._counts[key]


__all__ = ["FITTED_FIELDS", "Fit", "TrainImages", "describe", "fit_preset", "fit_to_data", "fitted_batch",
           "fitted_queue"]
