"""`lightrecipe export RUN_DIR --out DIR`: a trained backbone as plain timm loads it.

Writes, from the run folder's last checkpoint:
    model.safetensors   the query backbone's state dict with timm's own key names (the momentum encoder,
                        projector and queue stay behind): what `timm.create_model(arch, num_classes=0)` holds
    config.json         architecture, num_classes 0, num_features and `pretrained_cfg` (input size, mean/std,
                        crop_pct, interpolation as the trainer evaluated), the layout of timm's Hub configs
    recipe.yaml         the resolved recipe that trained it (`lightrecipe train --recipe` takes it as is)
    metrics.json        the run's final metrics (or its last epoch's, for a run that did not finish)
    history.csv         the run's per-epoch metrics, as the run folder holds them (when it has any)
    README.md           a short card: what it is, how it scored against the random-init floor, how to load it

Load it without lightrecipe, config and all (timm >= 1.0.31 reads DIR/config.json and DIR/model.safetensors):
    model = timm.create_model("local-dir:DIR", pretrained=True)
    transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))
(`pretrained_cfg_overlay=dict(file=...)` loads the weights but keeps timm's defaults for the arch: 224 px,
bicubic, crop 0.875, whatever the recipe trained at.)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch

from lightrecipe.errors import UserError
from lightrecipe.trainers.data.image_decode import EVAL_CROP_FRACTION
from lightrecipe.trainers.data.pixels import IMAGENET_MEAN, IMAGENET_STD
from lightrecipe.trainers.recipe import Recipe
from lightrecipe.trainers.run.run_files import CHECKPOINT_FILE, HISTORY_FILE, METRICS_FILE, RunFiles

# crop_pct per dataset, as the trainer evaluates: digits and CIFAR resize the whole image to S (datasets.py,
# pixels.resize_uint8), so nothing is cropped; an image folder resizes to S / 0.875 and takes the centre S.
CROP_PCT = {"digits": 1.0, "cifar10": 1.0, "cifar100": 1.0, "imagefolder": EVAL_CROP_FRACTION}
INTERPOLATION = "bilinear"  # pixels.resize_uint8 and image_decode's PIL resize are both bilinear
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def trained_backbone(run_dir: str | Path) -> tuple[torch.nn.Module, Recipe, dict[str, Any]]:
    """(the run's query backbone with its last checkpoint's weights, in eval mode, its recipe, the checkpoint)."""
    from lightrecipe.trainers.method.model import MoCo

    files = RunFiles(run_dir)
    if not (files.dir / CHECKPOINT_FILE).is_file():
        raise UserError(f"RUN_DIR '{run_dir}' holds no {CHECKPOINT_FILE}; give a run folder of `lightrecipe train` "
                        "or a sweep's runs/.../trial-NNNN folder that finished at least one epoch")
    checkpoint = files.load_checkpoint()
    recipe = Recipe.from_dict(checkpoint["recipe"], source=f"{files.dir / CHECKPOINT_FILE}")
    model = MoCo.from_recipe(recipe)
    model.load_state_dict(checkpoint["trainer"]["model"])
    return model.backbone.eval(), recipe, checkpoint


def timm_config(recipe: Recipe, backbone: torch.nn.Module) -> dict[str, Any]:
    """config.json as timm reads it from the Hub: the architecture and its pretrained_cfg."""
    from lightrecipe.trainers.method.model import backbone_dim

    size = recipe.image_size
    return {
        "architecture": recipe.arch,
        "num_classes": 0,
        "num_features": backbone_dim(backbone),
        "pretrained_cfg": {
            "input_size": [3, size, size],
            "fixed_input_size": False,
            "interpolation": INTERPOLATION,
            "crop_pct": CROP_PCT[recipe.dataset],
            "crop_mode": "center",
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
            "num_classes": 0,
            "tag": "lightrecipe",
        },
    }


def export(run_dir: str | Path, out: str | Path) -> dict[str, Path]:
    """Write the files of the module docstring to `out`; returns name -> path."""
    backbone, recipe, checkpoint = trained_backbone(run_dir)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out '{out}' is a file; give a folder for the exported model")
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in (WEIGHTS_FILE, CONFIG_FILE, "recipe.yaml", METRICS_FILE, "README.md")}
    write_timm_files(backbone, recipe, out, epoch=checkpoint["epoch"])
    paths["recipe.yaml"].write_text(recipe.to_yaml())
    metrics = _metrics(Path(run_dir), checkpoint)
    paths[METRICS_FILE].write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    if (Path(run_dir) / HISTORY_FILE).is_file():  # in the returned paths too: the command prints every file
        paths[HISTORY_FILE] = Path(shutil.copyfile(Path(run_dir) / HISTORY_FILE, out / HISTORY_FILE))
    paths["README.md"].write_text(_card(recipe, metrics, Path(run_dir).resolve(), checkpoint["epoch"]))
    return paths


def write_timm_files(backbone: torch.nn.Module, recipe: Recipe, out: Path, epoch: int) -> None:
    """model.safetensors and config.json in `out`: what `timm.create_model("local-dir:OUT", pretrained=True)` reads."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().clone() for k, v in backbone.state_dict().items()}
    save_file(state, str(out / WEIGHTS_FILE), metadata={"format": "pt", "arch": recipe.arch, "epoch": str(epoch)})
    (out / CONFIG_FILE).write_text(json.dumps(timm_config(recipe, backbone), indent=2) + "\n")


def _metrics(run_dir: Path, checkpoint: dict[str, Any]) -> dict[str, Any]:
    path = run_dir / METRICS_FILE
    if path.is_file():
        return json.loads(path.read_text())
    history = checkpoint.get("history") or [{}]
    return {**history[-1], "state": "unfinished"}


def _card(recipe: Recipe, metrics: dict[str, Any], run_dir: Path, epoch: int) -> str:
    def pct(key: str) -> str:
        value = metrics.get(key)
        return f"{100 * value:.1f}%" if isinstance(value, (int, float)) else "n/a"

    return (
        f"# {recipe.arch}, MoCo-style self-supervised ({recipe.dataset}, {recipe.image_size} px)\n\n"
        f"Exported by `lightrecipe export` from `{run_dir}` (epoch {epoch} of {recipe.epochs}, state "
        f"{metrics.get('state', 'n/a')}).\n\n"
        f"| split | kNN top-1 | linear-probe top-1 |\n|---|---:|---:|\n"
        f"| val | {pct('knn_top1')} | {pct('linear_top1')} |\n| test | {pct('test_knn_top1')} | {pct('test_linear_top1')} |\n\n"
        "Compare with the random-init floor of the same backbone (the sweep report shows it): on small data an "
        "untrained network scores high, and only a recipe above it has learned something.\n\n"
        "```python\nimport timm\n"
        "model = timm.create_model(\"local-dir:THIS_FOLDER\", pretrained=True)  # weights and config.json\n"
        "transform = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))\n```\n\n"
        "The recipe that trained it: `recipe.yaml` (`lightrecipe train --recipe recipe.yaml`).\n"
    )
