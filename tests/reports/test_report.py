"""`lightrecipe report`: the files it writes, HTML escaping, best recipes, exit codes."""

from __future__ import annotations

import pandas as pd
import pytest

from lightrecipe import cli
from lightrecipe.reports.build import build_report
from lightrecipe.search.store import records
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
    assert html.count("<img src='data:image/png;base64,") == 9  # every figure, accuracy against latency included
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


def test_the_fitted_baseline_is_named_with_its_queue_and_batch(tmp_path, capsys):
    """Where the report names the ResNet-50 settings it says what fitting them to the data changed
    (trainers/fit.py): the terminal summary, the Markdown and HTML headline, trials.csv and the recipe card."""
    from lightrecipe.reports import tables
    from lightrecipe.reports.best_recipes import write_best_recipes
    from lightrecipe.reports.commands import print_summary

    fit = {"train_images": 1078, "changed": {"batch_size": [256, 64], "queue_size": [65536, 128]}}
    note = "queue 128, batch 64: fitted to 1078 training images"
    folder = tmp_path / "sweep"
    folder.mkdir()
    sweepdb.build_study(records.default_storage_url(str(folder)), arch=MNV3, params_count=1, trials=[
        sweepdb.Planted(dict(sweepdb.BASELINE_PARAMS), 0.5, baseline=True, fitted=fit),
        sweepdb.Planted(dict(sweepdb.BASELINE_PARAMS, temperature=0.1), 0.7, fitted=fit),
        sweepdb.Planted(dict(sweepdb.BASELINE_PARAMS, temperature=0.3), 0.6)])
    report = build_report(str(folder), tmp_path / "out")
    print_summary(report)
    assert f"{MNV3}: ResNet-50 settings ({note}) 50.0% -> best 70.0%" in capsys.readouterr().out
    assert f"| 50.0 ({note}) |" in report.markdown.read_text()
    assert f"50.0<br><span class=sub>{note}</span>" in report.html.read_text()
    assert list(pd.read_csv(report.csv)["fitted"].fillna("")) == [note, note, ""]
    card = report.best_recipes[MNV3].read_text().splitlines()[0]
    assert card == f"# Best recipe for {MNV3} ({note}): val knn_top1 0.7000"
    trials = tables.load_trials(str(folder))
    trials.loc[trials["baseline"], "knn_top1"] = 0.9  # the baseline wins: its card names it
    write_best_recipes(trials, "knn_top1", tmp_path, [])
    card = (tmp_path / f"best-{MNV3}.yaml").read_text().splitlines()[0]
    assert card == f"# Best recipe for {MNV3}, the ResNet-50 settings ({note}): val knn_top1 0.9000"


@pytest.fixture(scope="module")
def by_probe(planted, tmp_path_factory):
    """`lightrecipe report SWEEP --metric linear_top1` through the CLI: (exit code, printed lines, out folder)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("by-probe") / "r"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = cli.main(["report", str(planted.folder), "--out", str(out), "--metric", "linear_top1"])
    return code, printed.getvalue(), out


@pytest.mark.slow  # a second whole report (8 figures as PNG and SVG)
def test_cli_writes_report_and_prints_where(by_probe):
    code, out, folder = by_probe
    assert code == 0 and f"report: {(folder / 'report.html').resolve()}" in out
    assert (folder / f"best-{EFF}.yaml").exists()


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


@pytest.mark.slow  # the report built by the CLI; test_tables.py checks the ranking in the fast loop
def test_linear_probe_metric_picks_the_trial_that_wins_the_probe_and_loses_on_knn(planted, report, by_probe):
    number, params, linear = planted.probe_best[EFF]
    knn_best = report.headline.set_index("arch").loc[EFF, "best_trial"]
    assert not knn_best.endswith(f" #{number}")  # ranked by kNN, another trial wins
    _, printed, folder = by_probe
    assert f"{EFF}: ResNet-50 settings 47.5% -> best {100 * linear:.1f}%" in printed  # baseline: 0.445 + 0.03
    header = (folder / f"best-{EFF}.yaml").read_text().splitlines()[1]
    assert header.startswith(f"# trial #{number} of study '{sweepdb.SPACE}/{EFF}'")
    recipe = Recipe.from_file(folder / f"best-{EFF}.yaml")
    assert (recipe.temperature, recipe.smoothing) == (params["temperature"], params["smoothing"])
    assert Recipe.from_file(report.best_recipes[EFF]).temperature == planted.best_params[EFF]["temperature"]


def test_the_headline_shows_params_and_the_measured_latency_with_its_device_and_threads(report, planted):
    head = report.headline.set_index("arch")
    for arch in planted.archs:  # planted: 1 and 2 threads; the table shows 1 thread, as the latency figure
        assert head.loc[arch, "params_m"] == pytest.approx(planted.params_count[arch] / 1e6)
        assert head.loc[arch, "latency_ms"] == pytest.approx(sweepdb.latency_ms(planted.params_count[arch]))
    where = "batch-1 latency, median of warm runs: Planted CPU (cpu, 1 thread), 32 px"
    assert report.headline.attrs["latency_caption"] == where
    md, html = report.markdown.read_text(), report.html.read_text()
    latency = f"{sweepdb.latency_ms(planted.params_count[EFF]):.1f}"
    assert f"| {planted.params_count[EFF] / 1e6:.2f} | {latency} |" in md and f"Latency: {where}." in md
    assert "<th>params (M) · latency (ms)</th>" in html and f"{planted.params_count[EFF] / 1e6:.2f} · {latency}" in html
    assert f"Latency: {where}." in html


def test_a_study_without_a_latency_says_not_measured(report, frames):
    import dataclasses

    from lightrecipe.reports import selections
    from lightrecipe.reports.headline import headline_data
    from lightrecipe.reports.render_html import render_html
    from lightrecipe.reports.render_md import render_markdown

    unmeasured = frames._replace(latency=frames.latency.iloc[0:0])  # a sweep from before latency was recorded
    head = headline_data(unmeasured, "knn_top1", importance=pd.DataFrame(columns=["arch", "knob", "importance"]))
    assert head["latency_ms"].isna().all() and head["params_m"].notna().all()
    assert head.attrs["latency_caption"].startswith(f"latency {selections.NOT_MEASURED}: no sweep study recorded one")
    context = dict(trials=frames.trials, metric="knn_top1", sources=["s"], drawn=[],
                   report=dataclasses.replace(report, headline=head))
    md, html = render_markdown(**context), render_html(**context)
    assert md.count(f"| {selections.NOT_MEASURED} |") == len(head)
    assert html.count(f" · {selections.NOT_MEASURED}</td>") == len(head)
