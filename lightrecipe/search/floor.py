"""The random-init floor: the study's backbone untrained, scored by train()'s own final evaluation.

A recipe is only better than no training when it beats this number. On small data it is high (a random
MobileNet-V3 on the bundled digits: about 83% val kNN), so a report without it cannot tell a better recipe from
less damage. The backbone is the one train() would start from for that seed (`Trainer.build` seeds torch with
`recipe.seed` before it builds the model), and the scores come from `scoring.final_scores`, so the floor and a
trained trial are measured on one footing: same splits, same kNN and linear probe.

Measured in the driver: no training, a few seconds per seed on a CPU. A sweep measures one seed per arch
study when the study is created (or on `--resume` when it has none yet); `lightrecipe confirm` measures
`--seeds` of them. Stored as the study attribute `records.FLOOR` (see records.py).
"""

from __future__ import annotations

from typing import Any, Iterable

import optuna

from lightrecipe.search.store import records
from lightrecipe.search.store.study import jsonable


def random_init_scores(recipe: Any, data: Any = None, device: str = "cpu") -> dict[str, float]:
    """train()'s final scores of the backbone it would start from (`recipe.seed`), without training it."""
    import torch

    from lightrecipe.trainers.data.datasets import load_dataset
    from lightrecipe.trainers.method.model import MoCo
    from lightrecipe.trainers.run.scoring import final_scores

    data = load_dataset(recipe) if data is None else data
    torch.manual_seed(recipe.seed)  # as Trainer.build does before it builds the model
    backbone = MoCo.from_recipe(recipe).backbone.to(device)
    return {k: float(v) for k, v in final_scores(backbone, data, recipe, torch.device(device)).items()}


def measure(recipe: Any, seeds: Iterable[int]) -> list[dict[str, Any]]:
    """One row per seed: {"seed": s, knn_top1, linear_top1, test_knn_top1, test_linear_top1}."""
    from lightrecipe.trainers.data.datasets import load_dataset

    data = load_dataset(recipe)  # the splits do not depend on the seed: load once
    return [{"seed": int(s), **random_init_scores(recipe.replace(seed=int(s)), data)} for s in seeds]


def recorded(study: optuna.Study) -> list[dict[str, Any]]:
    """The floor rows a study holds ([] when none)."""
    rows = study.user_attrs.get(records.FLOOR) or []
    return [r for r in rows if isinstance(r, dict) and "seed" in r]


def ensure(study: optuna.Study, recipe: Any, seeds: Iterable[int] | None = None) -> list[dict[str, Any]]:
    """Measure the seeds (default: the recipe's own) the study has no floor for yet and store all rows;
    returns them in seed order."""
    seeds = [recipe.seed] if seeds is None else seeds
    rows = {int(r["seed"]): r for r in recorded(study)}
    missing = [int(s) for s in seeds if int(s) not in rows]
    if missing:
        for row in measure(recipe, missing):
            rows[row["seed"]] = row
        study.set_user_attr(records.FLOOR, jsonable([rows[s] for s in sorted(rows)]))
    return [rows[s] for s in sorted(rows)]
