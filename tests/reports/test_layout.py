"""Every figure reads cleanly whatever the sweep: one, two or four archs, and names a database can hold.

`layout.layout_problems` finds texts cut off at the figure's edge or lying on each other after layout;
`layout.invisible_lines` finds curves that draw nothing. The first test shows both find what they look for.
"""

from __future__ import annotations

import pytest
from matplotlib.lines import Line2D

from lightrecipe.reports import figures, tables
from lightrecipe.reports.figures import style
from tests.reports import sweepdb
from tests.reports.layout import invisible_lines, layout_problems

STEMS = [f.stem for f in figures.FIGURES]
# Figures whose data needs studies these planted sweeps do not have: warm against cold (test_warm_figure.py)
LAYOUT_STEMS = [stem for stem in STEMS if stem != "warm"]
ARCH_SETS = {1: ("mobilenetv3_small_050",), 2: ("mobilenetv3_large_100", "efficientnet_b0"),
             4: tuple(sweepdb.ARCH_PARAMS)}


# One arch (the sweep the clipped legends were seen on) stays in the fast loop; two and four archs render
# 16 more figures and run in `make test`.
@pytest.fixture(scope="module", ids=lambda n: f"{n}-arch",
                params=[1, pytest.param(2, marks=pytest.mark.slow), pytest.param(4, marks=pytest.mark.slow)])
def arch_frames(request, tmp_path_factory) -> tables.Frames:
    folder = sweepdb.arch_sweep(tmp_path_factory.mktemp(f"archs{request.param}") / "sweep", ARCH_SETS[request.param])
    return tables.load(str(folder))


def test_the_checks_find_a_cut_off_legend_crowded_ticks_and_an_invisible_curve():
    fig = style.new_figure(2.0, 2.0)
    ax = fig.add_subplot()
    ax.plot([0.5], [1.0], gid="one epoch")
    ax.set_xticks([0.45, 0.55], ["0.000100", "0.000125"])
    ax.set_xlim(0, 1)
    fig.legend(handles=[Line2D([], [], label=f"entry {i}") for i in range(6)], loc="outside lower center", ncols=6)
    problems = layout_problems(fig)
    assert any("figure legend is cut off" in p for p in problems), problems
    assert any("'0.000100'" in p and "'0.000125'" in p and "run into each other" in p for p in problems), problems
    assert invisible_lines(fig) == ["'panel': one epoch draws nothing"]


@pytest.mark.parametrize("stem", LAYOUT_STEMS)
def test_figure_reads_cleanly_for_one_two_and_four_archs(arch_frames, stem):
    spec = next(f for f in figures.FIGURES if f.stem == stem)
    data = spec.data(arch_frames, "knn_top1")
    assert not data.empty, data.attrs.get("reason")
    fig = spec.plot(data)
    assert layout_problems(fig) == []
    assert invisible_lines(fig) == []


def test_every_trial_has_a_visible_curve_even_one_pruned_after_its_first_epoch(arch_frames):
    data = figures.curves_data(arch_frames)
    lengths = data.groupby(["study", "number", "state"]).size()
    assert ("pruned" in lengths[lengths == 1].index.get_level_values("state")), "the sweep lacks the case"
    fig = figures.plot_curves(data)
    drawn = {line.get_gid() for ax in fig.axes for line in ax.get_lines()}
    assert drawn == {f"{s} #{n}" for s, n in zip(data["study"], data["number"])}
    assert invisible_lines(fig) == []


@pytest.mark.slow  # eight more figures of six studies; test_hostile.py checks the report files in the fast loop
@pytest.mark.parametrize("stem", LAYOUT_STEMS)
def test_hostile_names_leave_every_figure_readable(hostile, stem):
    frames = tables.load(str(hostile[0]))
    spec = next(f for f in figures.FIGURES if f.stem == stem)
    data = spec.data(frames, "knn_top1")
    assert not data.empty, data.attrs.get("reason")
    assert layout_problems(spec.plot(data)) == []
