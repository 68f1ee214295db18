"""`lightrecipe report`: the files it writes, HTML escaping, best recipes, exit codes."""

from __future__ import annotations

import pandas as pd
import pytest

from lightrecipe import cli
from lightrecipe.reports.build import build_report
from lightrecipe.search import records
from lightrecipe.trainers.recipe import Recipe
from tests.reports import sweepdb

MNV3, EFF = "mobilenetv3_large_100", "efficientnet_b0"


def test_writes_every_output(report, planted):
    names = {p.name for p in report.out.iterdir()}
    stems = ("comparison", "shift", "sensitivity", "importance", "history", "curves", "smoothing", "size")
    assert {"report.html", "report.md", "trials.csv"} <= names
    assert {f"{s}.{ext}" for s in stems for ext in ("png", "svg")} <= names
    assert {f"best-{a}.yaml" for a in (*planted.archs, "resnet50")} <= names
    assert not [n for n in report.notes if "could not be drawn" in n]
    csv = pd.read_csv(report.csv)
    assert len(csv) == 16 + 16 + 3 and "distributions" not in csv.columns


def test_headline_baseline_best_delta_and_knobs(report, planted):
    head = report.headline.set_index("arch")
    assert head.loc[MNV3, "baseline"] == pytest.approx(41.0) and head.loc[MNV3, "best"] == pytest.approx(71.0)
    assert head.loc[MNV3, "delta"] == pytest.approx(30.0) and head.loc[MNV3, "top_knobs"].count("(") == 3
    assert head.loc["resnet50", "top_knobs"] == ""  # too few trials for importance: named in the notes instead
    html = report.html.read_text()
    assert "+30.0" in html and "+29.5" in html and MNV3 in html


def test_html_escapes_user_strings_and_is_self_contained(report):
    html = report.html.read_text()
    assert "<script" not in html.lower()  # the planted error/node script is shown, never run
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
    assert html.count("<img src='data:image/png;base64,") == 8
    for remote in ("http://", "https://", "//fonts", "<link"):
        assert remote not in html
    md = report.markdown.read_text()
    assert "![Recipe comparison" in md and "comparison.png" in md


def test_best_recipe_files_load_as_recipes(report, planted):
    for arch in planted.archs:
        recipe = Recipe.from_file(report.best_recipes[arch])
        assert recipe.arch == arch
        for key, value in planted.best_params[arch].items():
            assert getattr(recipe, key) == pytest.approx(value) if isinstance(value, float) else getattr(recipe, key) == value
        assert recipe.epochs == sweepdb.MAX_EPOCHS and isinstance(recipe.smoothing_k, int)


def test_study_without_complete_trial_reports_instead_of_crashing(tmp_path):
    url = records.default_storage_url(str(tmp_path / "sweep"))
    (tmp_path / "sweep").mkdir()
    sweepdb.build_study(url, arch=MNV3, params_count=1, running=1, trials=[
        sweepdb.Planted(dict(sweepdb.BASELINE_PARAMS), None, state="failed", epochs=1, error="boom")])
    report = build_report(str(tmp_path / "sweep"), tmp_path / "out")
    assert any("no complete trial" in n and "1 running" in n for n in report.notes)
    assert report.best_recipes == {}
    html = report.html.read_text()
    assert "skipped" in html and "boom" in html
    assert (tmp_path / "out" / "curves.png").exists()  # the running trial's curve is still drawn


def test_cli_writes_report_and_prints_where(planted, tmp_path, capsys):
    code = cli.main(["report", str(planted.folder), "--out", str(tmp_path / "r"), "--metric", "linear_top1"])
    out = capsys.readouterr().out
    assert code == 0 and f"report: {(tmp_path / 'r' / 'report.html').resolve()}" in out
    assert (tmp_path / "r" / f"best-{EFF}.yaml").exists()


def test_cli_missing_source_is_one_line_exit_2(tmp_path, capsys):
    missing = tmp_path / "no-such-sweep"
    code = cli.main(["report", str(missing), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and str(missing) in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_cli_bad_metric_exit_2(planted, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["report", str(planted.folder), "--out", str(tmp_path / "r"), "--metric", "test_knn_top1"])
    assert exc.value.code == 2 and "linear_top1" in capsys.readouterr().err


def test_linear_probe_metric_picks_the_trial_that_wins_the_probe_and_loses_on_knn(planted, report, tmp_path):
    number, params, linear = planted.probe_best[EFF]
    knn_best = report.headline.set_index("arch").loc[EFF, "best_trial"]
    assert not knn_best.endswith(f" #{number}")  # ranked by kNN, another trial wins
    by_probe = build_report(str(planted.folder), tmp_path / "probe", metric="linear_top1")
    head = by_probe.headline.set_index("arch")
    assert head.loc[EFF, "best_trial"] == f"{sweepdb.SPACE}/{EFF} #{number}"
    assert head.loc[EFF, "best"] == pytest.approx(100 * linear)
    recipe = Recipe.from_file(by_probe.best_recipes[EFF])
    assert (recipe.temperature, recipe.smoothing) == (params["temperature"], params["smoothing"])
    assert Recipe.from_file(report.best_recipes[EFF]).temperature == planted.best_params[EFF]["temperature"]
