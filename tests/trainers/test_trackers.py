"""`--log-to` values: where each tracker writes, and what every W&B run is started with."""

from __future__ import annotations

from lightrecipe.trainers.run import trackers


def test_each_kind_writes_where_it_is_told_or_next_to_the_run(tmp_path):
    chosen = trackers.parse(["mlflow", "tensorboard:tb", "wandb", "wandb:team-project"])
    assert [t.kind for t in chosen] == ["mlflow", "tensorboard", "wandb", "wandb"]
    assert chosen[0].where(tmp_path) == (tmp_path / "mlruns").resolve().as_uri()
    assert [t.where(tmp_path) for t in chosen[2:]] == [trackers.WANDB_PROJECT, "team-project"]


def test_wandb_tags_read_key_value_and_fit_wandb_s_limit():
    tags = trackers.wandb_tags({"study": "s" * 100, "arch": "resnet18"})
    assert tags == ["arch:resnet18", ("study:" + "s" * 100)[:trackers.WANDB_TAG_CHARS]]


def test_wandb_runs_go_next_to_the_run_or_to_wandb_dir_in_the_driver_s_mode_collecting_nothing_else(tmp_path,
                                                                                                   monkeypatch):
    monkeypatch.delenv("WANDB_DIR", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    init = trackers.wandb_init("p", tmp_path / "out", {"arch": "resnet18"})
    assert init["dir"] == str((tmp_path / "out").resolve()) and (tmp_path / "out").is_dir()
    assert init["mode"] == "offline" and init["project"] == "p" and init["tags"] == ["arch:resnet18"]
    assert init["settings"]["x_disable_meta"] and init["settings"]["console"] == "off"  # no argv, no output
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.delenv("WANDB_MODE")
    init = trackers.wandb_init("p", tmp_path / "out", {})
    assert init["dir"] == str((tmp_path / "elsewhere").resolve()) and init["mode"] is None  # W&B's own default
