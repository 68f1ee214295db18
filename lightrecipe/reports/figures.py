"""The report's figures, each as data first (`<name>_data(...) -> DataFrame`) and drawing second
(`plot_<name>(data) -> Figure`). Accuracies in the data frames are percentages (column `top1`).

An empty data frame means "nothing to show"; its `attrs["reason"]` says why, and the report prints that
instead of the figure. `plot_*` functions take the frame `*_data` returned (plus the arch order and metric
stored in its attrs) and never read a database.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import matplotlib
import numpy as np
import pandas as pd

from lightrecipe.reports import style, tables
from lightrecipe.reports.tables import as_percent, scored
from lightrecipe.trainers.recipe import FIELD_NAMES, Recipe

matplotlib.rcParams.update(style.RC)

POINT = 1.0  # "within 1 point of the best": one percentage point of top-1
MIN_TRIALS_FOR_IMPORTANCE = 8  # fewer complete trials than this cannot separate eight-odd knobs' effects
IMPORTANCE_SEED = 0  # fANOVA's random forest: fixed, so the same database gives the same figure
# Recipe fields that describe the run rather than the recipe: never shown as knobs that "shift".
NOT_KNOBS = ("arch", "seed", "data_root", "num_workers", "compile", "channels_last", "precision")
RESNET50_SETTINGS = {f.name: f.default for f in dataclasses.fields(Recipe)}  # the field defaults are MoCo v2's
METRIC_LABELS = {"knn_top1": "kNN top-1", "linear_top1": "linear-probe top-1"}


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def _empty(reason: str, **attrs: Any) -> pd.DataFrame:
    frame = pd.DataFrame()
    frame.attrs.update(reason=reason, **attrs)
    return frame


def _with_top1(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Scored (complete) trials with `top1` in percent (scaled on the whole column, so all rows agree)."""
    if metric not in trials.columns:
        return trials.iloc[0:0].assign(top1=pd.Series(dtype=float))
    pct = as_percent(trials[metric]).set_axis(trials.index)
    done = scored(trials, metric)
    return done.assign(top1=pct.loc[done.index])


def _recipe_key(row: pd.Series) -> str:
    """The recipe without its seed: trials with equal keys are repeats of one recipe."""
    return json.dumps({f: _plain(row.get(f"recipe_{f}")) for f in FIELD_NAMES if f != "seed"}, sort_keys=True,
                      default=str)


def _plain(value: Any) -> Any:
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def is_reference_arch(arch: str) -> bool:
    """ResNet-50 itself: the architecture the MoCo v2 settings were made for, shown as the reference."""
    return str(arch).startswith("resnet50")


def _suptitle(fig, text: str) -> None:
    """A bold title wrapped to the figure's width (about 11 characters per inch at 11 pt bold)."""
    import textwrap

    width = max(30, int(fig.get_figwidth() * 11))
    fig.suptitle("\n".join(textwrap.wrap(text, width)))


def _plain_log_axis(axis, values, base: float = 10) -> None:
    """A log axis labelled with plain numbers (0.03, 0.1, 2, 16) instead of 3 x 10^-2; 1-2-5 ticks only when
    the values span less than two decades (more would crowd the labels)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    values = np.asarray(values, dtype=float)
    decades = math.log10(values.max() / values.min()) if len(values) and values.min() > 0 else 0.0
    dense = base == 10 and decades < 2
    axis.set_major_locator(LogLocator(base=base, subs=(1.0, 2.0, 5.0) if dense else (1.0,)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _finding_range(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:+.1f}" if abs(hi - lo) < 0.05 else f"{lo:+.1f} to {hi:+.1f}"


# --- 1. recipe comparison -------------------------------------------------------------------------------


def comparison_data(trials: pd.DataFrame, metric: str = "knn_top1") -> pd.DataFrame:
    """Per arch: the ResNet-50 settings (baseline trials) and the best recipe found, as mean +- std over the
    trials that repeat that recipe (different seeds); `delta` is best minus baseline in points."""
    done = _with_top1(trials, metric)
    order = tables.arch_order(trials)
    if done.empty:
        return _empty(f"no complete trial has a {metric} value yet", order=order, metric=metric)
    done = done.assign(recipe_key=done.apply(_recipe_key, axis=1))
    rows = []
    for arch in order:
        sub = done[done["arch"] == arch]
        if sub.empty:
            continue
        groups = sub.groupby("recipe_key")["top1"].agg(["mean", "std", "size"])
        best_key = groups["mean"].idxmax()
        base = sub[sub["baseline"]]
        best = sub[sub["recipe_key"] == best_key]
        base_mean = float(base["top1"].mean()) if len(base) else math.nan
        for kind, part in (("baseline", base), ("best", best)):
            if part.empty:
                continue
            rows.append(dict(
                arch=arch, kind=kind, top1=float(part["top1"].mean()),
                std=float(part["top1"].std(ddof=1)) if len(part) > 1 else 0.0, n=len(part),
                trials=",".join(str(n) for n in part["number"]),
                params_count=float(part["params_count"].max()),
                delta=float(part["top1"].mean()) - base_mean if kind == "best" else 0.0,
            ))
    frame = pd.DataFrame(rows)
    frame.attrs.update(order=order, metric=metric)
    return frame


def plot_comparison(data: pd.DataFrame):
    order = [a for a in data.attrs["order"] if a in set(data["arch"])]
    colors = style.arch_colors(data.attrs["order"])
    fig = style.new_figure(max(5.5, 1.6 * len(order) + 2.0), 3.8)
    ax = fig.add_subplot()
    width = 0.38
    for i, arch in enumerate(order):
        for kind, dx in (("baseline", -width / 2), ("best", width / 2)):
            row = data[(data["arch"] == arch) & (data["kind"] == kind)]
            if row.empty:
                continue
            r = row.iloc[0]
            is_base = kind == "baseline"
            ax.bar(i + dx, r.top1, width, color="white" if is_base else colors[arch],
                   edgecolor=style.BASELINE_COLOR if is_base else colors[arch], hatch="///" if is_base else None,
                   linewidth=1.0, yerr=r["std"] if r.n > 1 else None, capsize=3,
                   error_kw=dict(elinewidth=1, ecolor="#444444"))
            ax.annotate(f"{r.top1:.1f}", (i + dx, r.top1 + (r["std"] if r.n > 1 else 0)), xytext=(0, 2),
                        textcoords="offset points", ha="center", va="bottom", fontsize=8)
        best = data[(data["arch"] == arch) & (data["kind"] == "best")]
        base = data[(data["arch"] == arch) & (data["kind"] == "baseline")]
        if len(best) and len(base):
            top = max(best.iloc[0].top1 + best.iloc[0]["std"], base.iloc[0].top1 + base.iloc[0]["std"])
            ax.annotate(f"{best.iloc[0].delta:+.1f} pts", (i, top), xytext=(0, 14), textcoords="offset points",
                        ha="center", fontsize=9, fontweight="bold", color=colors[arch])
    ax.set_xticks(range(len(order)), order)
    ax.set_ylabel(f"val {metric_label(data.attrs['metric'])} (%)")
    # Headroom above the tallest bar for its value and delta labels; ticks stop at 100%.
    ax.set_ylim(0, data["top1"].max() + data["std"].fillna(0).max() + 16)
    ax.set_yticks(range(0, 101, 20))
    ax.grid(axis="x", visible=False)
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(facecolor="white", edgecolor=style.BASELINE_COLOR, hatch="///", label=style.BASELINE_LABEL),
                       Patch(facecolor="#888888", label=f"{style.BEST_LABEL} (arch colour)")],
              loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=2, frameon=False)
    best_rows = data[data["kind"] == "best"]
    efficient = best_rows[~best_rows["arch"].map(is_reference_arch)]
    deltas = [d for d in (efficient if len(efficient) else best_rows)["delta"] if np.isfinite(d)]
    if deltas and min(deltas) > 0:
        who = "efficient nets" if len(efficient) else "every arch"
        title = f"The searched recipe lifts {who} by {_finding_range(deltas)} points over the ResNet-50 settings"
    elif deltas:
        title = f"Best recipe found vs ResNet-50 settings ({_finding_range(deltas)} points)"
    else:
        title = "Best recipe found per arch (no ResNet-50-settings trial to compare with)"
    _suptitle(fig, title)
    ax.set_title("bars: mean over repeated seeds; whiskers: std where a recipe was repeated", fontsize=8,
                 color="#555555")
    return fig


# --- 2. recipe shift ------------------------------------------------------------------------------------


def _knobs(done: pd.DataFrame) -> list[str]:
    knobs = []
    for field in FIELD_NAMES:
        col = f"recipe_{field}"
        if field in NOT_KNOBS or col not in done.columns:
            continue
        values = done[col].dropna().map(_plain)
        if values.astype(str).nunique() > 1:
            knobs.append(field)
    return knobs


def _int_if_whole(value: Any) -> Any:
    """16.0 -> 16 (integer fields read back as floats when a column also holds NaN)."""
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1:
        return int(value)
    return value


def _is_numeric(values: pd.Series) -> bool:
    return all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
               for v in values.dropna())


def shift_data(trials: pd.DataFrame, metric: str = "knn_top1") -> pd.DataFrame:
    """Knob by knob and arch by arch: the ResNet-50 value (the arch's baseline trial, else MoCo v2's default),
    the best trial's value, and the range (numbers) or set (choices) of values among trials within
    `POINT` of the best. Knobs are the recipe fields that differ between complete trials."""
    done = _with_top1(trials, metric)
    order = tables.arch_order(trials)
    if done.empty:
        return _empty(f"no complete trial has a {metric} value yet", order=order, metric=metric)
    knobs = _knobs(done)
    if not knobs:
        return _empty("every complete trial ran the same recipe: no knob was searched", order=order, metric=metric)
    rows = []
    for arch in order:
        sub = done[done["arch"] == arch]
        if sub.empty:
            continue
        best = sub.sort_values(["top1", "number"], ascending=[False, True]).iloc[0]
        near = sub[sub["top1"] >= best.top1 - POINT]
        base = sub[sub["baseline"]]
        for knob in knobs:
            col = f"recipe_{knob}"
            numeric = _is_numeric(done[col])
            ref = _plain(base.iloc[0][col]) if len(base) else RESNET50_SETTINGS[knob]
            values = near[col].dropna().map(_plain).map(_int_if_whole)
            rows.append(dict(
                knob=knob, arch=arch, numeric=numeric, resnet50=_int_if_whole(ref), best=_int_if_whole(_plain(best[col])),
                near_min=float(values.min()) if numeric and len(values) else math.nan,
                near_max=float(values.max()) if numeric and len(values) else math.nan,
                near_values=sorted({str(v) for v in values}), n_near=len(near), best_top1=float(best.top1),
                moved=(not (values.min() <= ref <= values.max())) if numeric and len(values) and ref is not None
                else str(ref) not in {str(v) for v in values},
            ))
    frame = pd.DataFrame(rows)
    frame.attrs.update(order=order, metric=metric)
    return frame


def plot_shift(data: pd.DataFrame):
    knobs = list(dict.fromkeys(data["knob"]))
    order = [a for a in data.attrs["order"] if a in set(data["arch"])]
    colors = style.arch_colors(data.attrs["order"])
    ncols = min(4, len(knobs))
    nrows = math.ceil(len(knobs) / ncols)
    fig = style.new_figure(2.7 * ncols + 0.6, 0.5 + nrows * (0.45 * len(order) + 1.0))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, knob in zip(axes, knobs):
        part = data[data["knob"] == knob].set_index("arch")
        numeric = bool(part["numeric"].iloc[0])
        ref = part["resnet50"].iloc[0]
        ax.grid(axis="y", visible=False)
        if numeric:
            vals = pd.concat([part["near_min"], part["near_max"], part["best"].astype(float),
                              part["resnet50"].astype(float)]).dropna()
            if (vals > 0).all() and vals.max() / vals.min() >= 10:
                ax.set_xscale("log")
                _plain_log_axis(ax.xaxis, vals)
            for y, arch in enumerate(order):
                if arch not in part.index:
                    continue
                r = part.loc[arch]
                ax.plot([r.near_min, r.near_max], [y, y], color=colors[arch], alpha=0.35, linewidth=7,
                        solid_capstyle="round")
                ax.scatter([r.best], [y], color=colors[arch], s=36, zorder=4, edgecolor="white", linewidth=0.5)
                ax.scatter([float(r.resnet50)], [y], **style.BASELINE_MARKER)
        else:
            cats = sorted({str(v) for v in part["resnet50"]} | {str(v) for v in part["best"]}
                          | {v for vs in part["near_values"] for v in vs})
            pos = {c: i for i, c in enumerate(cats)}
            for y, arch in enumerate(order):
                if arch not in part.index:
                    continue
                r = part.loc[arch]
                ax.scatter([pos[v] for v in r.near_values], [y] * len(r.near_values), color=colors[arch],
                           alpha=0.35, s=110, linewidth=0)
                ax.scatter([pos[str(r.best)]], [y], color=colors[arch], s=36, zorder=4, edgecolor="white")
                ax.scatter([pos[str(r.resnet50)]], [y], **style.BASELINE_MARKER)
            ax.set_xticks(range(len(cats)), cats)
            ax.set_xlim(-0.6, len(cats) - 0.4)
        ax.set_yticks(range(len(order)), order if ax.get_subplotspec().is_first_col() else [""] * len(order))
        ax.set_ylim(-0.7, len(order) - 0.3)
        ax.invert_yaxis()
        eff = part[~part.index.map(is_reference_arch)]
        moved = bool((eff if len(eff) else part)["moved"].all())
        ax.set_title(knob + ("  (moved)" if moved else ""), fontweight="bold" if moved else "normal")
    for ax in axes[len(knobs):]:
        ax.set_visible(False)
    eff = data[~data["arch"].map(is_reference_arch)]
    eff = eff if len(eff) else data
    moved = sorted({k for k in knobs if eff.loc[eff["knob"] == k, "moved"].all()})
    who = "every efficient net" if len(eff) < len(data) or not data["arch"].map(is_reference_arch).any() else "every arch"
    _suptitle(fig, f"Recipe shift: {len(moved)} of {len(knobs)} knobs move away from the ResNet-50 settings "
              f"for {who}"
                 if moved else "Recipe shift: best value per arch vs the ResNet-50 settings")
    from matplotlib.lines import Line2D

    fig.legend(handles=[Line2D([], [], **{k: v for k, v in style.BASELINE_MARKER.items() if k in ("marker", "color")},
                               linestyle="", markersize=11, label=style.BASELINE_LABEL),
                        Line2D([], [], marker="o", color="#777777", linestyle="", label=style.BEST_LABEL),
                        Line2D([], [], color="#777777", alpha=0.35, linewidth=7,
                               label=f"within {POINT:g} point of the best")],
               loc="outside lower center", ncols=3)
    return fig


# --- 3. sensitivity -------------------------------------------------------------------------------------


def _dist_log(trials: pd.DataFrame, param: str) -> bool:
    """Whether the parameter was sampled on a log scale (from its Optuna distribution)."""
    for text in trials["distributions"].dropna():
        dists = json.loads(text) if text else {}
        if param in dists:
            return bool(json.loads(dists[param]).get("attributes", {}).get("log", False))
    return False


def sensitivity_data(trials: pd.DataFrame, metric: str = "knn_top1") -> pd.DataFrame:
    """One row per complete trial x searched knob: arch, knob, value, top1, baseline, log (sampled on a log
    scale), numeric."""
    done = _with_top1(trials, metric)
    order = tables.arch_order(trials)
    params = [p for p in tables.searched_params(trials) if f"param_{p}" in done and done[f"param_{p}"].notna().any()]
    if done.empty or not params:
        return _empty("no complete trial with sampled parameters yet", order=order, metric=metric)
    rows = []
    for param in params:
        log = _dist_log(trials, param)
        numeric = _is_numeric(done[f"param_{param}"])
        part = done[done[f"param_{param}"].notna()]
        for _, r in part.iterrows():
            rows.append(dict(arch=r.arch, knob=param, value=_plain(r[f"param_{param}"]), top1=r.top1,
                             baseline=bool(r.baseline), number=r.number, log=log, numeric=numeric))
    frame = pd.DataFrame(rows)
    frame.attrs.update(order=order, metric=metric)
    return frame


def plot_sensitivity(data: pd.DataFrame):
    knobs = list(dict.fromkeys(data["knob"]))
    colors = style.arch_colors(data.attrs["order"])
    ncols = min(4, len(knobs))
    nrows = math.ceil(len(knobs) / ncols)
    fig = style.new_figure(2.7 * ncols + 0.6, 2.4 * nrows + 0.8)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharey=True)).ravel()
    rng = np.random.default_rng(0)  # jitter of categorical points only; fixed so redraws match
    for ax, knob in zip(axes, knobs):
        part = data[data["knob"] == knob]
        numeric = bool(part["numeric"].iloc[0])
        if numeric:
            x = part["value"].astype(float).to_numpy()
            if bool(part["log"].iloc[0]) and (x > 0).all():
                ax.set_xscale("log", base=2 if np.allclose(x, np.round(x)) else 10)
                _plain_log_axis(ax.xaxis, x, base=2 if np.allclose(x, np.round(x)) else 10)
        else:
            cats = sorted({str(v) for v in part["value"]})
            pos = {c: i for i, c in enumerate(cats)}
            x = np.array([pos[str(v)] for v in part["value"]]) + rng.uniform(-0.15, 0.15, len(part))
            ax.set_xticks(range(len(cats)), cats)
            ax.set_xlim(-0.6, len(cats) - 0.4)
        c = [colors[a] for a in part["arch"]]
        base = part["baseline"].to_numpy()
        ax.scatter(x[~base], part["top1"].to_numpy()[~base], c=[ci for ci, b in zip(c, base) if not b], s=22,
                   alpha=0.85, edgecolor="white", linewidth=0.4)
        if base.any():
            ax.scatter(x[base], part["top1"].to_numpy()[base], **style.BASELINE_MARKER)
        ax.set_xlabel(knob + (" (log)" if numeric and ax.get_xscale() == "log" else ""))
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel(f"val {metric_label(data.attrs['metric'])} (%)")
    for ax in axes[len(knobs):]:
        ax.set_visible(False)
    _arch_legend(fig, [a for a in data.attrs["order"] if a in set(data["arch"])], colors)
    _suptitle(fig, "Sensitivity: accuracy of every complete trial against each searched knob")
    return fig


def _arch_legend(fig, archs: list[str], colors: dict[str, str], baseline: bool = True) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", color=colors[a], linestyle="", label=a) for a in archs]
    if baseline:
        handles.append(Line2D([], [], marker="*", color=style.BASELINE_COLOR, linestyle="", markersize=11,
                              label=style.BASELINE_LABEL))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 5))


# --- 4. parameter importance ----------------------------------------------------------------------------


def importance_data(trials: pd.DataFrame, metric: str = "knn_top1", *, seed: int = IMPORTANCE_SEED) -> pd.DataFrame:
    """Per arch: fANOVA importance (Optuna's `FanovaImportanceEvaluator`, seeded) of each searched knob for
    `metric`, normalised to sum to 1.

    A knob that a trial did not sample (a conditional parameter such as `smoothing_alpha` when smoothing is
    off) takes the value the trial's resolved recipe ran with, so conditional knobs are assessed over every
    trial instead of being dropped. Archs with fewer than `MIN_TRIALS_FOR_IMPORTANCE` complete trials are
    skipped, with a note in `attrs["notes"]`.
    """
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    done = _with_top1(trials, metric)
    order = tables.arch_order(trials)
    params = tables.searched_params(trials)
    notes: list[str] = []
    rows = []
    for arch in order:
        sub = done[done["arch"] == arch]
        if len(sub) < MIN_TRIALS_FOR_IMPORTANCE:
            notes.append(f"{arch}: {len(sub)} complete trial(s), importance needs at least "
                         f"{MIN_TRIALS_FOR_IMPORTANCE}")
            continue
        values: dict[str, pd.Series] = {}
        for p in params:
            col = sub[f"param_{p}"] if f"param_{p}" in sub else pd.Series(index=sub.index, dtype=object)
            if f"recipe_{p}" in sub:
                col = col.where(col.notna(), sub[f"recipe_{p}"])
            col = col.map(_plain)
            if col.isna().any() or col.astype(str).nunique() < 2:
                continue  # not resolvable for every trial, or constant within this arch: nothing to attribute
            values[p] = col
        if not values:
            notes.append(f"{arch}: no knob varies across its complete trials")
            continue
        dists = {}
        for p, col in values.items():
            if _is_numeric(col):
                lo, hi = float(col.min()), float(col.max())
                dists[p] = FloatDistribution(lo, hi, log=_dist_log(trials, p) and lo > 0)
            else:
                dists[p] = CategoricalDistribution(sorted({v for v in col}, key=str))
        study = optuna.create_study(direction="maximize")
        study.add_trials([
            optuna.trial.create_trial(
                params={p: (float(values[p][i]) if isinstance(dists[p], FloatDistribution) else values[p][i])
                        for p in values},
                distributions=dists, value=float(sub.at[i, "top1"]))
            for i in sub.index
        ])
        try:
            imp = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=seed))
        except Exception as exc:  # an evaluator that cannot fit this data must not sink the report
            notes.append(f"{arch}: importance could not be evaluated ({type(exc).__name__}: {exc})")
            continue
        for p, v in imp.items():
            rows.append(dict(arch=arch, knob=p, importance=float(v), n_trials=len(sub), evaluator="fANOVA"))
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = _empty("; ".join(notes) or "no complete trials", order=order, metric=metric)
    frame.attrs.update(order=order, metric=metric, notes=notes)
    return frame


def plot_importance(data: pd.DataFrame):
    archs = [a for a in data.attrs["order"] if a in set(data["arch"])]
    colors = style.arch_colors(data.attrs["order"])
    knobs = list(data.groupby("knob")["importance"].mean().sort_values(ascending=True).index)
    fig = style.new_figure(max(4.0, 2.6 * len(archs) + 1.2), 0.9 + 0.3 * len(knobs))
    axes = np.atleast_1d(fig.subplots(1, len(archs), sharey=True, squeeze=False)).ravel()
    for ax, arch in zip(axes, archs):
        part = data[data["arch"] == arch].set_index("knob").reindex(knobs)
        imp = part["importance"].fillna(0).to_numpy()
        ax.barh(range(len(knobs)), imp, color=colors[arch], height=0.7)
        for y, v in enumerate(imp):
            ax.annotate(f"{v:.2f}", (v, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7.5)
        ax.set_yticks(range(len(knobs)), knobs)
        ax.set_xlim(0, min(1.0, imp.max() * 1.3 + 0.02))
        ax.set_xlabel("importance (fANOVA, sums to 1)")
        n = int(data.loc[data["arch"] == arch, "n_trials"].iloc[0])
        ax.set_title(f"{arch}  (n = {n})", color=colors[arch], fontweight="bold")
        ax.grid(axis="y", visible=False)
    tops = {a: data[data["arch"] == a].sort_values("importance", ascending=False)["knob"].iloc[0] for a in archs}
    if len(set(tops.values())) == 1:
        _suptitle(fig, f"{next(iter(tops.values()))} matters most for every arch")
    else:
        _suptitle(fig, "Which knobs matter: " + ", ".join(f"{k} for {a}" for a, k in tops.items()))
    return fig


# --- 5. optimisation history and learning curves --------------------------------------------------------


def history_data(trials: pd.DataFrame, metric: str = "knn_top1") -> pd.DataFrame:
    """One row per trial with a value: study, arch, number, state, baseline, top1 (pruned trials keep their
    last value) and best_so_far (best complete top1 up to this trial number)."""
    order = tables.arch_order(trials)
    if metric not in trials.columns or trials.empty:
        return _empty("no trials", order=order, metric=metric)
    pct = as_percent(trials[metric]).set_axis(trials.index)
    has = trials[np.isfinite(pct) & trials["state"].isin(["complete", "pruned"])]
    if has.empty or not (has["state"] == "complete").any():
        return _empty(f"no complete trial has a {metric} value yet", order=order, metric=metric)
    frame = has[["source", "study", "arch", "number", "state", "baseline"]].assign(top1=pct.loc[has.index])
    frame = frame.sort_values(["source", "study", "number"]).reset_index(drop=True)
    complete_top1 = frame["top1"].where(frame["state"] == "complete")
    frame["best_so_far"] = complete_top1.groupby([frame["source"], frame["study"]]).cummax()
    frame["best_so_far"] = frame.groupby(["source", "study"])["best_so_far"].ffill()
    frame.attrs.update(order=order, metric=metric)
    return frame


def _studies_in_order(data: pd.DataFrame) -> list[tuple[str, str]]:
    """(source, study) pairs ordered like the archs, so panels line up with the other figures."""
    rank = {a: i for i, a in enumerate(data.attrs["order"])}
    pairs = data[["source", "study", "arch"]].drop_duplicates()
    pairs = pairs.assign(rank=pairs["arch"].map(rank)).sort_values(["rank", "source", "study"])
    return list(zip(pairs["source"], pairs["study"]))


def _study_panels(n: int) -> tuple[int, int]:
    ncols = min(3, n)
    return math.ceil(n / ncols), ncols


def plot_history(data: pd.DataFrame):
    colors = style.arch_colors(data.attrs["order"])
    studies = _studies_in_order(data)
    nrows, ncols = _study_panels(len(studies))
    fig = style.new_figure(3.4 * ncols + 0.4, 2.7 * nrows + 0.7)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharey=True)).ravel()
    from matplotlib.ticker import MaxNLocator

    multi_source = len({s for s, _ in studies}) > 1
    for ax, (source, study) in zip(axes, studies):
        part = data[(data["source"] == source) & (data["study"] == study)]
        color = colors[part["arch"].iloc[0]]
        comp = part[(part["state"] == "complete") & ~part["baseline"]]
        pruned = part[part["state"] == "pruned"]
        base = part[part["baseline"] & (part["state"] == "complete")]
        ax.scatter(pruned["number"], pruned["top1"], color=color, alpha=style.FADED_ALPHA, s=16, marker="v",
                   label="pruned (last value)")
        ax.scatter(comp["number"], comp["top1"], color=color, s=20, edgecolor="white", linewidth=0.4,
                   label="complete")
        if len(base):
            ax.scatter(base["number"], base["top1"], **style.BASELINE_MARKER, label=style.BASELINE_LABEL)
        steps = part.dropna(subset=["best_so_far"])
        ax.step(steps["number"], steps["best_so_far"], where="post", color=color, linewidth=1.6,
                label="best so far")
        ax.set_title(study + (f"\n{source}" if multi_source else ""), fontsize=8.5)
        ax.set_xlabel("trial number")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel(f"val {metric_label(data.attrs['metric'])} (%)")
    for ax in axes[len(studies):]:
        ax.set_visible(False)
    from matplotlib.lines import Line2D

    grey = "#666666"
    fig.legend(handles=[Line2D([], [], marker="o", color=grey, linestyle="", label="complete"),
                        Line2D([], [], marker="v", color=grey, alpha=style.FADED_ALPHA + 0.15, linestyle="",
                               label="pruned (last value)"),
                        Line2D([], [], marker="*", color=style.BASELINE_COLOR, markersize=11, linestyle="",
                               label=style.BASELINE_LABEL),
                        Line2D([], [], color=grey, linewidth=1.6, drawstyle="steps-post", label="best so far")],
               loc="outside lower center", ncols=4)
    _suptitle(fig, "Optimisation history: the best recipe so far, trial by trial")
    return fig


def curves_data(curves: pd.DataFrame, trials: pd.DataFrame, metric: str = "knn_top1") -> pd.DataFrame:
    """One row per trial x epoch: study, arch, number, state, baseline, best (the arch's best trial), epoch and
    top1 (the per-epoch `metric` if the history has it, else the objective Optuna recorded)."""
    order = tables.arch_order(trials)
    if curves.empty:
        return _empty("no trial reported an epoch yet", order=order, metric=metric)
    column = metric if metric in curves.columns and curves[metric].notna().any() else "objective_value"
    shown = metric if column == metric else "objective"
    frame = curves[["source", "study", "arch", "number", "state", "baseline", "epoch"]].assign(
        top1=as_percent(curves[column]).set_axis(curves.index))
    frame = frame[np.isfinite(frame["top1"])]
    if frame.empty:
        return _empty(f"no per-epoch {column} values", order=order, metric=metric)
    best = tables.best_trials(trials, metric)
    best_keys = set(zip(best["source"], best["study"], best["number"]))
    frame = frame.assign(best=[k in best_keys for k in zip(frame["source"], frame["study"], frame["number"])])
    frame.attrs.update(order=order, metric=shown)
    return frame.reset_index(drop=True)


def plot_curves(data: pd.DataFrame):
    colors = style.arch_colors(data.attrs["order"])
    studies = _studies_in_order(data)
    nrows, ncols = _study_panels(len(studies))
    fig = style.new_figure(3.4 * ncols + 0.4, 2.7 * nrows + 0.7)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False, sharey=True)).ravel()
    for ax, (source, study) in zip(axes, studies):
        part = data[(data["source"] == source) & (data["study"] == study)]
        color = colors[part["arch"].iloc[0]]
        for (number, state, baseline, best), line in part.groupby(["number", "state", "baseline", "best"]):
            line = line.sort_values("epoch")
            if baseline:
                kw = dict(color=style.BASELINE_COLOR, linestyle="--", linewidth=1.3, alpha=0.9, zorder=4)
            elif best:
                kw = dict(color=color, linewidth=2.4, zorder=5)
            elif state == "complete":
                kw = dict(color=color, linewidth=1.0, alpha=0.75)
            elif state == "running":
                kw = dict(color=color, linewidth=1.0, linestyle=":", alpha=0.9)
            else:  # pruned, failed, diverged: faded
                kw = dict(color=color, linewidth=0.9, alpha=style.FADED_ALPHA)
            ax.plot(line["epoch"], line["top1"], **kw)
        ax.set_title(study, fontsize=8.5)
        ax.set_xlabel("epoch")
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel(f"val {metric_label(data.attrs['metric'])} (%)")
    for ax in axes[len(studies):]:
        ax.set_visible(False)
    from matplotlib.lines import Line2D

    fig.legend(handles=[Line2D([], [], color="#555555", linewidth=2.4, label=style.BEST_LABEL),
                        Line2D([], [], color="#555555", linewidth=1.0, label="complete"),
                        Line2D([], [], color="#555555", linewidth=0.9, alpha=style.FADED_ALPHA,
                               label="pruned / failed"),
                        Line2D([], [], color="#555555", linestyle=":", label="running"),
                        Line2D([], [], color=style.BASELINE_COLOR, linestyle="--", label=style.BASELINE_LABEL)],
               loc="outside lower center", ncols=5)
    _suptitle(fig, "Learning curves: pruned trials (faded) stopped early, the best recipe in bold")
    return fig


# --- 6. smoothing ablation ------------------------------------------------------------------------------


def smoothing_data(trials: pd.DataFrame, metric: str = "knn_top1") -> pd.DataFrame:
    """One row per complete trial: arch, on (smoothed InfoNCE with alpha > 0), mode, alpha, k, top1, baseline."""
    done = _with_top1(trials, metric)
    order = tables.arch_order(trials)
    need = ("recipe_smoothing", "recipe_smoothing_alpha", "recipe_smoothing_k")
    if done.empty or any(c not in done for c in need):
        return _empty(f"no complete trial has a {metric} value and a recorded recipe", order=order, metric=metric)
    done = done.dropna(subset=list(need))
    alpha = pd.to_numeric(done["recipe_smoothing_alpha"], errors="coerce").fillna(0.0)
    on = (done["recipe_smoothing"].astype(str) != "none") & (alpha > 0)
    frame = pd.DataFrame(dict(
        arch=done["arch"], on=on, mode=done["recipe_smoothing"].astype(str), alpha=alpha,
        k=pd.to_numeric(done["recipe_smoothing_k"], errors="coerce"), top1=done["top1"], baseline=done["baseline"],
        number=done["number"],
    )).reset_index(drop=True)
    if not frame["on"].any():
        return _empty("no complete trial used smoothed InfoNCE (smoothing_alpha > 0)", order=order, metric=metric)
    frame.attrs.update(order=order, metric=metric)
    return frame


def smoothing_gain(data: pd.DataFrame) -> dict[str, float]:
    """Per arch: best top1 with smoothing on minus best with it off (points); archs lacking either are left out."""
    out = {}
    for arch, part in data.groupby("arch"):
        if part["on"].any() and (~part["on"]).any():
            out[str(arch)] = float(part.loc[part["on"], "top1"].max() - part.loc[~part["on"], "top1"].max())
    return out


def plot_smoothing(data: pd.DataFrame):
    colors = style.arch_colors(data.attrs["order"])
    archs = [a for a in data.attrs["order"] if a in set(data["arch"])]
    fig = style.new_figure(10.0, 3.3)
    ax_a, ax_k, ax_o = fig.subplots(1, 3, sharey=True)
    on = data[data["on"]]
    off = data[~data["on"]]
    for arch in archs:
        c = colors[arch]
        o = on[on["arch"] == arch]
        ax_a.scatter(o["alpha"], o["top1"], color=c, s=24, edgecolor="white", linewidth=0.4)
        ax_k.scatter(o["k"], o["top1"], color=c, s=24, edgecolor="white", linewidth=0.4)
        f = off[off["arch"] == arch]
        ax_a.scatter(np.zeros(len(f)), f["top1"], facecolor="none", edgecolor=c, s=24, linewidth=1.0)
    ax_a.set_xlabel("smoothing alpha (target mass moved off the positive)")
    ax_a.set_ylabel(f"val {metric_label(data.attrs['metric'])} (%)")
    ax_a.set_title("alpha (hollow: smoothing off)")
    if (on["k"] > 0).all() and on["k"].max() / max(on["k"].min(), 1) >= 8:
        ax_k.set_xscale("log", base=2)
        _plain_log_axis(ax_k.xaxis, on["k"], base=2)
    ax_k.set_xlabel("k (neighbours sharing alpha)")
    ax_k.set_title("k, smoothing on")
    rng = np.random.default_rng(0)  # jitter only
    width = 0.8 / 2
    ticks = []
    for i, arch in enumerate(archs):
        part = data[data["arch"] == arch]
        for j, state in enumerate((False, True)):
            pts = part[part["on"] == state]
            x = i + (j - 0.5) * width
            ax_o.scatter(x + rng.uniform(-0.07, 0.07, len(pts)), pts["top1"], s=16, color=colors[arch],
                         alpha=0.45 if not state else 0.85, edgecolor="white", linewidth=0.3)
            if len(pts):
                ax_o.hlines(pts["top1"].max(), x - 0.15, x + 0.15, color=colors[arch], linewidth=2.2)
        ticks.append(i)
    ax_o.set_xticks([t + d for t in ticks for d in (-width / 2, width / 2)],
                    [lab for _ in ticks for lab in ("off", "on")])
    ax_o.set_title("off vs on (bar: best)")
    for i, arch in enumerate(archs):
        ax_o.annotate(arch, (i, 0), xycoords=("data", "axes fraction"), xytext=(0, -24), textcoords="offset points",
                      ha="center", va="top", fontsize=7.5, color=colors[arch])
    ax_o.grid(axis="x", visible=False)
    gains = smoothing_gain(data)
    if gains:
        _suptitle(fig, "Smoothed InfoNCE, best on minus best off: "
                     + ", ".join(f"{v:+.1f} pts ({a})" for a, v in gains.items()))
    else:
        _suptitle(fig, "Smoothed InfoNCE: accuracy against alpha and k")
    _arch_legend(fig, archs, colors, baseline=False)
    return fig


# --- 7. accuracy vs parameter count ---------------------------------------------------------------------


def size_data(trials: pd.DataFrame, metric: str = "knn_top1") -> pd.DataFrame:
    """Per arch: params_count (millions), ResNet-50-settings top1 (mean) and best recipe top1."""
    comp = comparison_data(trials, metric)
    if comp.empty:
        return comp
    comp = comp.dropna(subset=["params_count"])
    if comp.empty:
        return _empty("no trial recorded a parameter count", order=comp.attrs["order"], metric=metric)
    rows = []
    for arch, part in comp.groupby("arch", sort=False):
        get = lambda kind: float(part.loc[part["kind"] == kind, "top1"].iloc[0]) if (part["kind"] == kind).any() \
            else math.nan  # noqa: E731
        rows.append(dict(arch=arch, params_m=float(part["params_count"].max()) / 1e6, baseline=get("baseline"),
                         best=get("best")))
    frame = pd.DataFrame(rows)
    frame.attrs.update(comp.attrs)
    return frame


def plot_size(data: pd.DataFrame):
    colors = style.arch_colors(data.attrs["order"])
    fig = style.new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    for _, r in data.iterrows():
        c = colors[r.arch]
        if np.isfinite(r.baseline):
            ax.scatter([r.params_m], [r.baseline], **style.BASELINE_MARKER)
            if np.isfinite(r.best) and abs(r.best - r.baseline) > 0.05:
                ax.annotate("", (r.params_m, r.best), (r.params_m, r.baseline),
                            arrowprops=dict(arrowstyle="->", color=c, linewidth=1.3, shrinkA=6, shrinkB=5))
        if np.isfinite(r.best):
            ax.scatter([r.params_m], [r.best], color=c, s=60, edgecolor="white", linewidth=0.6, zorder=6)
            ax.annotate(r.arch, (r.params_m, r.best), xytext=(7, 0), textcoords="offset points", va="center",
                        color=c, fontsize=8, fontweight="bold")
    ax.set_xscale("log")
    lo, hi = data["params_m"].min(), data["params_m"].max()
    ax.set_xlim(lo / 1.6, hi * 2.6)
    from matplotlib.ticker import FuncFormatter, LogLocator

    ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_xlabel("backbone parameters (millions, log scale)")
    ax.set_ylabel(f"val {metric_label(data.attrs['metric'])} (%)")
    from matplotlib.lines import Line2D

    ax.legend(handles=[Line2D([], [], marker="*", color=style.BASELINE_COLOR, linestyle="", markersize=11,
                              label=style.BASELINE_LABEL),
                       Line2D([], [], marker="o", color="#777777", linestyle="", label=style.BEST_LABEL)],
              loc="lower right")
    big = data.loc[data["params_m"].idxmax()]
    small = data[data["params_m"] < big.params_m / 2]
    if len(small) and np.isfinite(big.best) and small["best"].notna().any():
        s = small.loc[small["best"].idxmax()]
        _suptitle(fig, f"{s.arch} reaches {s.best:.1f}% with {big.params_m / s.params_m:.1f}x fewer parameters "
                     f"than {big.arch} ({big.best:.1f}%)")
    else:
        _suptitle(fig, "Accuracy against backbone size: best recipe vs ResNet-50 settings")
    return fig


FIGURES = (
    # (file stem, caption, data function, plot function)
    ("comparison", "Recipe comparison: ResNet-50 settings vs the best recipe found, per arch", comparison_data,
     plot_comparison),
    ("shift", "Recipe shift: how the best recipe differs from the ResNet-50 settings, knob by knob", shift_data,
     plot_shift),
    ("sensitivity", "Sensitivity: accuracy against each searched knob", sensitivity_data, plot_sensitivity),
    ("importance", "Parameter importance per arch (fANOVA, seeded)", importance_data, plot_importance),
    ("history", "Optimisation history per study", history_data, plot_history),
    ("curves", "Learning curves per study", None, plot_curves),  # needs the curves frame: see build
    ("smoothing", "Smoothing ablation: alpha, k, on vs off", smoothing_data, plot_smoothing),
    ("size", "Accuracy against parameter count", size_data, plot_size),
)
