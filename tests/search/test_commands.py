"""`lightrecipe sweep` input mistakes: one line on stderr, exit code 2, nothing started."""

import shlex
from pathlib import Path

import pytest

from lightrecipe import cli
from lightrecipe.search.commands import resume_command
from lightrecipe.search.store import records
from lightrecipe.search.store.storage import open_storage
from lightrecipe.search.store.study import create_study

from .helpers import free_port

TINY_SPACE = str(Path(__file__).with_name("tiny.yaml"))

ARCH = "mobilenetv3_small_050"
TINY = ["--set", "dataset=digits", "--set", "image_size=32", "--set", "batch_size=64", "--set", "queue_size=256"]


def sweep(tmp_path, *extra):
    return ["sweep", "--space", TINY_SPACE, "--arch", ARCH, "--trials", "2", "--epochs", "2",
            "--out", str(tmp_path / "sw"), *TINY, *extra]


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--trials", "0"], "--trials must be at least 1"),
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--grace-epochs", "3"], "--grace-epochs (3) exceeds --epochs (2)"),
        (["--concurrency", "0"], "--concurrency must be at least 1"),
        (["--cpus-per-trial", "0"], "--cpus-per-trial must be above 0"),
        (["--gpus-per-trial", "-1"], "--gpus-per-trial must be 0 or more"),
        (["--time-budget", "0"], "--time-budget must be a positive number"),
        (["--set", "arch=resnet18"], "use --arch"),
        (["--set", "temprature=0.1"], "did you mean 'temperature'"),
        (["--arch", ARCH], "--arch lists a name twice"),
        (["--arch", "mobilenetv3_smal_050"], "not a timm model"),
        (["--storage", "trials.db"], "not an SQLAlchemy URL"),
        (["--resume"], "--resume: the trial database holds no study"),
        (["--max-failures", "-1"], "--max-failures must be 0 or more"),
        (["--gpus-per-trial", "2"], "--gpus-per-trial 2: a trial trains on one GPU; valid: 0 to 1"),
        (["--workers-per-trial", "2", "--gpus-per-trial", "0.5"],
         "--gpus-per-trial 0.5 with --workers-per-trial 2: data-parallel workers need a GPU each"),
        (["--address", "headnode"], "--address 'headnode' is not HOST:PORT of a Ray head"),
        (["--address", "10.0.0.1:http"], "is not HOST:PORT of a Ray head"),
        (["--storage", "journal://trials.log"], "a journal URL names an absolute file"),
    ],
)
def test_input_mistakes_end_with_one_line_and_exit_2(tmp_path, capsys, extra, message):
    assert cli.main(sweep(tmp_path, *extra)) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and err.startswith("lightrecipe: error: ")


def test_unknown_space_is_a_user_error(tmp_path, capsys):
    argv = sweep(tmp_path)
    argv[argv.index(TINY_SPACE)] = "smoothing-ablaton"
    assert cli.main(argv) == 2
    assert "unknown space 'smoothing-ablaton'" in capsys.readouterr().err


def started_study(tmp_path, **kwargs):
    """A study in the sweep folder with one finished trial, as an earlier sweep leaves it."""
    out = tmp_path / "sw"
    out.mkdir()
    storage = open_storage(records.default_storage_url(str(out)))
    study = create_study(storage, space="tiny", arch=ARCH, space_spec={}, **kwargs)
    trial = study.ask()
    study.tell(trial, 0.5)
    return study


def test_a_sweep_folder_with_that_study_needs_resume(tmp_path, capsys):
    started_study(tmp_path, max_epochs=2, sweep={})
    assert cli.main(sweep(tmp_path)) == 2
    assert "already holds study 'tiny/mobilenetv3_small_050'" in capsys.readouterr().err


def test_resume_refuses_changed_settings(tmp_path, capsys):
    started_study(tmp_path, max_epochs=3, sweep={"epochs": 3})
    assert cli.main(sweep(tmp_path, "--resume")) == 2
    assert "was run with epochs=3, this command gives 2" in capsys.readouterr().err


def test_a_space_whose_corners_break_the_recipe_is_refused_before_ray_starts(tmp_path, capsys):
    # paper-efficient searches smoothing_k up to 64: invalid with a 32-key queue.
    argv = sweep(tmp_path, "--set", "batch_size=32", "--set", "queue_size=32")
    argv[argv.index(TINY_SPACE)] = "paper-efficient"
    assert cli.main(argv) == 2
    assert "'smoothing_k' (64) exceeds queue_size (32)" in capsys.readouterr().err


def test_an_out_that_is_a_file_or_cannot_be_made_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "sw"
    blocker.write_text("not a folder")
    assert cli.main(sweep(tmp_path)) == 2
    assert capsys.readouterr().err == f"lightrecipe: error: --out '{blocker}' is a file; give a folder for the " \
        "sweep (it is created if missing)\n"
    argv = sweep(tmp_path)
    argv[argv.index("--out") + 1] = str(blocker / "inside")
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lightrecipe: error: --out '{blocker / 'inside'}': cannot create the folder") and \
        err.count("\n") == 1


def test_an_address_where_nothing_listens_is_named_before_ray_waits_for_it(tmp_path, capsys):
    port = free_port()
    assert cli.main(sweep(tmp_path, "--address", f"127.0.0.1:{port}")) == 2
    err = capsys.readouterr().err
    assert f"--address 127.0.0.1:{port}: nothing accepts connections there" in err
    assert f"ray start --head --port {port}" in err and err.count("\n") == 1


def test_a_storage_password_never_reaches_the_terminal(tmp_path, capfd):
    url = f"postgresql://ann:Hunter2xyz@127.0.0.1:{free_port()}/sweeps"
    assert cli.main(sweep(tmp_path, "--storage", url)) == 2
    out, err = capfd.readouterr()
    assert "Hunter2xyz" not in out + err and "postgresql://ann:***@127.0.0.1" in err


def test_the_resume_command_repeats_every_flag_given(tmp_path):
    argv = sweep(tmp_path, "--storage", "postgresql://ann:pw@db/x", "--no-baseline", "--time-budget", "60",
                 "--arch", "resnet18")
    args = cli.build_parser().parse_args(argv)
    command = resume_command(args)
    again = cli.build_parser().parse_args(shlex.split(command)[1:])  # as a shell reads it
    for key in ("space", "arch", "trials", "epochs", "out", "assignments", "baseline", "time_budget"):
        assert getattr(again, key) == getattr(args, key), key
    assert again.resume is True and not args.resume
    assert again.storage == "postgresql://ann:***@db/x"  # the password never is part of a printed command


def test_a_space_whose_corner_cannot_fit_the_data_is_refused_before_any_trial_starts(tmp_path, capsys):
    """Issue 19 item 11: `wide` searches queue_size up to 65536; on the 1078 training images of the digits that
    cannot run. One line naming the field and a value that fits, exit 2, before Ray starts."""
    argv = ["sweep", "--space", "wide", "--arch", ARCH, "--trials", "2", "--epochs", "2", "--out", str(tmp_path / "sw")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lightrecipe: error: built-in space 'wide': ")
    assert "queue_size=4096" in err and "'queue_size' (4096) is not smaller than the 1078 training images" in err
    assert "e.g. 128" in err
    assert not (tmp_path / "sw" / "ray").exists()  # no trial started


def test_the_printed_baseline_line_says_what_was_fitted(capsys):
    import optuna

    from lightrecipe.search.commands import print_outcome
    from lightrecipe.search.sweep import outcome

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="tiny/x", direction="maximize")
    fit = {"train_images": 1078, "changed": {"batch_size": [256, 64], "queue_size": [65536, 128]}}
    study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs={
        records.BASELINE: True, records.STATE: "complete", records.FITTED: fit}))
    print_outcome(outcome(study, 1))
    assert "  ResNet-50 baseline (queue 128, batch 64: fitted to 1078 training images): trial 0, knn_top1 0.5000" \
        in capsys.readouterr().out.splitlines()
