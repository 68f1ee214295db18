"""Every `lightrecipe ...` command of the README's indented blocks is run as written, or said where it is run.

A command is a line of an indented block (its `\\` continuations joined, a trailing `# comment` dropped) whose
program is `lightrecipe` followed by one of its subcommands. `test_every_readme_command_is_accounted_for` fails
when a command is claimed by no entry of `CLAIMS` (or by two), so a new README example cannot go untested.

What a run here changes in a command, and nothing else (flags, presets, archs and `--set` values stay as the
README writes them):
- `PLACES`: a path or address of the README's machines becomes this suite's: the CIFAR release under
  `/data/cifar` is the small one `tests/cifar_release.py` writes (real digits in CIFAR-10's python format),
  `/shared/...`, `/tmp/...` and shell variables are folders of the test, `HEAD_IP:6379` is the session's Ray, a
  `postgresql://` URL is the session's PostgreSQL server. Relative paths (`runs/`, `sweeps/`, `demo/`) stay, in
  the test's scratch folder.
- `BUDGET`: trials, epochs and seeds are cut to test size (`--trials 40` -> 2, `--epochs 20` -> 1,
  `--set epochs=50` -> 1); a command that names no budget trains 1 epoch (`train`) or 2 seeds of 1 epoch
  (`confirm`).
- `lightrecipe train` in-process keeps torch at 1 thread, as every trainer test on these 2 shared cores does
  (tests/trainers/conftest.py); a sweep's trials run on 1 CPU each anyway.
A command this machine cannot run (GPUs it has not) is run anyway and must end with the product's one-line
refusal and exit code 2: every flag parsed and checked before anything trained.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from lightrecipe.cli import build_parser
from tests.cifar_release import write_cifar10
from tests.test_readme import EXAMPLES, README, _blocks, run_cli

ROOT = README.parent
SUBCOMMANDS = tuple(next(a for a in build_parser()._actions if a.choices and "train" in a.choices).choices)
PROGRAM = re.compile(r"(?:^|(?<=[\s;&|(]))lightrecipe\s+(" + "|".join(SUBCOMMANDS) + r")\b")


def readme_commands() -> list[str]:
    """Every `lightrecipe SUBCOMMAND ...` of the README's indented blocks, from `lightrecipe` to its line's end.
    In a block with `$ ` prompts, the lines without one are output (a printed hint naming a command runs nothing)."""
    commands = []
    for block in _blocks(README.read_text()):
        joined = "\n".join(block).replace("\\\n", " ")  # continuation lines
        prompted = any(line.lstrip().startswith("$ ") for line in joined.splitlines())
        for line in joined.splitlines():
            if prompted and not line.lstrip().startswith("$ "):
                continue
            line = re.sub(r"\s+#.*$", "", line).strip()  # a trailing comment
            line = re.sub(r"\s+", " ", line)
            match = PROGRAM.search(line)
            if match:
                commands.append(line[match.start():])
    return commands


# Each README command, by a fragment only it holds, and where it runs. `here`: a test of this module; a file:
# that test reads the command from the README and runs it; `not run`: why it cannot be.
SHOWN = "tests/test_readme.py"
CLAIMS: dict[str, str] = {
    # 2. Train one recipe
    "train --preset digits-small --out runs/digits": "here",
    "--set arch=efficientnet_b0 --set dataset=cifar10": "here",
    "train --recipe demo/report/best-": "here",
    # Unlabeled images and a prepared cache
    "prepare photos --out photos-cache --size 32": "here",
    "prepare labeled --out labeled-cache": "here",
    "--set data_root=$PWD/photos-cache": "here",
    "confirm sweep --top 1 --seeds 2": "here",
    "report sweep --out report": "here",
    # 4. Sweeps
    "--arch mobilenetv3_large_100 --arch efficientnet_b0 --trials 40": "here",
    "dashboard sweeps/paper --port 8080": "here",
    "--warm-start sweeps/paper:mobilenetv3_large_100 --warm-top 3": "here",
    "sweep ... --out sweeps/paper --log-to mlflow": "not run: `...` stands for a sweep's flags",
    "sweep ... --log-to mlflow:http": "not run: `...` stands for a sweep's flags; the URI is a server's",
    "train --preset digits-small --out runs/one --log-to mlflow": "here",
    "train --preset digits-small --out runs/two --log-to wandb": "here",
    # 5. Reports, 6. confirm
    "report demo/sweep sweeps/paper postgresql://": "here",
    "confirm sweeps/paper [--top K]": "not run: a synopsis; its options are in brackets",
    # Running on a cluster
    "--address HEAD_IP:6379 --out /shared/sweeps/paper": "here",
    "--address \"$head:$port\"": "here",
    "--nproc 2 --device cpu": "here",
    "--workers-per-trial 8": "here",
    "--out /tmp/ddp_sweep --workers-per-trial 2": "tests/search/tune/test_workers_per_trial.py",
    "--address 127.0.0.1:6390": "tests/search/cluster/test_cluster.py",
    # Does the search find recipes that hold up?
    "demo --arch mobilenetv3_small_050 --arch resnet10t": "here",
    "confirm measured/sweep": "here",
    "report measured/sweep --out measured/report": "here",
    "bench latency --arch $a": "here",
}


def claimed_by(command: str) -> list[str]:
    return [fragment for fragment in CLAIMS if fragment in command]


def readme_command_of(fragment: str) -> str:
    """The one README command that holds `fragment`, as the README writes it."""
    (command,) = {c for c in readme_commands() if fragment in c}
    return command


def readme_command(fragment: str) -> str:
    """`readme_command_of` for a command this module claims."""
    assert CLAIMS[fragment] == "here", f"{fragment!r} is claimed by {CLAIMS[fragment]!r}, not by this module"
    return readme_command_of(fragment)


def test_every_readme_command_is_accounted_for():
    shown = {command.split("#")[0].strip() for command, _ in EXAMPLES}  # what tests/test_readme.py runs
    unclaimed, twice = [], []
    for command in readme_commands():
        claims = claimed_by(command)
        if command in shown:
            assert claims == [], f"{command!r} is run by {SHOWN}; no claim needed"
        elif not claims:
            unclaimed.append(command)
        elif len(claims) > 1:
            twice.append((command, claims))
    assert unclaimed == [], "README commands no test runs: add each to CLAIMS and run it\n" + "\n".join(unclaimed)
    assert twice == []
    for fragment, where in CLAIMS.items():
        matches = {c for c in readme_commands() if fragment in c}  # a command shown twice (run again) is one
        assert len(matches) == 1, f"{fragment!r} names no one README command: {sorted(matches)}"
        if where.startswith("tests/"):  # that test reads the command from the README
            assert "README" in (ROOT / where).read_text(), where
        else:
            assert where == "here" or where.startswith("not run: "), where
    assert len(set(readme_commands())) == len(CLAIMS) + len(shown)


# --- what a run here changes: places and budgets -------------------------------------------------------------
BUDGET = [  # README budget -> test budget; every other flag stays
    (r"--trials \d+", "--trials 2"),  # the baseline and one sampled recipe
    (r"--epochs \d+", "--epochs 1"),
    (r"--grace-epochs \d+", "--grace-epochs 1"),
    (r"(?<=--set )epochs=\d+", "epochs=1"),
]
NO_BUDGET = {"train": "--set epochs=1", "confirm": "--seeds 2 --epochs 1"}  # appended when the command names none


@dataclass
class Places:
    """This suite's stand-ins for the README's machines (`PLACES` in the module docstring)."""

    cifar: Path | None = None
    ray: str | None = None
    postgres: str | None = None
    scratch: Path | None = None
    port: int | None = None

    def table(self) -> list[tuple[str, str]]:
        pairs = [("/data/cifar", self.cifar), ("HEAD_IP:6379", self.ray), ("$head:$port", self.ray),
                 ("postgresql://lightrecipe@DBHOST/lightrecipe", self.postgres),
                 ("postgresql://user@db/lightrecipe", self.postgres),
                 ("/shared/", self.scratch and f"{self.scratch}/shared/"),
                 ("/tmp/", self.scratch and f"{self.scratch}/tmp/"), ("$out", self.scratch and f"{self.scratch}/out"),
                 ("$PWD", Path.cwd()), ("$resume", ""),
                 # `make demo`'s folder: here the hold-up study's run of `lightrecipe demo --out measured`
                 ("demo/sweep", "measured/sweep"), ("demo/report/", "measured/report/"),
                 ("--port 8080", self.port and f"--port {self.port}")]
        return [(old, str(new)) for old, new in pairs if new is not None]


def as_tested(command: str, places: Places) -> list[str]:
    """The argv (without `lightrecipe`) a README command runs with here: places and budgets replaced."""
    table = dict(places.table())
    command = re.sub("|".join(map(re.escape, table)), lambda m: table[m.group(0)], command)  # one pass
    for pattern, budget in BUDGET:
        command = re.sub(pattern, budget, command)
    argv = shlex.split(command)[1:]
    added = NO_BUDGET.get(argv[0], "")
    if added and not any(flag in argv for flag in ("--epochs", "--seeds")) and "epochs=1" not in argv:
        argv += added.split()
    return argv


def test_only_places_and_budgets_change():
    places = Places(cifar=Path("/t/cifar"), ray="127.0.0.1:1", postgres="postgresql://u:p@127.0.0.1:2/d",
                    scratch=Path("/t"))
    argv = as_tested(readme_command("--arch mobilenetv3_large_100 --arch efficientnet_b0 --trials 40"), places)
    assert argv == ["sweep", "--space", "paper-efficient", "--arch", "mobilenetv3_large_100", "--arch",
                    "efficientnet_b0", "--trials", "2", "--epochs", "1", "--set", "dataset=cifar10",
                    "--set", "data_root=/t/cifar", "--set", "image_size=32", "--out", "sweeps/paper"]
    assert as_tested("lightrecipe train --preset digits-small --out runs/digits", places)[-2:] == ["--set", "epochs=1"]
    assert as_tested("lightrecipe train --set epochs=50 --set warmup_epochs=5 --out x", places) == [
        "train", "--set", "epochs=1", "--set", "warmup_epochs=5", "--out", "x"]
    assert as_tested("lightrecipe confirm sweep --top 1 --seeds 2 --epochs 3", places)[-2:] == ["--epochs", "1"]


@dataclass
class Ran:
    code: int
    printed: str


def run(fragment: str, places: Places) -> Ran:
    """The README command holding `fragment`, through the real CLI in this process."""
    return Ran(*run_cli(as_tested(readme_command(fragment), places)))


def ok(ran: Ran) -> Ran:
    assert ran.code == 0, ran.printed[-4000:]
    return ran


@pytest.fixture(autouse=True)
def _train_on_one_thread(monkeypatch):
    """`lightrecipe train` takes every core; on 2 shared cores one thread is several times faster (see the
    module docstring). Nothing else of the command changes."""
    import torch

    monkeypatch.setattr("lightrecipe.trainers.commands.use_all_cores", lambda: torch.set_num_threads(1))
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """The scratch folder every command runs in (relative paths of the README land here)."""
    return tmp_path_factory.mktemp("readme")


@pytest.fixture(scope="module")
def cifar(workspace) -> Path:
    return write_cifar10(workspace / "cifar-release")


@pytest.fixture
def places(workspace, cifar, monkeypatch) -> Places:
    monkeypatch.chdir(workspace)
    return Places(cifar=cifar, scratch=workspace)


# --- commands this machine cannot run: the refusal a user gets --------------------------------------------------
@pytest.mark.slow
def test_the_cluster_examples_are_refused_here_for_the_gpus_they_ask_for(places, ray_local, postgres_server):
    """The cluster, SLURM and multi-GPU sweeps against the session's Ray (2 CPUs, no GPU) and PostgreSQL: each
    ends with the one line naming the resources a trial needs and the cluster's, exit 2, before any trial."""
    from lightrecipe.trainers.data.digits_folder import write_digits_folder

    places.ray = ray_local
    places.postgres = postgres_server.create_database("readme_cluster")
    write_digits_folder(places.scratch / "shared" / "imagenet")  # the ImageNet layout the example names
    for fragment, workers, cpus, gpus in [("--address HEAD_IP:6379 --out /shared/sweeps/paper", 1, 4, 0.5),
                                          ("--address \"$head:$port\"", 1, 8, 0.5),
                                          ("--workers-per-trial 8", 8, 8, 1)]:
        ran = run(fragment, places)
        assert (ran.code, ran.printed) == (2, (
            f"lightrecipe: error: a trial needs {workers} worker(s) of {cpus} CPU and {gpus:g} GPU (--workers-per-trial, "
            "--cpus-per-trial, --gpus-per-trial) but the cluster holds 0 (nodes: 2 CPU/0 GPU); lower the request or "
            "add nodes\n")), fragment
    assert not list(places.scratch.rglob("trial-*"))  # refused before any trial



# --- the hold-up study; its demo folder stands in for `make demo`'s ---------------------------------------------
@dataclass
class DemoFolder:
    """What `lightrecipe demo` left in its folder, read before confirm and report add to it."""

    studies: dict[str, list]  # study name -> its trials
    floors: dict[str, list]  # study name -> the random-init floor rows the sweep measured
    report_files: dict[str, int]  # file name -> size in bytes
    notes: str  # report.md
    table: object  # trials.csv as a DataFrame


def read_demo_folder(out: Path) -> DemoFolder:
    import optuna
    import pandas as pd

    from lightrecipe.search.store import records

    storage = records.default_storage_url(str(out / "sweep"))
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage))
    studies = {name: optuna.load_study(study_name=name, storage=storage) for name in names}
    return DemoFolder(studies={name: study.trials for name, study in studies.items()},
                      floors={name: study.user_attrs[records.FLOOR] for name, study in studies.items()},
                      report_files={f.name: f.stat().st_size for f in (out / "report").iterdir()},
                      notes=(out / "report" / "report.md").read_text(),
                      table=pd.read_csv(out / "report" / "trials.csv"))


@pytest.fixture(scope="module")
def holdup(workspace, cifar, ray_local) -> dict:
    places = Places(cifar=cifar, scratch=workspace)
    with contextlib.chdir(workspace):
        demo = ok(run("demo --arch mobilenetv3_small_050 --arch resnet10t", places))
        return {"demo": demo, "demo folder": read_demo_folder(workspace / "measured"),
                "confirm": ok(run("confirm measured/sweep", places)),
                "report": ok(run("report measured/sweep --out measured/report", places))}


@pytest.mark.slow
def test_the_demo_sweeps_each_arch_on_the_digits_folder_and_writes_its_report(holdup, workspace):
    """`make demo`'s job (`lightrecipe demo`), here with the README's second arch: one study per arch, the
    ResNet-50 baseline first, the digits' properties fixed in every recipe, a floor above chance, a report."""
    from lightrecipe.demo import DEMO_SPACE, demo_archs, single_run_note
    from lightrecipe.reports.figures import FIGURES
    from lightrecipe.search.store import records

    out, folder = workspace / "measured", holdup["demo folder"]
    archs = demo_archs(["mobilenetv3_small_050", "resnet10t"])
    printed = holdup["demo"].printed
    assert f"report: {out / 'report' / 'report.html'}" in printed
    assert f"data: the bundled digits as an image folder, {out / 'data' / 'digits'}" in printed
    assert single_run_note(Path("measured") / "sweep") in printed  # one run each; confirm is the estimate
    assert sorted(folder.studies) == sorted(f"{DEMO_SPACE}/{arch}" for arch in archs)
    fixed = {"hflip_prob": 0.0, "grayscale_prob": 0.0, "blur_prob": 0.0, "image_size": 32}  # the data's properties
    for name, trials in folder.studies.items():
        assert len(trials) == 2 and trials[0].user_attrs[records.BASELINE] is True, name
        for trial in trials:  # the data and its properties are fixed for every trial, the baseline included
            recipe = trial.user_attrs[records.RECIPE]
            assert (recipe["dataset"], recipe["data_root"]) == ("imagefolder", str(out / "data" / "digits"))
            assert {k: recipe[k] for k in fixed} == fixed
        floor = folder.floors[name]
        assert len(floor) == 1 and 0.1 < floor[0]["knn_top1"] <= 1.0  # above chance (10 classes) untrained
    for name in ("report.html", "report.md", "trials.csv", "comparison.png", "history.png", "curves.png"):
        assert folder.report_files.get(name, 0) > 0, name
    for stem, *_ in FIGURES:  # with 2 trials some figures have nothing to show: then the report says why
        assert f"{stem}.png" in folder.report_files or f"figure '{stem}' skipped" in folder.notes, stem
    assert set(folder.table["arch"]) == set(archs) and len(folder.table) == 2 * len(archs)
    assert "best-mobilenetv3_small_050.yaml" in folder.report_files


@pytest.mark.slow
def test_the_hold_up_study_searches_confirms_and_reports_both_archs(holdup, workspace):
    report = (workspace / "measured" / "report" / "report.md").read_text()
    for arch in ("mobilenetv3_small_050", "resnet10t"):
        assert arch in holdup["confirm"].printed and arch in report
        assert (workspace / "measured" / "report" / f"best-{arch}.yaml").is_file()
    assert "random init (untrained)" in holdup["confirm"].printed
    assert "Does it hold up?" in report


# --- 2. Train one recipe -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_section_2_trains_the_preset_a_cifar_recipe_and_a_report_s_best_recipe(places, holdup):
    printed = {}
    for fragment, out in [("train --preset digits-small --out runs/digits", "runs/digits"),
                          ("--set arch=efficientnet_b0 --set dataset=cifar10", "runs/effb0-cifar"),
                          ("train --recipe demo/report/best-", "runs/best")]:
        printed[out] = ok(run(fragment, places)).printed
        metrics = json.loads((places.scratch / out / "metrics.json").read_text())
        assert metrics["state"] == "complete" and metrics["epochs_run"] == 1, fragment
        assert f"run folder: {places.scratch / out}" in printed[out]
    recipe = json.loads((places.scratch / "runs" / "effb0-cifar" / "recipe.json").read_text())
    assert (recipe["arch"], recipe["dataset"], recipe["image_size"]) == ("efficientnet_b0", "cifar10", 32)
    # MoCo v2's queue and batch fitted to the release's 540 training images (trainers/fit.py), the rest kept
    assert "preset 'resnet50-mocov2': queue 64, batch 32: fitted to 540 training images" in printed["runs/effb0-cifar"]
    assert "cpu_threads: 1" in printed["runs/best"]  # the report's best recipe trains on its sweep trial's thread


# --- 4. Sweeps, the dashboard, 5. a report of several sources ---------------------------------------------------
@pytest.mark.slow
def test_the_cifar_sweep_a_warm_start_from_it_its_dashboard_and_a_report_of_three_sources(
        places, holdup, ray_local, postgres_server):
    import optuna

    from lightrecipe.search.store import records
    from tests.search.helpers import free_port

    paper = ok(run("--arch mobilenetv3_large_100 --arch efficientnet_b0 --trials 40", places))
    assert "fitted to 540 training images" in paper.printed
    for arch in ("mobilenetv3_large_100", "efficientnet_b0"):
        study = optuna.load_study(study_name=records.study_name("paper-efficient", arch),
                                  storage=records.default_storage_url("sweeps/paper"))
        assert len(study.trials) == 2 and study.trials[0].user_attrs[records.RECIPE]["dataset"] == "cifar10"
    warm = ok(run("--warm-start sweeps/paper:mobilenetv3_large_100 --warm-top 3", places))
    assert "warm start: paper-efficient/mobilenetv3_large_100" in warm.printed

    places.port = free_port()
    argv = as_tested(readme_command("dashboard sweeps/paper --port 8080"), places)
    server = subprocess.Popen([sys.executable, "-m", "lightrecipe.cli", *argv], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{places.port}/api/studies", timeout=5) as answer:
                    assert b"paper-efficient/efficientnet_b0" in answer.read()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "the dashboard did not answer"
                time.sleep(0.5)
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C
        printed = server.communicate(timeout=60)[0]
    assert server.returncode == 0, printed

    # The README's third source is a team's PostgreSQL database; here the session's, holding the warm study.
    places.postgres = postgres_server.create_database("readme_report")
    for summary in optuna.get_all_study_summaries(records.default_storage_url("sweeps/effnet")):
        optuna.copy_study(from_study_name=summary.study_name, from_storage=records.default_storage_url("sweeps/effnet"),
                          to_storage=places.postgres)
    report = ok(run("report demo/sweep sweeps/paper postgresql://", places))
    page = (places.scratch / "reports" / "paper" / "report.md").read_text()
    for study in ("digits-demo/resnet10t", "paper-efficient/mobilenetv3_large_100", "paper-efficient/efficientnet_b0"):
        assert study.split("/")[1] in page, study
    assert report.printed


# --- unlabeled images and prepared caches -----------------------------------------------------------------------
def shell_block(first_line: str) -> str:
    """The README block that starts with `first_line`, as one script."""
    (block,) = [b for b in _blocks(README.read_text()) if b and b[0].startswith(first_line)]
    return "\n".join(block).strip() + "\n"


@pytest.mark.slow
def test_the_cache_path_prepares_sweeps_confirms_and_reports(places, ray_local):
    import optuna

    script = shell_block("python -c \"from lightrecipe.trainers.data.digits_folder")
    environment = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    made = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=places.scratch, env=environment,
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr
    first = ok(run("prepare photos --out photos-cache --size 32", places))
    assert "prepared 1438 images" in first.printed and "0 skipped as unreadable" in first.printed
    again = ok(run("prepare photos --out photos-cache --size 32", places))  # the README's "again: nothing to do"
    assert f"reusing the complete cache '{places.scratch / 'photos-cache'}' (1438 images" in again.printed
    assert "prepared 1797 images" in ok(run("prepare labeled --out labeled-cache", places)).printed
    shutil.rmtree(places.scratch / "photos")  # from here on the floor and every trial can only read the caches
    shutil.rmtree(places.scratch / "labeled")
    ok(run("--set data_root=$PWD/photos-cache", places))
    from lightrecipe.search.store import records

    storage = records.default_storage_url(str(places.scratch / "sweep"))
    study = optuna.load_study(study_name="digits-demo/mobilenetv3_small_050", storage=storage)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    for trial in study.trials:
        recipe = trial.user_attrs[records.RECIPE]
        assert (recipe["dataset"], recipe["data_root"]) == ("unlabeled", str(places.scratch / "photos-cache"))
        assert 0.0 < trial.user_attrs[records.METRICS]["test_knn_top1"] <= 1.0
    assert study.user_attrs[records.FLOOR][0]["knn_top1"] > 0.5  # the driver's floor, scored from the cache
    confirm = ok(run("confirm sweep --top 1 --seeds 2", places))
    assert "random init (untrained)" in confirm.printed
    ok(run("report sweep --out report", places))
    assert "Does it hold up?" in (places.scratch / "report" / "report.md").read_text()


# --- --nproc, --log-to, the latency table --------------------------------------------------------------------
@pytest.mark.slow
def test_train_on_two_cpu_processes(places):
    ran = ok(run("--nproc 2 --device cpu", places))
    out = places.scratch / "tmp" / "ddp_readme" / "digits-2proc"
    assert f"run folder: {out}" in ran.printed
    assert json.loads((out / "metrics.json").read_text())["state"] == "complete"


@pytest.mark.slow
def test_train_logs_to_mlflow_and_to_wandb_offline(places, monkeypatch):
    ok(run("train --preset digits-small --out runs/one --log-to mlflow", places))
    assert (places.scratch / "runs" / "one" / "mlruns").is_dir()
    monkeypatch.setenv("WANDB_MODE", "offline")  # the README's line sets it for the command
    monkeypatch.delenv("WANDB_DIR", raising=False)
    ok(run("train --preset digits-small --out runs/two --log-to wandb", places))
    assert list((places.scratch / "runs" / "two" / "wandb").glob("**/offline-run-*/run-*.wandb"))


@pytest.mark.slow
def test_the_latency_table_is_measured_and_drawn(places):
    """The block as the shell runs it: one `bench latency` line per arch and thread count into the jsonl file,
    then the benchmark draws the figure, both in the scratch folder (a copy of the benchmark there), not the
    checkout."""
    script = shell_block("for t in ")
    assert "lightrecipe bench latency --arch $a" in script
    (places.scratch / "benchmarks").mkdir(exist_ok=True)
    (places.scratch / "docs").mkdir(exist_ok=True)
    shutil.copy(ROOT / "benchmarks" / "holdup_latency.py", places.scratch / "benchmarks")
    environment = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                   "MPLBACKEND": "Agg"}
    ran = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=places.scratch, env=environment,
                         capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr
    rows = (places.scratch / "benchmarks" / "holdup-latency.jsonl").read_text().splitlines()
    assert [(json.loads(r)["arch"], json.loads(r)["threads"]) for r in rows] == [
        (arch, threads) for threads in (1, 2) for arch in ("mobilenetv3_small_050", "resnet10t")]
    assert (places.scratch / "docs" / "holdup-latency.png").stat().st_size > 0
