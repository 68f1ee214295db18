"""Selections of the tidy frames (tables.py) that the figures and the report share: the scored and best trials,
the arch order, the random-init floor per arch, the latency shown, the ResNet-50 settings' name. One home per rule,
so the report's tables and its figures agree.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import pandas as pd

from lightrecipe.reports.tables import LATENCY_COLUMNS
from lightrecipe.search.store import records


def baseline_fit(rows: pd.DataFrame) -> str:
    """What fitting changed in the ResNet-50 settings among `rows` (baseline trials, or confirm runs of them):
    the first note, e.g. "queue 128, batch 64: fitted to 1078 training images"; "" when nothing changed."""
    notes = [str(n) for n in rows.get("fitted", pd.Series(dtype=object)) if isinstance(n, str) and n]
    return notes[0] if notes else ""


def baseline_name(fitted: str) -> str:
    """"ResNet-50 settings", with the fitted queue and batch in parentheses when fitting changed them."""
    return "ResNet-50 settings" + (f" ({fitted})" if fitted else "")


def searched_params(trials: pd.DataFrame) -> list[str]:
    """Names of the sampled parameters (without the `param_` prefix)."""
    return [c[len("param_"):] for c in trials.columns if c.startswith("param_") and trials[c].notna().any()]


def scored(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Complete trials with a finite value of `metric`."""
    if metric not in trials.columns:
        return trials.iloc[0:0]
    mask = (trials["state"] == records.COMPLETE) & np.isfinite(pd.to_numeric(trials[metric], errors="coerce"))
    return trials[mask]


def best_trials(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per arch, the complete trial with the highest `metric` (ties: the earlier trial)."""
    done = scored(trials, metric)
    if done.empty:
        return done
    ordered = done.sort_values([metric, "number"], ascending=[False, True], kind="stable")
    return ordered.groupby("arch", sort=True).head(1).set_index("arch", drop=False).sort_index()


def arch_order(trials: pd.DataFrame) -> list[str]:
    """Archs in a stable order: efficient nets by parameter count, ResNets last."""
    archs = sorted(set(trials["arch"].dropna().astype(str)))
    counts = trials.groupby("arch")["params_count"].max() if len(trials) else pd.Series(dtype=float)
    return sorted(archs, key=lambda a: (a.startswith("resnet"), float(counts.get(a, np.inf) or np.inf), a))


def state_counts(trials: pd.DataFrame) -> pd.DataFrame:
    """Per study: how many trials are in each state."""
    if trials.empty:
        return pd.DataFrame(columns=["source", "study", "arch"])
    table = trials.groupby(["source", "study", "arch", "state"]).size().unstack("state", fill_value=0)
    return table.reset_index()


def as_percent(values: Iterable[float] | pd.Series) -> pd.Series:
    """Accuracies as percentages: fractions (all <= 1) are multiplied by 100, percentages are kept."""
    series = pd.to_numeric(pd.Series(values), errors="coerce")
    finite = series[np.isfinite(series)]
    return series * 100.0 if len(finite) and finite.abs().max() <= 1.0 else series


def top_trials(trials: pd.DataFrame, metric: str, n: int = 5) -> pd.DataFrame:
    """Per arch (archs by name), its `n` best complete trials by `metric`: arch, number, baseline, the metric
    and every sampled parameter (`param_<name>`, NaN where a trial did not sample it)."""
    done = scored(trials, metric)
    if done.empty:
        return done
    params = [c for c in done.columns if c.startswith("param_") and done[c].notna().any()]
    top = done.sort_values(metric, ascending=False).groupby("arch", sort=False).head(n)
    top = top.sort_values(["arch", metric], ascending=[True, False])
    return top[["arch", "number", "baseline", metric, *params]]


def floor_by_arch(floor: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per arch: the random-init floor's mean `metric` over its seeds, as a fraction (`value`), with `n` and
    `seeds`. A seed measured by both a sweep and a confirm study counts once (the same backbone, scored alike)."""
    columns = ["arch", "value", "n", "seeds"]
    if floor is None or floor.empty or metric not in floor.columns:
        return pd.DataFrame(columns=columns).set_index("arch", drop=False)
    finite = floor[np.isfinite(pd.to_numeric(floor[metric], errors="coerce"))]
    once = finite.drop_duplicates(["arch", "seed"])
    rows = [dict(arch=arch, value=float(part[metric].mean()), n=len(part),
                 seeds=",".join(str(int(s)) for s in sorted(part["seed"])))
            for arch, part in once.groupby("arch", sort=True)]
    return pd.DataFrame(rows, columns=columns).set_index("arch", drop=False)


# --- latency: what the report table and the latency figure show --------------------------------------------

# Shown: one CPU thread, batch 1 (a serving worker per core); the nearest thing to a number another machine can
# compare with. The other measurements stay in the frame (Frames.latency).
LATENCY_SHOWN = ("cpu", 1)
NOT_MEASURED = "not measured"


def shown_latency(latency: pd.DataFrame) -> pd.DataFrame:
    """The measurements at LATENCY_SHOWN, else (no such measurement) the first setting measured; empty when
    no study recorded a latency."""
    if latency is None or latency.empty:
        return pd.DataFrame(columns=list(LATENCY_COLUMNS))
    key = latency["device"].astype(str) + "/" + latency["threads"].astype(str)  # threads None on a GPU
    wanted = f"{LATENCY_SHOWN[0]}/{LATENCY_SHOWN[1]}"
    return latency[key == (wanted if (key == wanted).any() else key.iloc[0])]


def latency_caption(measured: pd.Series) -> str:
    """Where a shown latency was measured: the chip, the device, the threads and the image size."""
    threads = "" if pd.isna(measured["threads"]) else int(measured["threads"])
    on = f", {threads} thread{'' if threads == 1 else 's'}" if threads else ""
    return (f"batch-1 latency, median of warm runs: {measured['device_name']} ({measured['device']}{on}), "
            f"{int(measured['image_size'])} px")


def latency_by_arch(latency: pd.DataFrame) -> pd.DataFrame:
    """Per arch (index): latency_ms and latency_p90_ms at the shown setting (an arch's last study's numbers);
    attrs["caption"] says where they were measured, or that nothing was."""
    shown = shown_latency(latency)
    frame = pd.DataFrame({"latency_ms": pd.to_numeric(shown[records.LATENCY_MS]).values,
                          "latency_p90_ms": pd.to_numeric(shown["batch1_ms_p90"]).values},
                         index=pd.Index(shown["arch"].values, name="arch"))
    frame = frame[~frame.index.duplicated(keep="last")]
    frame.attrs["caption"] = latency_caption(shown.iloc[0]) if len(shown) else (
        f"latency {NOT_MEASURED}: no sweep study recorded one (sweeps measure it on their driver)")
    return frame


def params_millions(trials: pd.DataFrame, arch: str) -> float:
    """The arch's backbone parameters in millions, as its trials recorded them (NaN when none did)."""
    counts = pd.to_numeric(trials.loc[trials["arch"] == arch, "params_count"], errors="coerce")
    return float(counts.max()) / 1e6 if counts.notna().any() else math.nan
