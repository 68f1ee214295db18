"""The warm-start figure from planted studies: a warm study against the cold study of the same space and
budget, what the warm one needed to reach the cold best, and warm-started trials marked."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from lightrecipe.reports import figures, tables
from lightrecipe.search.store import records
from tests.reports.layout import layout_problems
from tests.reports.sweepdb import BASELINE_PARAMS, Planted, build_study

ARCH = "mobilenetv3_large_100"


def trial(temperature: float, final: float | None, state: str = "complete", warm_from: int | None = None):
    epochs = 3 if state == "pruned" else 6
    return Planted({"temperature": temperature, "base_lr": 0.05}, final, state=state, epochs=epochs,
                   warm_from=warm_from)


def planted(tmp_path, name: str, trials: list[Planted], warm: bool = False) -> str:
    folder = tmp_path / name
    folder.mkdir()
    url = records.default_storage_url(str(folder))
    build_study(url, arch=ARCH, trials=[Planted(BASELINE_PARAMS, 0.41, baseline=True), *trials],
                params_count=4_000_000, warm_source="paper-efficient/resnet10t" if warm else None)
    return str(folder)


@pytest.fixture
def sources(tmp_path):
    cold = planted(tmp_path, "cold", [trial(0.3, 0.5), trial(0.4, 0.6, "pruned"), trial(0.1, 0.7), trial(0.2, 0.65)])
    warm = planted(tmp_path, "warm", [trial(0.1, 0.72, warm_from=7), trial(0.25, 0.55, warm_from=3),
                                      trial(0.3, 0.6), trial(0.35, 0.66)], warm=True)
    longer = planted(tmp_path, "cold-longer", [trial(0.1, 0.9)] * 6)  # another budget: never compared
    return cold, warm, longer


def test_warm_reaches_the_cold_best_sooner_and_says_so(sources):
    cold, warm, longer = sources
    data = figures.warm_data(tables.load([cold, warm, longer]))
    assert set(data["source"]) == {cold, warm}
    pairs = data.attrs["pairs"]
    assert len(pairs) == 1
    p = pairs.iloc[0]
    # cold: best 70% at its 4th trial, after 6 + 6 + 3 (pruned) + 6 epochs at 20 device-s each; warm's first
    # warm-started trial (72%) is its 2nd, after 6 + 6
    assert (p.cold_best, p.cold_place, p.cold_device_s) == (pytest.approx(70.0), 4, 420.0)
    assert (p.warm_place, p.warm_device_s, p.warm_best) == (2, 240.0, pytest.approx(72.0))
    assert data.attrs["title"] == (f"{ARCH}: warm reached the cold best in 1 of 1 pairs, median 2 trials / 240 "
                                   "device-s against cold's 4 / 420")
    marked = data[data["warm_started"]]
    assert list(zip(marked["source"], marked["number"])) == [(warm, 1), (warm, 2)]
    fig = figures.plot_warm(data)
    assert " ".join(fig.get_suptitle().split()) == data.attrs["title"] and layout_problems(fig) == []
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_a_cold_study_of_the_same_budget_there_is_nothing_to_draw(sources):
    _, warm, longer = sources
    data = figures.warm_data(tables.load([warm, longer]))
    assert data.empty and "same space, arch, epochs and number of trials" in data.attrs["reason"]


def test_the_trial_table_and_the_history_mark_warm_started_trials(sources):
    _, warm, _ = sources
    frames = tables.load([warm])
    rows = frames.trials.set_index("number")
    assert rows.loc[1, "warm_source_trial"] == 7 and rows.loc[1, "warm_start"] == "paper-efficient/resnet10t"
    assert rows.loc[1, "warm_changes"] == "temperature 0.6 -> 0.5 (clipped)"
    assert pd.isna(rows.loc[3, "warm_source_study"]) and rows.loc[3, "warm_changes"] == ""
    history = figures.history_data(frames)
    assert history.set_index("number")["warm_started"].to_dict() == {0: False, 1: True, 2: True, 3: False, 4: False}


def test_the_random_init_floor_is_drawn_where_the_sources_measured_it(sources):
    """Two short studies can both sit below the untrained backbone: the figure shows the line to beat."""
    import optuna

    cold, warm, _ = sources
    cold_study = optuna.load_study(study_name=None, storage=records.default_storage_url(cold))
    cold_study.set_user_attr(records.FLOOR, [{"seed": 0, "knn_top1": 0.8}, {"seed": 1, "knn_top1": 0.7}])
    data = figures.warm_data(tables.load([cold, warm]))
    assert data.attrs["floors"] == {ARCH: pytest.approx(75.0)}  # the mean over the floor's seeds
    fig = figures.plot_warm(data)
    (ax,) = [a for a in fig.axes if a.get_title() == ARCH]
    assert [tuple(line.get_ydata()) for line in ax.get_lines() if line.get_linestyle() == "--"] == [(75.0, 75.0)]
    assert "random-init floor" in " ".join(t.get_text() for t in fig.legends[0].get_texts())
    assert layout_problems(fig) == []


def test_without_a_measured_floor_no_line_is_drawn(sources):
    cold, warm, _ = sources
    data = figures.warm_data(tables.load([cold, warm]))
    assert data.attrs["floors"] == {}
    fig = figures.plot_warm(data)
    assert not [line for ax in fig.axes for line in ax.get_lines() if line.get_linestyle() == "--"]
