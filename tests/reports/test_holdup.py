"""The random-init floor and "Does it hold up?" in the report, on a planted confirm database (confirmdb.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lightrecipe import stats
from lightrecipe.reports import holdup, tables
from tests.reports import confirmdb
from tests.reports.confirmdb import ARCH, CONFIRMED, FLOOR, literal_interval


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return confirmdb.confirmed_sweep(tmp_path_factory.mktemp("confirmed") / "sweep")


@pytest.fixture(scope="module")
def frames(folder):
    return tables.load(str(folder))


@pytest.fixture(scope="module")
def built(folder, tmp_path_factory):
    from lightrecipe.reports.build import build_report

    return build_report(str(folder), tmp_path_factory.mktemp("report") / "out")


def test_confirm_trials_are_kept_out_of_the_searched_trials(frames):
    assert len(frames.trials) == 4  # the sweep's own trials; 12 confirm runs would otherwise be "searched"
    assert len(frames.confirm) == 12 and set(frames.confirm["role"]) == {"searched", "resnet50"}


def test_holdup_rows_give_mean_and_interval_per_recipe_and_the_floor(frames):
    data = holdup.holdup_data(frames).set_index("label")
    for source_trial, runs in CONFIRMED.items():
        label = f"#{source_trial}" + (" ResNet-50 settings" if source_trial == 0 else "")
        for i, metric in enumerate(tables.METRICS):
            mean, half = literal_interval([r[i] for r in runs])
            assert data.loc[label, metric] == pytest.approx(mean)
            assert data.loc[label, f"{metric}_ci"] == pytest.approx(half)
    floor = data.loc["random init (untrained)"]
    assert floor["knn_top1"] == pytest.approx(0.72) and floor["n"] == 3
    assert floor["test_knn_top1_ci"] == pytest.approx(literal_interval([r[2] for r in FLOOR])[1])
    assert list(data.loc[["#2", "#1", "#3", "#0 ResNet-50 settings"], "confirmed_rank"]) == [1, 2, 3, 4]
    assert list(data.loc[["#1", "#2", "#3", "#0 ResNet-50 settings"], "short_rank"]) == [1, 2, 3, 4]


def test_tau_is_over_the_searched_recipes_alone_with_a_bootstrap_interval_over_seeds(frames):
    summary = holdup.holdup_summary(holdup.holdup_data(frames)).iloc[0]
    # #1 > #2 > #3 in the sweep, #2 > #1 > #3 confirmed: one swap of 3 pairs; the ResNet-50 settings, last in
    # both orders, would add 3 agreeing pairs (2/3)
    assert summary.n == 3 and summary.kendall_tau == pytest.approx(1 / 3)
    assert summary.tau_p == pytest.approx(1.0)  # every order of 3 has |S| >= 1
    # #2 beats #1 in every seed, so every resample of the seeds keeps the order: the interval has no width
    assert (summary.tau_low, summary.tau_high) == pytest.approx((1 / 3, 1 / 3))


def test_the_bootstrap_resamples_seeds_together():
    # per seed, #a beats #b and #b beats #c: every resample keeps that order, so the interval has no width
    recipes = pd.DataFrame(dict(role="searched", source_trial=[1, 2, 3], short=[0.9, 0.8, 0.7], images=math.nan,
                                n=3, planned=3, knn_top1=0.0, seeds=[[0, 1, 2]] * 3,
                                values=[[0.9, 0.5, 0.7], [0.8, 0.4, 0.6], [0.7, 0.3, 0.5]]))
    assert holdup.tau_bootstrap(recipes, "knn_top1") == (1.0, 1.0)


def test_paired_tests_see_a_difference_in_every_seed_that_welch_calls_noise(frames):
    summary = holdup.holdup_summary(holdup.holdup_data(frames)).iloc[0]
    assert summary.winner == "#2"
    # #2 beats #1 by exactly one point in each seed: Welch p = 0.29 (within noise), paired p = 0
    runs = {n: dict(seeds=[0, 1, 2], values=[r[0] for r in CONFIRMED[n]]) for n in (1, 2)}
    assert stats.paired_test(runs[2], runs[1])[:2] == (False, 0.0)
    assert not any("within noise" in f for f in summary.warnings)
    assert not any("floor" in f for f in summary.warnings)  # 0.09, 0.09, 0.06 above it: paired p = 0.015


def test_a_winner_within_the_floor_by_seed_is_not_above_it_though_welch_would_not_say(frames):
    # #2 scores 0.79, 0.81, 0.80; the floor 0.80, 0.79, 0.82 on the same seeds: differences -0.01, +0.02, -0.02
    floor = frames.floor.copy()
    confirm_rows = floor["kind"] == "confirm"
    floor.loc[confirm_rows, "knn_top1"] = [0.80, 0.79, 0.82]
    summary = holdup.holdup_summary(holdup.holdup_data(frames._replace(floor=floor))).iloc[0]
    (flag,) = [f for f in summary.warnings if "floor" in f]
    assert flag.startswith("winner #2 is not above the random-init floor (paired t-test over 3 seeds, p = ")


def test_within_noise_of_the_runner_up_is_a_whole_sentence_from_the_paired_test(frames):
    confirm = frames.confirm.copy()
    one = (confirm["source_trial"] == 1).to_numpy()
    confirm.loc[one, "knn_top1"] = [0.80, 0.79, 0.81]  # against #2's 0.79, 0.81, 0.80: +0.01, -0.02, +0.01
    summary = holdup.holdup_summary(holdup.holdup_data(frames._replace(confirm=confirm))).iloc[0]
    (noise,) = [f for f in summary.warnings if "within noise of the runner-up" in f]
    assert "(paired t-test over 3 seeds, p = " in noise
    assert noise.endswith("cannot tell them apart; more seeds would narrow the intervals")  # a whole sentence
    assert not any("ResNet-50" in f for f in summary.warnings)  # 0.80 vs 0.55 over 3 seeds is not noise
    # seeds 0 and 2 put #1 first (tau 1), seed 1 puts #2 first (tau 1/3): the resamples reach both
    assert (summary.tau_low, summary.tau_high) == pytest.approx((1 / 3, 1.0))


def test_a_seed_that_did_not_complete_counts_against_its_recipe(frames):
    confirm = frames.confirm.copy()
    confirm.loc[(confirm["source_trial"] == 2) & (confirm["seed"] == 1), "state"] = "pruned"
    data = holdup.holdup_data(frames._replace(confirm=confirm))
    row = data.set_index("label").loc["#2"]
    assert (row.n, row.planned, holdup.seeds_done(row)) == (2, 3, "2/3")
    summary = holdup.holdup_summary(data).iloc[0]
    assert summary.winner == "#1"  # #2's two seeds average 0.795, above #1's 0.79, but one of its seeds failed
    assert any(f.startswith("#2 completed 2 of 3 seeds") for f in summary.warnings)


def test_the_seeds_are_stated_and_a_seed_shared_with_the_sweep_is_flagged(frames):
    summary = holdup.holdup_summary(holdup.holdup_data(frames)).iloc[0]
    assert summary.seeds == [0, 1, 2] and summary.sweep_seeds == [0]
    assert holdup.seeds_text(summary) == "Seeds: confirm and floor 0, 1, 2; the sweep trained with 0."
    assert any(f.startswith("confirm seed 0 is the sweep's own training seed") for f in summary.warnings)


def test_winner_below_the_floor_is_said_plainly(frames):
    floor = frames.floor.assign(knn_top1=0.95)  # an untrained net that beats every confirmed recipe
    data = holdup.holdup_data(frames._replace(floor=floor))
    flags = holdup.holdup_summary(data).iloc[0].warnings
    assert any("winner #2 scores below the random-init floor" in f for f in flags)


def test_headline_uses_the_confirmed_test_numbers_with_intervals(built):
    row = built.headline.set_index("arch").loc[ARCH]
    mean, half = literal_interval([r[2] for r in CONFIRMED[2]])
    assert row.best == pytest.approx(100 * mean) and row.best_ci == pytest.approx(100 * half)
    assert row.baseline == pytest.approx(100 * np.mean([r[2] for r in CONFIRMED[0]]))
    assert row.floor == pytest.approx(100 * np.mean([r[2] for r in FLOOR]))
    assert row.basis == "confirm test_knn_top1, 3 seeds"
    assert "/runs/confirm/2/seed0" in row.best_run_dir


def test_sweep_floor_is_in_the_comparison_data(frames):
    from lightrecipe.reports import figures

    data = figures.comparison_data(frames).set_index("kind")
    # the sweep's seed 0 and the confirm's seeds 0-2 are one backbone each: seed 0 counts once
    assert data.loc["floor", "top1"] == pytest.approx(100 * np.mean([r[0] for r in FLOOR]))
    assert data.loc["floor", "n"] == 3


def test_report_pages_show_the_section_and_the_best_file_comes_from_the_confirmed_winner(built):
    md = built.markdown.read_text()
    assert "## Does it hold up?" in md and "tau-b +0.33 (exact permutation p = 1.00; 95% bootstrap over seeds" in md
    assert "Seeds: confirm and floor 0, 1, 2; the sweep trained with 0." in md
    assert "| #1 | 3/3 | 70.0 | 1 | 2 | 79.0 ± 2.5 |" in md  # #1: 3 of 3 seeds, sweep 70%, rank 1 -> 2  # #1: sweep 70%, rank 1 -> 2, val kNN 79 +- 2.5
    html = built.html.read_text()
    assert "Does it hold up?" in html and "/runs/confirm/2/seed1" in html
    text = built.best_recipes[ARCH].read_text()
    assert "# confirmed winner: recipe #2" in text and "3 seeds at 18 epochs" in text
    assert "epochs: 18" in text and "temperature: 0.15" in text  # trial 2's recipe, at the confirm schedule


def test_a_tie_on_the_confirmed_mean_names_one_winner_everywhere(frames):
    """The headline (confirmed_winners) and the notes (holdup_summary) once broke a tie differently."""
    data = holdup.holdup_data(frames)
    runner_up = data[data["label"] == "#1"].index[0]
    winner = data[data["label"] == "#2"].index[0]
    tied = data.copy()
    tied.loc[runner_up, "knn_top1"] = tied.loc[winner, "knn_top1"]
    tied.loc[runner_up, "short"] = tied.loc[winner, "short"] + 0.01  # the better sweep value takes the tie
    (summary,) = holdup.holdup_summary(tied).itertuples()
    assert summary.winner == "#1" == holdup.confirmed_winners(tied).iloc[0]["label"]


def test_a_tie_in_images_is_a_tie_whatever_float_noise_says(frames):
    data = holdup.holdup_data(frames).assign(images=145.0)
    tied = data.set_index("label")
    tied.loc["#2", "knn_top1"], tied.loc["#1", "knn_top1"] = 116 / 145, 116 / 145 + 1e-15  # one count, two floats
    tied.loc["#2", "short"] = 0.75  # the better sweep value takes the tie
    tied = tied.reset_index()
    assert holdup.holdup_summary(tied).iloc[0].winner == "#2" == holdup.confirmed_winners(tied).iloc[0]["label"]
