"""Figure 8, warm start against cold: per arch, the best-so-far curve of each `--warm-start` study beside each
cold study of the same space and budget, and what the warm one needed to reach the cold one's best.

Same budget: the same space, arch and epochs per trial, and the same number of finished trials. Every warm
study is compared with every such cold study (sweep seeds are not paired: a warm start changes what the
sampler sees, so no two seeds share their later trials anyway). A trial's place is its rank among the
study's finished trials by trial number (the order they were handed out); device-seconds add up every
finished trial up to it, pruned and failed ones included, since each cost what it ran.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

import lightrecipe.reports.figures.style as style
from lightrecipe.reports import selections, tables
from lightrecipe.reports.figures.common import empty_frame, integer_x_axis, legend_below, metric_label, suptitle
from lightrecipe.reports.selections import as_percent
from lightrecipe.search.store import records

FINISHED = (records.COMPLETE, records.PRUNED, records.FAILED, records.DIVERGED)
WARM_COLOR, COLD_COLOR = style.PALETTE[1], style.PALETTE[0]
NO_PAIR = "no --warm-start study has a cold study of the same space, arch, epochs and number of trials"
EMPTY_TITLE = "Warm start against cold: no pair of studies to compare"


def warm_data(frames: tables.Frames, metric: str = "knn_top1") -> pd.DataFrame:
    """One row per finished trial of each warm study and each cold study it is compared with: source, study,
    arch, kind ("warm" | "cold"), place (1-based), number, warm_started (bool), baseline, top1 (complete
    trials), best_so_far, device_seconds (cumulative). `attrs["pairs"]`: one row per (warm, cold) pair (see
    `warm_pairs`); `attrs["title"]` says, over the pairs, how often and how soon warm reached the cold best;
    `attrs["floors"]`: per arch shown, its random-init floor (%), where the sources measured one."""
    trials = frames.trials
    order = selections.arch_order(trials)
    if trials.empty or metric not in trials.columns or "warm_start" not in trials.columns:
        return empty_frame(NO_PAIR, order=order, metric=metric, title=EMPTY_TITLE)
    done = trials[trials["state"].isin(FINISHED)].copy()
    done["top1"] = as_percent(done[metric]).set_axis(done.index).where(done["state"] == records.COMPLETE)
    curves = [_curve(part) for _, part in done.groupby(["source", "study"], sort=True)]
    groups = {}  # (space, arch, max_epochs, trials) -> {"warm": [...], "cold": [...]}
    for c in curves:
        key = (c["space"].iloc[0], c["arch"].iloc[0], c["max_epochs"].iloc[0], len(c))
        groups.setdefault(key, {"warm": [], "cold": []})[c["kind"].iloc[0]].append(c)
    shown = [c for g in groups.values() if g["warm"] and g["cold"] for c in g["warm"] + g["cold"]]
    if not shown:
        return empty_frame(NO_PAIR, order=order, metric=metric, title=EMPTY_TITLE)
    frame = pd.concat(shown, ignore_index=True)
    pairs = warm_pairs([(w, c) for g in groups.values() for w in g["warm"] for c in g["cold"]])
    shown_archs = [a for a in order if a in set(frame["arch"])]
    floor = selections.floor_by_arch(frames.floor, metric)
    frame.attrs.update(order=shown_archs, metric=metric, pairs=pairs, title=warm_title(pairs),
                       floors={a: 100.0 * float(floor.loc[a, "value"]) for a in shown_archs if a in floor.index})
    return frame


def _curve(part: pd.DataFrame) -> pd.DataFrame:
    part = part.sort_values("number")
    warm = bool(part["warm_start"].fillna("").astype(str).iloc[0])
    return pd.DataFrame({
        "source": part["source"].values, "study": part["study"].values, "space": part["space"].values,
        "arch": part["arch"].values, "max_epochs": part["max_epochs"].values, "kind": "warm" if warm else "cold",
        "place": np.arange(1, len(part) + 1), "number": part["number"].values,
        "warm_started": part["warm_source_trial"].notna().values, "baseline": part["baseline"].values,
        "top1": part["top1"].values, "best_so_far": part["top1"].cummax().ffill().values,
        "device_seconds": pd.to_numeric(part["device_seconds"], errors="coerce").fillna(0.0).cumsum().values,
    })


def warm_pairs(pairs: list[tuple[pd.DataFrame, pd.DataFrame]]) -> pd.DataFrame:
    """Per (warm, cold) pair: arch, warm and cold (source, study) labels, cold_best, cold_place and
    cold_device_s (where the cold study first reached its best), warm_place and warm_device_s (where the warm
    study first reached the cold best; NaN when it never did), warm_best."""
    rows = []
    for w, c in pairs:
        cold_best = c["top1"].max()
        cold_at = c[c["top1"] >= cold_best].iloc[0] if np.isfinite(cold_best) else None
        reached = w[w["top1"] >= cold_best] if cold_at is not None else w.iloc[0:0]
        rows.append(dict(
            arch=w["arch"].iloc[0], warm=short_label(w), cold=short_label(c), cold_best=cold_best, warm_best=w["top1"].max(),
            cold_place=cold_at.place if cold_at is not None else np.nan,
            cold_device_s=cold_at.device_seconds if cold_at is not None else np.nan,
            warm_place=reached["place"].iloc[0] if len(reached) else np.nan,
            warm_device_s=reached["device_seconds"].iloc[0] if len(reached) else np.nan))
    return pd.DataFrame(rows, columns=["arch", "warm", "cold", "cold_best", "warm_best", "cold_place",
                                       "cold_device_s", "warm_place", "warm_device_s"])


def short_label(curve: pd.DataFrame) -> str:
    return f"{curve['source'].iloc[0]} {curve['study'].iloc[0]}"


def warm_title(pairs: pd.DataFrame) -> str:
    """Per arch: in how many pairs warm reached the cold best, and the median trials and device-seconds it
    needed against what cold needed."""
    parts = []
    for arch, p in pairs.groupby("arch", sort=True):
        hit = p.dropna(subset=["warm_place"])
        text = f"{arch}: warm reached the cold best in {len(hit)} of {len(p)} pairs"
        if len(hit):
            n = hit["warm_place"].median()
            text += (f", median {n:g} trial{'' if n == 1 else 's'} / {hit['warm_device_s'].median():.0f} "
                     f"device-s against cold's {hit['cold_place'].median():g} / {hit['cold_device_s'].median():.0f}")
        parts.append(text)
    return "; ".join(parts)


@style.styled
def plot_warm(data: pd.DataFrame):
    archs = data.attrs["order"]
    fig = style.new_figure(4.2 * len(archs) + 0.4, 3.6)
    axes = np.atleast_1d(fig.subplots(1, len(archs), squeeze=False)).ravel()
    for ax, arch in zip(axes, archs):
        part = data[data["arch"] == arch]
        for (_, _), c in part.groupby(["source", "study"], sort=True):
            color = WARM_COLOR if c["kind"].iloc[0] == "warm" else COLD_COLOR
            ax.step(c["place"], c["best_so_far"], where="post", color=color, alpha=0.85, linewidth=1.4)
            started = c[c["warm_started"] & c["top1"].notna()]
            ax.scatter(started["place"], started["top1"], marker="D", s=22, facecolor="white", edgecolor=color,
                       linewidth=1.1, zorder=4)
        if arch in data.attrs.get("floors", {}):  # what a trained recipe must beat: the backbone untrained
            ax.axhline(data.attrs["floors"][arch], color=style.FLOOR_COLOR, linestyle="--", linewidth=1.2)
        integer_x_axis(ax, part["place"])
        ax.set_title(arch, fontsize=9)
        ax.set_xlabel("trials finished")
    axes[0].set_ylabel(f"best val {metric_label(data.attrs['metric'])} so far (%)")
    handles = [Line2D([], [], color=WARM_COLOR, label="warm-started study"),
               Line2D([], [], color=COLD_COLOR, label="cold study, same space and budget"),
               Line2D([], [], marker="D", linestyle="", markerfacecolor="white", markeredgecolor="#555555",
                      label="warm-started trial (its own value)")]
    if data.attrs.get("floors"):
        handles.append(Line2D([], [], color=style.FLOOR_COLOR, linestyle="--", label=style.FLOOR_LABEL))
    legend_below(fig, handles)
    suptitle(fig, data.attrs["title"])
    return fig
