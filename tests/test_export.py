"""`lightrecipe export`: a trained run's backbone, loaded by plain timm, gives the trainer's features."""

from __future__ import annotations

import json

import pytest
import torch

from lightrecipe import cli
from lightrecipe.trainers.recipe import preset

ARCH = "mobilenetv3_small_050"
TINY = dict(arch=ARCH, dataset="digits", image_size=32, batch_size=64, queue_size=128, data_fraction=0.25,
            epochs=2)


@pytest.mark.slow
def test_export_loads_in_plain_timm_strictly_and_gives_the_trainers_features(tmp_path, capsys):
    import timm
    from safetensors.torch import load_file

    from lightrecipe.trainers.data.datasets import load_dataset
    from lightrecipe.trainers.data.pixels import normalize
    from lightrecipe.trainers.export import trained_backbone
    from lightrecipe.trainers.run.train import train

    torch.set_num_threads(2)
    recipe = preset("digits-small", **TINY)
    run = tmp_path / "run"
    epochs = []

    def stop_after_the_first_epoch(row):  # a run stopped mid-way exports too; it skips the final evaluation
        epochs.append(row)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(recipe, workdir=run, device="cpu", report=stop_after_the_first_epoch)
    assert cli.main(["export", str(run), "--out", str(tmp_path / "export")]) == 0
    exported = tmp_path / "export"
    listed = capsys.readouterr().out.splitlines()  # every file it wrote, history.csv included
    assert sorted(listed) == sorted(str(p) for p in exported.iterdir()) and str(exported / "history.csv") in listed

    weights = exported / "model.safetensors"
    plain = timm.create_model(ARCH, pretrained=False, num_classes=0)
    assert set(load_file(str(weights))) == set(plain.state_dict())  # timm's own key names, nothing else
    # strict load (timm's default): a missing or unexpected key raises here
    model = timm.create_model(ARCH, pretrained=True, num_classes=0, pretrained_cfg_overlay=dict(file=str(weights)))
    model.eval()

    images, _ = next(iter(load_dataset(recipe).val.batches(32, shuffle=False, drop_last=False, device="cpu")))
    x = normalize(images)
    trained, _, _ = trained_backbone(run)
    with torch.no_grad():
        assert torch.equal(model(x), trained(x))
        assert not torch.allclose(model(x), plain.eval()(x))  # the trained weights, not a fresh init

    config = json.loads((exported / "config.json").read_text())
    assert config["architecture"] == ARCH and config["num_classes"] == 0
    assert config["pretrained_cfg"]["input_size"] == [3, 32, 32]
    assert config["pretrained_cfg"]["mean"] == [0.485, 0.456, 0.406]
    saved = json.loads((exported / "metrics.json").read_text())
    assert saved["state"] == "unfinished" and saved["knn_top1"] == pytest.approx(epochs[0]["knn_top1"])
    assert "temperature:" in (exported / "recipe.yaml").read_text()


def test_export_of_a_folder_without_a_checkpoint_is_one_line(tmp_path, capsys):
    assert cli.main(["export", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "holds no checkpoint.pt" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("dataset, crop", [("digits", 1.0), ("cifar10", 1.0), ("imagefolder", 0.875)])
def test_plain_timm_loads_the_folder_with_the_recipes_input_size_interpolation_mean_std_and_crop(
        tmp_path, dataset, crop):
    import timm
    from timm.data import resolve_data_config

    from lightrecipe.trainers.export import write_timm_files
    from lightrecipe.trainers.method.model import build_backbone

    recipe = preset("digits-small", **dict(TINY, dataset=dataset, data_root="unused"))
    torch.manual_seed(0)
    backbone = build_backbone(ARCH).eval()
    write_timm_files(backbone, recipe, tmp_path, epoch=1)
    # strict (timm's default): a missing or unexpected key raises; num_classes 0 comes from config.json
    model = timm.create_model(f"local-dir:{tmp_path}", pretrained=True).eval()
    data = resolve_data_config({}, model=model)
    assert tuple(data["input_size"]) == (3, 32, 32) and data["interpolation"] == "bilinear"  # timm's: 224, bicubic
    assert tuple(data["mean"]) == (0.485, 0.456, 0.406) and tuple(data["std"]) == (0.229, 0.224, 0.225)
    assert data["crop_pct"] == crop and data["crop_mode"] == "center"  # digits/CIFAR: the whole image resized
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), backbone(x))
