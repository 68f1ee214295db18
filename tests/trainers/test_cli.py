"""`lightrecipe train / presets / bench train` through the real CLI: output and exit codes."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lightrecipe.cli import main

TINY = ["--preset", "digits-small", "--set", "epochs=1", "--set", "data_fraction=0.3", "--set", "probe_epochs=10",
        "--set", "queue_size=128", "--set", "probe_weight_decay=0.01"]  # one probe fit, not the L2 grid


def run_cli(*args):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "lightrecipe.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.mark.slow
def test_train_prints_metrics(tmp_path):
    result = run_cli("train", *TINY, "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert metrics["state"] == "complete" and 0 < metrics["knn_top1"] <= 1
    assert (tmp_path / "run" / "metrics.json").is_file()
    # What the README says the run prints and writes: the JSON line on stdout, the run folder last, on stderr, and
    # history.csv's columns, every one.
    assert result.stderr.strip().splitlines()[-1] == f"run folder: {tmp_path / 'run'}"
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    listed = re.findall(r"`(\w+)`", readme.split("`history.csv` (per epoch: ", 1)[1].split(")", 1)[0])
    assert listed == (tmp_path / "run" / "history.csv").read_text().splitlines()[0].split(",")
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["cpu_threads"] == len(os.sched_getaffinity(0))  # `train` uses every core and says so


@pytest.mark.slow
def test_recipe_file_accepted(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("preset: digits-small\nepochs: 1\ndata_fraction: 0.3\nprobe_weight_decay: 0.01\nqueue_size: 128\n")
    assert main(["train", "--recipe", str(recipe), "--out", str(tmp_path / "run")]) == 0
    assert json.loads(capsys.readouterr().out.strip())["state"] == "complete"


@pytest.mark.slow
def test_train_with_every_default_fits_the_queue_and_batch_to_the_digits(tmp_path, capsys):
    """MoCo v2's queue of 65536 and batch of 256 (the field defaults) fitted to the digits (trainers/fit.py),
    said on stderr; one epoch of the smallest MobileNet on a tenth of the digits to stay fast."""
    fast = ["--set", "arch=mobilenetv3_small_050", "--set", "epochs=1", "--set", "data_fraction=0.1",
            "--set", "probe_weight_decay=0.01"]
    assert main(["train", *fast, "--out", str(tmp_path / "run")]) == 0
    out, err = capsys.readouterr()
    assert "the MoCo v2 settings (the field defaults): queue 16, batch 16: fitted to 109 training images" in err
    assert json.loads(out.strip())["state"] == "complete"
    recipe = json.loads((tmp_path / "run" / "recipe.json").read_text())
    assert (recipe["queue_size"], recipe["batch_size"], recipe["temperature"]) == (16, 16, 0.2)


@pytest.mark.slow
def test_mocov3_runs_on_the_digits(tmp_path, capsys):
    """MoCo v3's batch of 4096 fitted to the digits; a small net at 32 px in fp32 keeps it to seconds."""
    fast = ["--set", "arch=mobilenetv3_small_050", "--set", "image_size=32", "--set", "precision=fp32",
            "--set", "epochs=1", "--set", "data_fraction=0.1", "--set", "probe_weight_decay=0.01"]
    assert main(["train", "--preset", "mocov3", *fast, "--out", str(tmp_path / "run")]) == 0
    out, err = capsys.readouterr()
    assert "preset 'mocov3': batch 4: fitted to 109 training images" in err
    assert json.loads(out.strip())["state"] == "complete"


def test_presets_listed(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "resnet50-mocov2" in out and "digits-small" in out and "mocov3" in out
    assert main(["presets", "--show", "mocov3"]) == 0
    assert "optimizer: lars" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,message",
    [
        (["train", "--preset", "resnet51", "--out", "x"], "unknown preset 'resnet51'"),
        (["train", "--set", "temprature=0.1", "--out", "x"], "unknown recipe field 'temprature' (did you mean 'temperature'?)"),
        (["train", "--set", "temperature=-1", "--out", "x"], "'temperature' is -1.0; valid range"),
        (["train", "--set", "arch=mobilenet_v9", "--out", "x"], "'arch' is 'mobilenet_v9', not a timm model"),
        (["train", "--set", "smoothing=topk", "--set", "smoothing_alpha=0.1", "--out", "x"], "'smoothing_k' is 0"),
        (["train", "--set", "queue_size=1000", "--out", "x"], "'queue_size' (1000) must be a multiple of batch_size"),
        (["train", "--recipe", "/nonexistent/r.yaml", "--out", "x"], "recipe file '/nonexistent/r.yaml' does not exist"),
        (["train", "--set", "dataset=imagefolder", "--set", "data_root=/nonexistent/imagenet", "--out", "{tmp}/r"],
         "/nonexistent/imagenet"),
        (["train", "--set", "dataset=cifar10", "--set", "data_root=/nonexistent/cifar", "--out", "{tmp}/r"],
         "/nonexistent/cifar"),
        (["train", "--bogus-flag", "--out", "x"], "unrecognized arguments: --bogus-flag"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(args, message, tmp_path, capsys):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    with pytest.raises(SystemExit) if "--bogus-flag" in args else _no_raise():
        code = main(args)
        assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_a_finished_run_folder_given_another_recipe_prints_only_the_one_line_error(tmp_path, capsys):
    """Not "already finished: printing them again" first: the folder's metrics are another recipe's."""
    from lightrecipe.trainers.recipe import preset
    from lightrecipe.trainers.run.run_files import RunFiles

    recipe = preset("digits-small").with_overrides([a for a in TINY if "=" in a])
    finished = RunFiles(tmp_path / "run")  # the files train() leaves in a finished run folder
    finished.prepare(recipe)
    finished.write_metrics({"knn_top1": 0.5, "state": "complete"})
    assert main(["train", *TINY, "--set", "epochs=2", "--out", str(tmp_path / "run")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"lightrecipe: error: run folder '{tmp_path / 'run'}' holds a run of a different recipe (differs in: epochs); "
        "give a new folder to start a new run"
    ]


@pytest.mark.slow
def test_out_that_is_a_file_exits_2_with_one_line(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    result = run_cli("train", *TINY, "--out", str(target))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"lightrecipe: error: run folder '{target}' is a file, not a folder; give a new folder to start a run "
        "or an existing run folder to resume it"
    ]
    assert target.read_text() == "keep me"


@pytest.mark.slow
def test_divergence_exits_1_with_the_reason(tmp_path):
    result = run_cli("train", *TINY, "--set", "base_lr=1e30", "--out", str(tmp_path / "run"))
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["state"] == "diverged"
    assert "lightrecipe: run diverged: loss became nan in epoch 1; try: lower base_lr" in result.stderr


@pytest.mark.slow
def test_interrupted_run_resumes_through_the_cli(tmp_path):
    """A run stopped after epoch 1 (its checkpoint written) is finished by the same command: the CLI reports
    only epoch 2 and ends with the metrics of an uninterrupted run."""
    from lightrecipe.trainers.commands import use_all_cores
    from lightrecipe.trainers.recipe import preset
    from lightrecipe.trainers.run.train import train

    args = [*TINY, "--set", "epochs=2"]
    recipe = preset("digits-small").with_overrides([a for a in args if "=" in a])

    class Stop(Exception):
        pass

    def stop_after_epoch_1(m):
        raise Stop

    threads = torch.get_num_threads()
    use_all_cores()  # the thread count the CLI uses, so epoch 1 here computes what it would compute there
    try:
        with pytest.raises(Stop):
            train(recipe, workdir=tmp_path / "resumed", device="cpu", report=stop_after_epoch_1)
    finally:
        torch.set_num_threads(threads)
    resumed = run_cli("train", *args, "--out", str(tmp_path / "resumed"))
    fresh = run_cli("train", *args, "--out", str(tmp_path / "fresh"))
    assert resumed.returncode == fresh.returncode == 0, resumed.stderr + fresh.stderr
    assert json.loads(resumed.stdout.strip().splitlines()[-1]) == json.loads(fresh.stdout.strip().splitlines()[-1])
    history = (tmp_path / "resumed" / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["1", "2"]
    assert f"resuming from the checkpoint in {tmp_path / 'resumed'}" in resumed.stderr
    assert "resuming" not in fresh.stderr and "already finished" not in fresh.stderr
    again = run_cli("train", *args, "--out", str(tmp_path / "fresh"))
    assert "already finished" in again.stderr and again.stdout == fresh.stdout


@pytest.mark.slow
def test_user_mistake_through_real_process_has_no_traceback():
    result = run_cli("train", "--set", "optimizer=adam", "--out", "x")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "lightrecipe: error: recipe field 'optimizer' is 'adam'; valid: sgd, lars, adamw"
    ]


@pytest.mark.slow
def test_bench_train_prints_json(capsys):
    assert main(["bench", "train", "--arch", "mobilenetv3_small_050", "--batch-size", "32", "--image-size", "32",
                 "--steps", "2", "--warmup-steps", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"images_per_s", "step_ms", "data_ms", "peak_mem_mb"} <= set(result)
    assert result["images_per_s"] > 0 and 0 < result["data_ms"] < result["step_ms"]


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
