""""Does it hold up?": the confirm runs of `lightrecipe confirm`, as tidy frames.

Per arch, each confirmed recipe (the sweep's top-K and the ResNet-50 settings) and the random-init floor, with
mean and 95% confidence interval over seeds (Student's t: few seeds, unknown variance) of val and test kNN and
linear-probe top-1; the short-schedule rank against the confirmed rank with Kendall's tau and its p-value; and a
plain flag when the winner is within noise of the runner-up or of the ResNet-50 settings (Welch's t-test at
5%: seeds of two recipes are independent runs with possibly different spread).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from lightrecipe.reports import tables
from lightrecipe.search import records
from lightrecipe.words import counted

CONFIDENCE = 0.95  # the interval the issue asks for
NOISE_ALPHA = 0.05  # a difference with Welch p >= 5% is "within noise"
TEST_OF = {"knn_top1": "test_knn_top1", "linear_top1": "test_linear_top1"}  # the test twin of a val metric
ROLE_LABELS = {records.ROLE_SEARCHED: "searched", records.ROLE_RESNET50: "ResNet-50 settings", "floor": "random init"}


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """(mean, half-width) of the Student-t confidence interval of the mean; half-width NaN below 2 values."""
    from scipy import stats

    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if len(x) == 0:
        return math.nan, math.nan
    if len(x) < 2:
        return float(x.mean()), math.nan
    half = stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return float(x.mean()), float(half)


def holdup_data(frames: tables.Frames, metric: str = "knn_top1") -> pd.DataFrame:
    """One row per arch x confirmed recipe (and the floor): arch, study, role, source_trial, label, n,
    short (the recipe's sweep `metric`, fraction), confirmed_rank, short_rank, and for each of the four final
    metrics `<m>` (mean, fraction) and `<m>_ci` (95% half-width); `values` (per-seed val `metric`) and
    `run_dirs` (one per seed). Empty when no confirm run exists."""
    confirm = frames.confirm
    if confirm is None or confirm.empty:
        return pd.DataFrame()
    done = confirm[confirm["state"] == "complete"]
    rows = []
    for (arch, study), part in done.groupby(["arch", "study"], sort=True):
        for (role, source_trial), runs in part.groupby(["role", "source_trial"], sort=False):
            runs = runs.sort_values("seed")
            rows.append(dict(arch=arch, study=study, role=role, source_trial=int(source_trial),
                             label=_label(role, int(source_trial)), n=len(runs),
                             short=_short(frames.trials, runs, metric), values=list(runs[metric]),
                             run_dirs=list(runs["run_dir"]), **_means(runs)))
        rows.extend(_floor_rows(frames.floor, arch, study))
    frame = pd.DataFrame(rows)
    return _ranked(frame, metric) if len(frame) else frame


def _label(role: str, source_trial: int) -> str:
    return f"#{source_trial} ResNet-50 settings" if role == records.ROLE_RESNET50 else f"#{source_trial}"


def _means(runs: pd.DataFrame) -> dict[str, float]:
    out = {}
    for m in tables.METRICS:
        out[m], out[f"{m}_ci"] = t_interval(pd.to_numeric(runs[m], errors="coerce"))
    return out


def _short(trials: pd.DataFrame, runs: pd.DataFrame, metric: str) -> float:
    """The recipe's value on the sweep's short schedule: its source trial's `metric`, else its objective."""
    first = runs.iloc[0]
    source = trials[(trials["study"] == first["source_study"]) & (trials["number"] == first["source_trial"])]
    if len(source) and metric in source.columns and np.isfinite(source.iloc[0][metric]):
        return float(source.iloc[0][metric])
    value = first.get("short_value")
    return float(value) if isinstance(value, (int, float)) and value is not None else math.nan


def _floor_rows(floor: pd.DataFrame, arch: str, study: str) -> list[dict[str, Any]]:
    part = floor[(floor["study"] == study)].sort_values("seed") if floor is not None and len(floor) else floor
    if part is None or part.empty:
        return []
    return [dict(arch=arch, study=study, role="floor", source_trial=-1, label="random init (untrained)",
                 n=len(part), short=math.nan, values=[], run_dirs=[], **_means(part))]


def _ranked(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Adds confirmed_rank (by mean val `metric`) and short_rank (by the sweep's value) among the recipes."""
    frame = frame.assign(confirmed_rank=math.nan, short_rank=math.nan)
    recipes = frame["role"] != "floor"
    for _, part in frame[recipes].groupby("study"):
        frame.loc[part.index, "confirmed_rank"] = part[metric].rank(ascending=False, method="min")
        frame.loc[part.index, "short_rank"] = part["short"].rank(ascending=False, method="min")
    return frame.sort_values(["arch", "study", "confirmed_rank", "short", "source_trial"],
                             ascending=[True, True, True, False, True], na_position="last").reset_index(drop=True)


def holdup_summary(data: pd.DataFrame, metric: str = "knn_top1") -> pd.DataFrame:
    """Per confirm study: arch, study, kendall_tau and tau_p (short vs confirmed order of the recipes), n,
    winner (label), winner_role, winner_run_dirs, and `warnings`: plain sentences (within noise, below floor)."""
    if data.empty:
        return pd.DataFrame()
    rows = []
    for (arch, study), part in data.groupby(["arch", "study"], sort=True):
        recipes = best_first(part[part["role"] != "floor"], metric)
        tau, p = _kendall(recipes["short"], recipes[metric])
        winner = recipes.iloc[0] if len(recipes) else None
        rows.append(dict(arch=arch, study=study, kendall_tau=tau, tau_p=p, n=len(recipes),
                         winner=winner.label if winner is not None else "",
                         winner_role=winner.role if winner is not None else "",
                         winner_source_trial=int(winner.source_trial) if winner is not None else -1,
                         winner_run_dirs=list(winner.run_dirs) if winner is not None else [],
                         warnings=_flags(recipes, part[part["role"] == "floor"], metric)))
    return pd.DataFrame(rows)


def _kendall(short: pd.Series, confirmed: pd.Series) -> tuple[float, float]:
    from scipy import stats

    ok = np.isfinite(short.to_numpy(dtype=float)) & np.isfinite(confirmed.to_numpy(dtype=float))
    if ok.sum() < 2:
        return math.nan, math.nan
    result = stats.kendalltau(short.to_numpy(dtype=float)[ok], confirmed.to_numpy(dtype=float)[ok])
    return float(result.statistic), float(result.pvalue)


def within_noise(a: Sequence[float], b: Sequence[float], alpha: float = NOISE_ALPHA) -> tuple[bool, float]:
    """(True when Welch's t-test cannot tell the two samples apart at `alpha`, its p-value)."""
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return True, math.nan  # one seed cannot show a difference beyond noise
    if np.std(a) == 0 and np.std(b) == 0:
        return bool(a.mean() == b.mean()), 1.0 if a.mean() == b.mean() else 0.0
    p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
    return p >= alpha, p


def _flags(recipes: pd.DataFrame, floor: pd.DataFrame, metric: str) -> list[str]:
    """Plain sentences about the winner: within noise of the runner-up or of the ResNet-50 settings; below or
    within noise of the random-init floor."""
    if recipes.empty:
        return []
    winner = recipes.iloc[0]
    out = []
    others = [("the runner-up " + recipes.iloc[1].label, recipes.iloc[1])] if len(recipes) > 1 else []
    base = recipes[recipes["role"] == records.ROLE_RESNET50]
    if winner.role != records.ROLE_RESNET50 and len(base) and (not others or others[0][1].label != base.iloc[0].label):
        others.append(("the ResNet-50 settings", base.iloc[0]))
    for name, other in others:
        same, p = within_noise(winner["values"], other["values"])
        if same:
            out.append(f"winner {winner.label} is within noise of {name} (Welch p = {_p(p)}): the data cannot "
                       "tell them apart; more seeds would narrow the intervals")
    if len(floor) and np.isfinite(floor.iloc[0][metric]):
        high = winner[metric] + (winner[f"{metric}_ci"] if np.isfinite(winner[f"{metric}_ci"]) else 0.0)
        if high < floor.iloc[0][metric]:
            out.append(f"winner {winner.label} scores below the random-init floor: training did harm on this data")
    return out


def _p(p: float) -> str:
    return "n/a" if not np.isfinite(p) else f"{p:.2f}"


def confirmed_winners(data: pd.DataFrame, metric: str = "knn_top1") -> pd.DataFrame:
    """Per arch with a confirm run (its last confirm study by name): the winning row of `holdup_data`."""
    if data.empty:
        return data
    recipes = best_first(data[data["role"] != "floor"], metric)
    return recipes.groupby("arch", sort=True).head(1).set_index("arch", drop=False)


def best_first(recipes: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Confirmed recipes, the winner first: by mean confirmed `metric`; a tie goes to the better sweep value, then
    to the earlier sweep trial. The one order the headline, the notes and best-<arch>.yaml all take."""
    return recipes.sort_values([metric, "short", "source_trial"], ascending=[False, False, True], kind="stable",
                               na_position="last")


def terminal_text(frames: tables.Frames, metric: str = "knn_top1") -> dict[str, str]:
    """Per arch: the hold-up table and its flags as plain text (what `lightrecipe confirm` prints)."""
    data = holdup_data(frames, metric)
    if data.empty:
        return {}
    summary = holdup_summary(data, metric).set_index("study")
    out = {}
    for (arch, study), part in data.groupby(["arch", "study"], sort=True):
        lines = [f"{'recipe':<26}{'n':>3}{'sweep val':>11}{'val kNN':>16}{'val linear':>16}{'test kNN':>16}"
                 f"{'test linear':>16}"]
        for r in part.itertuples():
            cells = "".join(f"{_pm(getattr(r, m), getattr(r, m + '_ci')):>16}" for m in tables.METRICS)
            lines.append(f"{r.label:<26}{r.n:>3}{_pct(r.short):>11}{cells}")
        s = summary.loc[study]
        lines.append(f"Kendall's tau, sweep vs confirmed order ({counted(s.n, 'recipe')}): "
                     f"{_tau(s.kendall_tau, s.tau_p)}")
        lines += [f"note: {flag}" for flag in s.warnings]
        out[str(arch)] = "\n".join(lines)
    return out


def _pct(value: float) -> str:
    return "–" if not np.isfinite(value) else f"{100 * value:.1f}"


def _pm(mean: float, half: float) -> str:
    """A mean ± 95% half-width in percent, as the tables show it."""
    if not np.isfinite(mean):
        return "–"
    return f"{100 * mean:.1f}" + (f" ± {100 * half:.1f}" if np.isfinite(half) else "")


def _tau(tau: float, p: float) -> str:
    return "n/a (fewer than 2 recipes)" if not np.isfinite(tau) else f"{tau:+.2f} (p = {_p(p)})"


pm, pct, tau_text = _pm, _pct, _tau  # the renderers and the terminal format these cells alike
