""""Does it hold up?": the confirm runs of `lightrecipe confirm`, as tidy frames.

Per arch, each confirmed recipe (the sweep's top-K and the ResNet-50 settings) and the random-init floor, with
seeds completed of planned (k/N: a seed that diverged, was stopped or failed counts against the recipe), mean and
95% confidence interval over seeds (Student's t: few seeds, unknown variance) of val and test kNN and
linear-probe top-1; the sweep order of the searched recipes against their confirmed order with Kendall's tau-b,
its p-value (exact, by enumerating every ordering with the ties held, up to 10 recipes: scipy switches to a
normal approximation when there are ties) and a bootstrap interval over seeds; and plain flags from paired
t-tests on per-seed differences (seed s gives every recipe and the floor the same initial weights and data
order): the winner within noise of the runner-up or of the ResNet-50 settings, not above the floor. Ranks and
ties are decided on correct-image counts (`as_images`), so that a tie is a tie.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from lightrecipe.ranking import Standing, as_images, winner_first
from lightrecipe.reports import tables
from lightrecipe.reports.text import percent, plus_minus
from lightrecipe.search.store import records
from lightrecipe.stats import CONFIDENCE, EXACT_MAX_N, kendall_tau, kendall_tau_b, paired_test, t_interval
from lightrecipe.words import counted

BOOTSTRAP_RESAMPLES = 2000  # percentile bootstrap (Efron & Tibshirani 1993, ch. 13: 1000-2000 for a 95% interval)
BOOTSTRAP_SEED = 0  # the report is the same on every build
TEST_OF = {"knn_top1": "test_knn_top1", "linear_top1": "test_linear_top1"}  # the test twin of a val metric
TAU_VARIANT = "tau-b"  # Kendall's tau-b: ties in either order shrink the denominator (Kendall 1945)
ROLE_LABELS = {records.ROLE_SEARCHED: "searched", records.ROLE_RESNET50: "ResNet-50 settings", "floor": "random init"}


def holdup_data(frames: tables.Frames, metric: str = "knn_top1") -> pd.DataFrame:
    """One row per arch x confirmed recipe (and the floor): arch, study, role, source_trial, label, n (seeds
    completed), planned (seeds enqueued), short (the recipe's sweep `metric`, fraction), sweep_seed (the seed its
    sweep trial trained with), images (val split size, NaN when the runs did not record it), confirmed_rank,
    short_rank, and for each of the four final metrics `<m>` (mean, fraction) and `<m>_ci` (95% half-width);
    `values` and `seeds` (per completed seed: val `metric` and the seed) and `run_dirs` (one per seed). A seed
    that did not complete (pruned, diverged, failed, not yet run) counts in `planned`, not in `n`. Empty when no
    confirm run exists."""
    confirm = frames.confirm
    if confirm is None or confirm.empty:
        return pd.DataFrame()
    rows = []
    for (arch, study), part in confirm.groupby(["arch", "study"], sort=True):
        images = _images(part)
        for (role, source_trial), planned in part.groupby(["role", "source_trial"], sort=False):
            runs = planned[planned["state"] == records.COMPLETE].sort_values("seed")
            rows.append(dict(arch=arch, study=study, role=role, source_trial=int(source_trial),
                             label=_label(role, int(source_trial)), n=len(runs), planned=len(planned),
                             short=_short(frames.trials, planned, metric), images=images,
                             sweep_seed=_sweep_seed(frames.trials, planned), values=list(runs[metric]),
                             seeds=[int(s) for s in runs["seed"]], run_dirs=list(runs["run_dir"]), **_means(runs)))
        rows.extend(_floor_rows(frames.floor, arch, study, metric, images))
    frame = pd.DataFrame(rows)
    return _ranked(frame, metric) if len(frame) else frame


def _label(role: str, source_trial: int) -> str:
    return f"#{source_trial} ResNet-50 settings" if role == records.ROLE_RESNET50 else f"#{source_trial}"


def _means(runs: pd.DataFrame) -> dict[str, float]:
    out = {}
    for m in tables.METRICS:
        out[m], out[f"{m}_ci"] = t_interval(pd.to_numeric(runs[m], errors="coerce"))
    return out


def _images(runs: pd.DataFrame) -> float:
    """The val split's size the runs recorded (train()'s `val_images`), NaN for runs that predate it."""
    if "val_images" not in runs.columns:
        return math.nan
    sizes = pd.to_numeric(runs["val_images"], errors="coerce").dropna()
    return float(sizes.iloc[0]) if len(sizes) else math.nan


def _source(trials: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    first = runs.iloc[0]
    return trials[(trials["study"] == first["source_study"]) & (trials["number"] == first["source_trial"])]


def _short(trials: pd.DataFrame, runs: pd.DataFrame, metric: str) -> float:
    """The recipe's value on the sweep's short schedule: its source trial's `metric`, else its objective."""
    source = _source(trials, runs)
    if len(source) and metric in source.columns and np.isfinite(source.iloc[0][metric]):
        return float(source.iloc[0][metric])
    value = runs.iloc[0].get("short_value")
    return float(value) if isinstance(value, (int, float)) and value is not None else math.nan


def _sweep_seed(trials: pd.DataFrame, runs: pd.DataFrame) -> float:
    """The seed the recipe's sweep trial trained with (NaN when the sweep trial is not in the sources)."""
    source = _source(trials, runs)
    seed = pd.to_numeric(source["recipe_seed"], errors="coerce") if len(source) and "recipe_seed" in source else []
    return float(seed.iloc[0]) if len(seed) else math.nan


def _floor_rows(floor: pd.DataFrame, arch: str, study: str, metric: str, images: float) -> list[dict[str, Any]]:
    part = floor[(floor["study"] == study)].sort_values("seed") if floor is not None and len(floor) else floor
    if part is None or part.empty:
        return []
    return [dict(arch=arch, study=study, role="floor", source_trial=-1, label="random init (untrained)",
                 n=len(part), planned=len(part), short=math.nan, images=images, sweep_seed=math.nan,
                 values=list(part[metric]), seeds=[int(s) for s in part["seed"]], run_dirs=[], **_means(part))]


def _keys(recipes: pd.DataFrame, metric: str) -> pd.DataFrame:
    """What ranks the recipes: all seeds completed (a failed seed is a failure of the recipe), then the
    confirmed mean and the sweep value, both in images (`as_images`)."""
    images = recipes["images"] if "images" in recipes else pd.Series(math.nan, index=recipes.index)
    planned = recipes["planned"] if "planned" in recipes else recipes["n"]
    return pd.DataFrame({
        "all_seeds": (recipes["n"] >= planned).astype(int),
        "confirmed": [float(as_images(v, i, n)) for v, i, n in zip(recipes[metric], images, recipes["n"])],
        "short": [float(as_images(v, i)) for v, i in zip(recipes["short"], images)],
        "source_trial": recipes["source_trial"]}, index=recipes.index)


def _ranked(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Adds confirmed_rank (as `best_first` orders them) and short_rank (by the sweep's value, in images)."""
    frame = frame.assign(confirmed_rank=math.nan, short_rank=math.nan)
    recipes = frame["role"] != "floor"
    for _, part in frame[recipes].groupby("study"):
        ordered = best_first(part, metric)
        keys = _keys(ordered, metric)
        frame.loc[ordered.index, "confirmed_rank"] = (
            keys[["all_seeds", "confirmed"]].apply(tuple, axis=1).rank(ascending=False, method="min"))
        frame.loc[part.index, "short_rank"] = _keys(part, metric)["short"].rank(ascending=False, method="min")
    return frame.sort_values(["arch", "study", "confirmed_rank", "short", "source_trial"],
                             ascending=[True, True, True, False, True], na_position="last").reset_index(drop=True)


def holdup_summary(data: pd.DataFrame, metric: str = "knn_top1") -> pd.DataFrame:
    """Per confirm study: arch, study, kendall_tau and tau_p (sweep vs confirmed order of the searched recipes
    alone: the ResNet-50 settings sit far below them in both orders and would inflate agreement), tau_low and
    tau_high (its 95% bootstrap interval over seeds), n (searched recipes), seeds (the confirm seeds), sweep_seeds,
    winner (label), winner_role, winner_run_dirs, and `warnings`: plain sentences (within noise, floor, seeds)."""
    if data.empty:
        return pd.DataFrame()
    rows = []
    for (arch, study), part in data.groupby(["arch", "study"], sort=True):
        recipes = best_first(part[part["role"] != "floor"], metric)
        searched = recipes[recipes["role"] == records.ROLE_SEARCHED]
        keys = _keys(searched, metric)
        tau, p = kendall_tau(keys["short"], keys["confirmed"])
        low, high = tau_bootstrap(searched, metric)
        winner = recipes.iloc[0] if len(recipes) else None
        seeds = sorted({s for row in part.itertuples() for s in row.seeds})
        sweep_seeds = sorted({int(s) for s in recipes["sweep_seed"].dropna()}) if "sweep_seed" in recipes else []
        rows.append(dict(arch=arch, study=study, kendall_tau=tau, tau_p=p, tau_low=low, tau_high=high,
                         n=len(searched), seeds=seeds, sweep_seeds=sweep_seeds,
                         winner=winner.label if winner is not None else "",
                         winner_role=winner.role if winner is not None else "",
                         winner_source_trial=int(winner.source_trial) if winner is not None else -1,
                         winner_run_dirs=list(winner.run_dirs) if winner is not None else [],
                         warnings=_flags(recipes, part[part["role"] == "floor"], metric)
                         + _seed_flags(seeds, sweep_seeds)))
    return pd.DataFrame(rows)


def tau_bootstrap(searched: pd.DataFrame, metric: str, resamples: int = BOOTSTRAP_RESAMPLES) -> tuple[float, float]:
    """95% percentile bootstrap interval of tau-b over seeds: the seeds every searched recipe completed are
    resampled with replacement, together (seed s pairs every recipe's run), and each recipe's confirmed mean is
    re-taken from the resample; the sweep values stay as they are. (NaN, NaN) below 2 recipes or 2 seeds."""
    common = sorted(set.intersection(*(set(s) for s in searched["seeds"]))) if len(searched) else []
    if len(searched) < 2 or len(common) < 2:
        return math.nan, math.nan
    by_seed = np.array([[dict(zip(r.seeds, r.values))[s] for s in common] for r in searched.itertuples()])
    draws = np.random.default_rng(BOOTSTRAP_SEED).integers(0, len(common), size=(resamples, len(common)))
    images = float(searched["images"].iloc[0]) if "images" in searched else math.nan
    short = _keys(searched, metric)["short"].to_numpy()
    taus = np.array([kendall_tau_b(short, as_images(by_seed[:, d].mean(axis=1), images, len(common)))
                     for d in draws])
    taus = taus[np.isfinite(taus)]  # a resample where every recipe ties has no tau-b
    if not len(taus):
        return math.nan, math.nan
    return tuple(float(q) for q in np.percentile(taus, [50 * (1 - CONFIDENCE), 50 * (1 + CONFIDENCE)]))


def _flags(recipes: pd.DataFrame, floor: pd.DataFrame, metric: str) -> list[str]:
    """Plain sentences: a recipe that did not complete every seed; the winner within noise of the runner-up or of
    the ResNet-50 settings; the winner not above, or below, the random-init floor (paired tests over seeds)."""
    if recipes.empty:
        return []
    out = [f"{r.label} completed {r.n} of {r.planned} seeds: a seed that diverged, was stopped or failed counts "
           "against the recipe, which ranks below every recipe that completed all" for r in recipes.itertuples()
           if r.n < r.planned]
    winner = recipes.iloc[0]
    others = [("the runner-up " + recipes.iloc[1].label, recipes.iloc[1])] if len(recipes) > 1 else []
    base = recipes[recipes["role"] == records.ROLE_RESNET50]
    if winner.role != records.ROLE_RESNET50 and len(base) and (not others or others[0][1].label != base.iloc[0].label):
        others.append(("the ResNet-50 settings", base.iloc[0]))
    for name, other in others:
        same, p, _, pairs = paired_test(winner, other)
        if same:
            out.append(f"winner {winner.label} is within noise of {name} (paired t-test over {pairs} seeds, "
                       f"p = {p_value_text(p)}): the data cannot tell them apart; more seeds would narrow the "
                       "intervals")
    if len(floor):
        same, p, diff, pairs = paired_test(winner, floor.iloc[0])
        test = f"paired t-test over {pairs} seeds, p = {p_value_text(p)}"
        if not same and diff < 0:
            out.append(f"winner {winner.label} scores below the random-init floor ({test}): training did harm on "
                       "this data")
        elif same:
            out.append(f"winner {winner.label} is not above the random-init floor ({test}): the untrained network "
                       "scores as well on this data")
    return out


def _seed_flags(seeds: list[int], sweep_seeds: list[int]) -> list[str]:
    shared = sorted(set(seeds) & set(sweep_seeds))
    if not shared:
        return []
    return [f"confirm seed {', '.join(map(str, shared))} is the sweep's own training seed: that run repeats the draw "
            "that got the recipe selected (confirm now draws seeds disjoint from the sweep's)"]


def p_value_text(p: float) -> str:
    return "n/a" if not np.isfinite(p) else f"{p:.2f}"


def confirmed_winners(data: pd.DataFrame, metric: str = "knn_top1") -> pd.DataFrame:
    """Per arch with a confirm run (its last confirm study by name): the winning row of `holdup_data`."""
    if data.empty:
        return data
    recipes = best_first(data[data["role"] != "floor"], metric)
    return recipes.groupby("arch", sort=True).head(1).set_index("arch", drop=False)


def best_first(recipes: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Confirmed recipes, the winner first, by `lightrecipe.ranking`'s rule (all seeds completed, then mean confirmed
    `metric` in images, then the sweep value, then the earlier sweep trial). The one order the headline, the notes,
    best-<arch>.yaml and `--warm-start` all take."""
    if recipes.empty:
        return recipes
    keys = _keys(recipes, metric)
    order = winner_first([Standing(bool(k.all_seeds), k.confirmed, k.short, int(k.source_trial))
                          for k in keys.itertuples()])
    return recipes.iloc[order]


def terminal_text(frames: tables.Frames, metric: str = "knn_top1") -> dict[str, str]:
    """Per arch: the hold-up table and its flags as plain text (what `lightrecipe confirm` prints)."""
    data = holdup_data(frames, metric)
    if data.empty:
        return {}
    summary = holdup_summary(data, metric).set_index("study")
    out = {}
    for (arch, study), part in data.groupby(["arch", "study"], sort=True):
        lines = [f"{'recipe':<26}{'seeds':>6}{'sweep val':>11}{'val kNN':>16}{'val linear':>16}{'test kNN':>16}"
                 f"{'test linear':>16}"]
        for r in part.itertuples():
            cells = "".join(f"{plus_minus(100 * getattr(r, m), 100 * getattr(r, m + '_ci')):>16}" for m in tables.METRICS)
            lines.append(f"{r.label:<26}{seeds_done(r):>6}{percent(r.short):>11}{cells}")
        s = summary.loc[study]
        lines.append(f"Kendall's tau, sweep vs confirmed order of the searched recipes ({counted(s.n, 'recipe')}): {tau_text(s)}")
        lines.append(seeds_text(s))
        lines += [f"note: {flag}" for flag in s.warnings]
        out[str(arch)] = "\n".join(lines)
    return out


def tau_text(s: Any) -> str:
    """Kendall's tau of a `holdup_summary` row as the report, the terminal and the README write it: the variant,
    how p was found, and the bootstrap interval over seeds."""
    if not np.isfinite(s.kendall_tau):
        return f"{TAU_VARIANT} n/a (fewer than 2 recipes, or one order all ties)"
    how = "exact permutation p" if s.n <= EXACT_MAX_N else "normal-approximation p"
    spread = (f"; 95% bootstrap over seeds {s.tau_low:+.2f} to {s.tau_high:+.2f}" if np.isfinite(s.tau_low)
              else "")
    return f"{TAU_VARIANT} {s.kendall_tau:+.2f} ({how} = {p_value_text(s.tau_p)}{spread})"


def seeds_done(row: Any) -> str:
    """k/N: seeds completed of those planned (a `holdup_data` row)."""
    return f"{row.n}/{row.planned}"


def seeds_text(s: Any) -> str:
    """The seeds a `holdup_summary` row was confirmed with, and the sweep's own."""
    sweep = ", ".join(map(str, s.sweep_seeds)) or "unknown"
    return f"Seeds: confirm and floor {', '.join(map(str, s.seeds)) or 'none'}; the sweep trained with {sweep}."
