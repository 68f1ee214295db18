"""`lightrecipe demo` end to end, made small: a real sweep over both demo archs on digits, then its report."""

import optuna
import pandas as pd
import pytest

from lightrecipe.cli import main
from lightrecipe.demo import DEMO_ARCHS
from lightrecipe.reports.figures import FIGURES
from lightrecipe.search import records
from lightrecipe.trainers.recipe import Recipe


@pytest.mark.slow
def test_demo_runs_sweep_and_writes_report(tmp_path, capsys, ray_local):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--trials", "2", "--epochs", "1", "--concurrency", "2"]) == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'report' / 'report.html'}" in printed

    storage = records.default_storage_url(str(out / "sweep"))
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage))
    assert names == sorted(f"paper-efficient/{arch}" for arch in DEMO_ARCHS)
    for name in names:
        trials = optuna.load_study(study_name=name, storage=storage).trials
        assert len(trials) == 2 and trials[0].user_attrs[records.BASELINE] is True
        assert all(t.user_attrs[records.RECIPE]["dataset"] == "digits" for t in trials)

    report = out / "report"
    for name in ("report.html", "report.md", "trials.csv", "comparison.png", "history.png", "curves.png"):
        assert (report / name).stat().st_size > 0, name
    notes = (report / "report.md").read_text()
    for stem, *_ in FIGURES:  # with 2 trials some figures have nothing to show: then the report says why
        assert (report / f"{stem}.png").exists() or f"figure '{stem}' skipped" in notes, stem
    table = pd.read_csv(report / "trials.csv")
    assert set(table["arch"]) == set(DEMO_ARCHS) and len(table) == 4
    best = Recipe.from_file(report / "best-mobilenetv3_small_050.yaml")
    assert best.arch == "mobilenetv3_small_050" and best.epochs == 1
