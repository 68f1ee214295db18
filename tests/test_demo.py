"""`lightrecipe demo` end to end, made small: a real sweep of the demo arch on the digits folder, then its report."""

import optuna
import pandas as pd
import pytest

from lightrecipe.cli import build_parser, main
from lightrecipe.demo import DEMO_ARCHS, DEMO_SPACE, demo_archs
from lightrecipe.reports.figures import FIGURES
from lightrecipe.search.store import records
from lightrecipe.trainers.recipe import Recipe

FIXED = {"hflip_prob": 0.0, "grayscale_prob": 0.0, "blur_prob": 0.0, "image_size": 32}  # the data's properties


@pytest.mark.slow
def test_demo_runs_sweep_and_writes_report(tmp_path, capsys, ray_local):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--trials", "2", "--epochs", "1", "--concurrency", "2"]) == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'report' / 'report.html'}" in printed
    data_root = out / "data" / "digits"
    assert f"data: the bundled digits as an image folder, {data_root}" in printed

    storage = records.default_storage_url(str(out / "sweep"))
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage))
    assert names == sorted(f"{DEMO_SPACE}/{arch}" for arch in DEMO_ARCHS)
    for name in names:
        trials = optuna.load_study(study_name=name, storage=storage).trials
        assert len(trials) == 2 and trials[0].user_attrs[records.BASELINE] is True
        for trial in trials:  # the data and its properties are fixed for every trial, the baseline included
            recipe = trial.user_attrs[records.RECIPE]
            assert (recipe["dataset"], recipe["data_root"]) == ("imagefolder", str(data_root))
            assert {k: recipe[k] for k in FIXED} == FIXED
        floor = optuna.load_study(study_name=name, storage=storage).user_attrs[records.FLOOR]
        assert len(floor) == 1 and 0.1 < floor[0]["knn_top1"] <= 1.0  # above chance (10 classes) untrained

    report = out / "report"
    for name in ("report.html", "report.md", "trials.csv", "comparison.png", "history.png", "curves.png"):
        assert (report / name).stat().st_size > 0, name
    notes = (report / "report.md").read_text()
    for stem, *_ in FIGURES:  # with 2 trials some figures have nothing to show: then the report says why
        assert (report / f"{stem}.png").exists() or f"figure '{stem}' skipped" in notes, stem
    table = pd.read_csv(report / "trials.csv")
    assert set(table["arch"]) == set(DEMO_ARCHS) and len(table) == 2 * len(DEMO_ARCHS)
    best = Recipe.from_file(report / "best-mobilenetv3_small_050.yaml")
    assert best.arch == "mobilenetv3_small_050" and best.epochs == 1


def test_arch_adds_to_the_demos_mobilenet_and_the_help_says_so(capsys):
    args = build_parser().parse_args(["demo", "--arch", "resnet10t"])
    assert demo_archs(args.arch) == (*DEMO_ARCHS, "resnet10t")  # the README: `--arch resnet10t` adds a ResNet
    args = build_parser().parse_args(["demo", "--arch", DEMO_ARCHS[0], "--arch", "resnet10t"])
    assert demo_archs(args.arch) == (*DEMO_ARCHS, "resnet10t")  # the README's measured run names both
    assert demo_archs(build_parser().parse_args(["demo"]).arch) == DEMO_ARCHS
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"an arch to search besides {DEMO_ARCHS[0]}, which the demo always searches" in help_text
