"""Figure data frames hold the planted numbers; every figure renders from its frame."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest

from lightrecipe.reports import figures, tables
from tests.reports import sweepdb
from tests.reports.layout import layout_problems

MNV3, EFF = "mobilenetv3_large_100", "efficientnet_b0"


def test_comparison_baseline_vs_best_with_seed_error_bars(frames, planted):
    data = figures.comparison_data(frames).set_index(["arch", "kind"])
    base = data.loc[(MNV3, "baseline")]
    assert base.top1 == pytest.approx(100 * np.mean(planted.baseline[MNV3]))
    assert base.n == 2 and base["std"] == pytest.approx(100 * np.std(planted.baseline[MNV3], ddof=1))
    best = data.loc[(MNV3, "best")]
    assert best.top1 == pytest.approx(100 * planted.best[MNV3]) and best.n == 1 and best["std"] == 0
    assert best.delta == pytest.approx(100 * (planted.best[MNV3] - np.mean(planted.baseline[MNV3])))
    assert data.loc[("resnet50", "best")].top1 == pytest.approx(82.0)  # the ResNet-50 arch itself


def test_shift_reference_best_and_range_within_one_point(frames, planted):
    data = figures.shift_data(frames).set_index(["knob", "arch"])
    row = data.loc[("temperature", MNV3)]
    assert row.resnet50 == 0.2 and row.best == pytest.approx(0.1)
    assert (row.near_min, row.near_max) == pytest.approx(planted.near_best_temperature[MNV3]) and row.moved
    assert data.loc[("smoothing", EFF)].near_values == ["topk"] and data.loc[("smoothing", EFF)].resnet50 == "none"
    assert data.loc[("smoothing_k", MNV3)].best == 16  # an int field stays an int
    assert not data.loc[("base_lr", "resnet50")].moved
    assert "seed" not in data.index.get_level_values("knob")


def test_sensitivity_rows_per_complete_trial_and_knob(frames):
    trials = frames.trials
    data = figures.sensitivity_data(frames)
    n_temp = ((trials["state"] == "complete") & trials["param_temperature"].notna()).sum()
    assert (data["knob"] == "temperature").sum() == n_temp
    assert data.loc[data["knob"] == "weight_decay", "log"].all() and not data.loc[data["knob"] == "temperature", "log"].any()
    assert (data.loc[data["knob"] == "smoothing_alpha", "value"] > 0).all()  # conditional: only where sampled


def test_importance_per_arch_is_normalised_seeded_and_skips_small_studies(frames, figure_data):
    data = figure_data["importance"]
    again = figures.importance_data(frames)
    pd.testing.assert_frame_equal(data, again)
    for arch in (MNV3, EFF):
        sub = data[data["arch"] == arch]
        assert sub["importance"].sum() == pytest.approx(1.0)
        assert {"temperature", "weight_decay", "smoothing_alpha", "smoothing_k"} <= set(sub["knob"])
    assert "resnet50" not in set(data["arch"])
    assert any("resnet50" in n for n in data.attrs["notes"])


def test_history_best_so_far_and_curves_flags(frames, planted):
    hist = figures.history_data(frames)
    mnv3 = hist[hist["arch"] == MNV3]
    assert mnv3["best_so_far"].is_monotonic_increasing
    assert mnv3["best_so_far"].iloc[-1] == pytest.approx(100 * planted.best[MNV3])
    assert set(mnv3["state"]) == {"complete", "pruned"}
    data = figures.curves_data(frames)
    best_lines = data[data["best"]]
    assert set(best_lines["arch"]) == {MNV3, EFF, "resnet50"}
    assert best_lines[best_lines["arch"] == MNV3]["top1"].max() == pytest.approx(100 * planted.best[MNV3])
    assert set(data["state"]) >= {"complete", "pruned", "running"}


def test_smoothing_on_vs_off(frames):
    data = figures.smoothing_data(frames)
    gains = figures.smoothing_gain(data)
    assert gains[MNV3] == pytest.approx(71.0 - 66.0) and gains[EFF] == pytest.approx(74.0 - 70.0)
    assert "resnet50" not in gains  # resnet50 never ran smoothing: no on-vs-off to report
    on = data[data["on"]]
    assert (on["mode"] == "topk").all() and (on["alpha"] > 0).all() and (on["k"] >= 1).all()


def test_size_data(frames, planted):
    data = figures.size_data(frames).set_index("arch")
    assert data.loc[MNV3, "params_m"] == pytest.approx(planted.params_count[MNV3] / 1e6)
    assert data.loc[EFF, "best"] == pytest.approx(74.0) and data.loc[EFF, "baseline"] == pytest.approx(44.5)


@pytest.mark.parametrize("stem", [f[0] for f in figures.FIGURES if f[0] != "warm"])  # warm: test_warm_figure.py
def test_every_figure_renders_from_its_data_and_draws_the_title_it_states(figure_data, stem):
    plot_fn = next(f.plot for f in figures.FIGURES if f.stem == stem)
    data = figure_data[stem]
    assert not data.empty
    fig = plot_fn(data)
    assert fig.axes and " ".join(fig.get_suptitle().split()) == data.attrs["title"]  # wrapped, same words
    assert layout_problems(fig) == []  # two efficient archs and ResNet-50 from a second source
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("stem", [f[0] for f in figures.FIGURES if f[0] != "curves"])
def test_no_complete_trial_gives_empty_frames_with_a_reason(frames, stem):
    trials = frames.trials
    unfinished = trials.assign(state=np.where(trials["state"] == "complete", "running", trials["state"]))
    data_fn = next(f for f in figures.FIGURES if f[0] == stem)[2]
    data = data_fn(tables.Frames(unfinished, frames.curves), "knn_top1")
    assert data.empty and data.attrs["reason"]


def test_shift_with_one_complete_trial_says_so_rather_than_that_no_knob_was_searched(frames):
    trials = frames.trials
    first = trials.index[trials["state"] == "complete"][0]
    one = trials.assign(state=np.where(trials.index == first, "complete", "running"))
    data = figures.shift_data(tables.Frames(one, frames.curves), "knn_top1")
    assert data.empty
    assert data.attrs["reason"] == "only one trial completed: there is no second recipe to compare its knobs with"


def test_linear_metric_ranks_by_linear_probe(frames):
    data = figures.comparison_data(frames, "linear_top1").set_index(["arch", "kind"])
    assert data.loc[(MNV3, "best")].top1 == pytest.approx(74.0)
    assert math.isclose(data.loc[(MNV3, "baseline")].top1, 44.0)


def with_floor(frames, knn_by_arch: dict[str, float]) -> tables.Frames:
    """`frames` with a random-init floor row (seed 0) per arch: its val kNN as given, the other scores alike."""
    rows = [dict(source="s", study=f"x/{arch}", arch=arch, kind="sweep", seed=0,
                 **{m: value for m in ("knn_top1", "linear_top1", "test_knn_top1", "test_linear_top1")})
            for arch, value in knn_by_arch.items()]
    return frames._replace(floor=pd.DataFrame(rows, columns=frames.floor.columns))


def test_the_comparison_title_says_whether_the_best_recipe_beats_the_untrained_network(frames):
    # planted bests: MNV3 71.0, EFF 74.0 (val kNN, percent)
    above = figures.comparison_data(with_floor(frames, {MNV3: 0.60, EFF: 0.70}))
    assert above.attrs["title"] == ("The searched recipe lifts efficient nets by +29.5 to +30.0 points over the "
                                    "ResNet-50 settings and above the untrained network")
    below = figures.comparison_data(with_floor(frames, {MNV3: 0.80, EFF: 0.70}))
    assert below.attrs["title"] == ("The searched recipe lifts efficient nets by +29.5 to +30.0 points over the "
                                    f"ResNet-50 settings, but {MNV3} still scores below the untrained network")
    floors = below[below["kind"] == "floor"].set_index("arch")["top1"]
    assert floors.to_dict() == pytest.approx({MNV3: 80.0, EFF: 70.0})


def test_each_figure_states_what_its_data_shows(figure_data):
    data = figure_data
    titles = {stem: frame.attrs["title"] for stem, frame in data.items()}
    # planted: MNV3 71.0 vs 41.0 (+30.0), EFF 74.0 vs 44.5 (+29.5); resnet50 is the reference, not "lifted"
    assert titles["comparison"] == ("The searched recipe lifts efficient nets by +29.5 to +30.0 points over the "
                                    "ResNet-50 settings")
    assert titles["smoothing"] == ("Smoothed InfoNCE, best on minus best off: +4.0 pts (efficientnet_b0), "
                                   "+5.0 pts (mobilenetv3_large_100)")
    # crop_min_scale: the trial within a point of the best ran the ResNet-50 value (0.2), so it did not move
    assert titles["shift"] == ("Recipe shift: 7 of 8 knobs move away from the ResNet-50 settings for every "
                               "efficient net")
    assert not data["shift"].set_index("knob").loc["crop_min_scale", "knob_moved"].any()
    # 23.508M / 4.007M parameters = 5.87x
    assert titles["size"] == "efficientnet_b0 reaches 74.0% with 5.9x fewer parameters than resnet50 (82.0%)"
    imp = data["importance"]
    tops = {a: imp.loc[imp[imp["arch"] == a]["importance"].idxmax(), "knob"] for a in (EFF, MNV3)}  # arch order
    assert titles["importance"] == (f"{tops[EFF]} matters most for every arch" if len(set(tops.values())) == 1
                                    else "Which knobs matter: " + ", ".join(f"{k} for {a}" for a, k in tops.items()))


def test_latency_data_puts_the_best_swept_recipe_against_the_plotted_latency(frames, planted):
    data = figures.latency_data(frames).set_index("arch")
    assert data.loc[EFF, "latency_ms"] == pytest.approx(sweepdb.latency_ms(planted.params_count[EFF]))  # 1 thread
    assert data.loc[EFF, "best"] == pytest.approx(74.0) and data.loc[EFF, "basis"] == "swept, 1 seed"
    assert data.loc[EFF, "baseline"] == pytest.approx(44.5)
    assert data.loc[MNV3, "params_m"] == pytest.approx(planted.params_count[MNV3] / 1e6)
    # efficientnet_b0 is faster (fewer parameters planted) and more accurate: the MobileNet is off the front
    assert bool(data.loc[EFF, "pareto"]) and not bool(data.loc[MNV3, "pareto"])
    assert "Planted CPU (cpu, 1 thread), 32 px" in data.attrs["caption"]


def test_latency_data_takes_the_confirmed_winner_and_its_floor_where_confirm_ran(tmp_path):
    from lightrecipe.reports import tables
    from tests.reports import confirmdb

    data = figures.latency_data(tables.load(str(confirmdb.confirmed_sweep(tmp_path / "sweep")))).set_index("arch")
    row = data.loc[confirmdb.ARCH]
    assert row["best"] == pytest.approx(80.0) and row["basis"] == "confirmed, 3 seeds"  # #2's mean over seeds
    assert row["baseline"] == pytest.approx(55.0)  # the ResNet-50 settings, confirmed
    assert row["floor"] == pytest.approx(72.0)  # seeds 0, 1, 2 (seed 0 measured twice counts once)


def test_the_pareto_front_keeps_only_archs_no_faster_arch_beats():
    from lightrecipe.reports.figures.latency import pareto

    front = pareto(pd.Series([1.0, 2.0, 3.0, 4.0]), pd.Series([50.0, 70.0, 60.0, float("nan")]))
    assert front == [True, True, False, False]
