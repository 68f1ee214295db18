"""Builds real Optuna trial databases shaped exactly as `lightrecipe.search.store.records` describes, with numbers
planted so that report tests can assert on them.

`build_study` writes one study from a list of `Planted` trials through Optuna's public API (`add_trial` for
finished trials, `ask` + `report` for a trial still running). `planted_sweep` builds a whole sweep folder:
two efficient archs, each with ResNet-50-settings baseline trials (two seeds), complete, pruned, failed and
diverged trials with histories, smoothing on and off; `Expected` holds the numbers the tests check.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from lightrecipe.search.store import records
from lightrecipe.trainers.recipe import Recipe

SPACE = "paper-efficient"
MAX_EPOCHS = 6
SCRIPT = "<script>window.__pwned = 1</script>"  # planted in user strings: the HTML must escape it

DISTRIBUTIONS = {
    "base_lr": FloatDistribution(0.01, 0.3, log=True),
    "weight_decay": FloatDistribution(1e-6, 1e-3, log=True),
    "temperature": FloatDistribution(0.05, 0.5),
    "crop_min_scale": FloatDistribution(0.1, 1.0),
    "symmetric": CategoricalDistribution([False, True]),
    "smoothing": CategoricalDistribution(["none", "topk"]),
    "smoothing_alpha": FloatDistribution(0.0, 0.3),  # sampled only when smoothing == "topk"
    "smoothing_k": IntDistribution(1, 64, log=True),  # sampled only when smoothing == "topk"
    # in `arch_sweep` only: eleven knobs like the built-in paper-efficient space
    "aug_strength": FloatDistribution(0.25, 2.0),
    "warmup_epochs": FloatDistribution(0.0, 5.0),
    "proj_hidden_dim": CategoricalDistribution([512, 1280, 2048]),
}
# The ResNet-50 (MoCo v2) values of the searched knobs: what `lightrecipe` enqueues as the baseline trial.
BASELINE_PARAMS = dict(base_lr=0.03, weight_decay=1e-4, temperature=0.2, crop_min_scale=0.2, symmetric=False,
                       smoothing="none")
# Short-schedule fidelity every trial of the planted sweep shares (not searched).
FIDELITY = dict(epochs=MAX_EPOCHS, image_size=32, batch_size=64, queue_size=256, dataset="digits")


def recipe_dict(arch: str, params: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """The resolved recipe a trial records: the field defaults (= ResNet-50 MoCo v2) + fidelity + params.

    Built from the dataclass defaults without validation, so building a database does not import timm."""
    base = {f.name: f.default for f in dataclasses.fields(Recipe)}
    base.update(FIDELITY, arch=arch, seed=seed)
    base.update(params)
    return base


@dataclass
class Planted:
    params: dict[str, Any]
    final: float | None  # final knn_top1 (fraction); None for failed/diverged trials
    state: str = "complete"  # records.STATES
    baseline: bool = False
    seed: int = 0
    epochs: int = MAX_EPOCHS  # epochs run (pruned/failed trials stop early)
    error: str = ""
    node: str = "node-1"
    extra_metrics: dict[str, float] = field(default_factory=dict)
    warm_from: int | None = None  # a `--warm-start` trial: the source trial's number (source study: build_study's)
    fitted: dict[str, Any] | None = None  # records.FITTED: what fitting to the data changed in the recipe


def curve(final: float, epochs: int, full: int = MAX_EPOCHS) -> list[float]:
    """A rising learning curve that reaches `final` at epoch `full - 1` (truncated to `epochs` points)."""
    return [final * (0.55 + 0.45 * (e + 1) / full) for e in range(epochs)]


def _history(values: list[float], start: int = 0) -> list[dict[str, Any]]:
    return [
        dict(epoch=e, loss=round(6.0 - 0.5 * e, 3), lr=0.03 * math.cos(math.pi * e / (2 * MAX_EPOCHS)),
             knn_top1=v, images_per_s=1500.0, epoch_seconds=2.0)
        for e, v in enumerate(values, start=start)
    ]


def latency_ms(params_count: int) -> float:
    """The planted batch-1 latency on one thread: 4 ms per million parameters."""
    return params_count / 250_000


def latency_row(params_count: int, threads: int) -> dict[str, Any]:
    """One measurement as `lightrecipe bench latency` prints it (records.LATENCY)."""
    ms = latency_ms(params_count) / threads
    return dict(device="cpu", device_name="Planted CPU", threads=threads, image_size=32, memory_format="nchw",
                batch1_ms_median=ms, batch1_ms_p90=1.2 * ms, runs=50, serving_batch=32,
                serving_images_per_s=32_000 / ms)


def build_study(storage_url: str, *, arch: str, trials: list[Planted], params_count: int, running: int = 0,
                space: str = SPACE, recipe_arch: str | None = None,
                distributions: dict[str, Any] | None = None, warm_source: str | None = None) -> optuna.Study:
    """`arch` names the study; the trials' recipes record `recipe_arch` (default: the same), so a study name
    no timm model has can still hold valid recipes. `distributions` adds to `DISTRIBUTIONS`. `warm_source`:
    the study was warm-started from that source study (records.WARM_START); its `warm_from` trials carry it. The arch's
    latency (records.LATENCY) is planted as `latency_ms(params_count)` on 1 thread, half that on 2."""
    dist_of = {**DISTRIBUTIONS, **(distributions or {})}
    study = optuna.create_study(storage=storage_url, study_name=records.study_name(space, arch), direction="maximize")
    study.set_user_attr(records.SPACE, space)
    study.set_user_attr(records.ARCH, arch)
    study.set_user_attr(records.OBJECTIVE, records.DEFAULT_OBJECTIVE)
    study.set_user_attr(records.MAX_EPOCHS, MAX_EPOCHS)
    study.set_user_attr(records.SPACE_SPEC, {"name": space, "params": sorted(DISTRIBUTIONS)})
    if warm_source:
        study.set_user_attr(records.WARM_START, {"source": "planted", "study": warm_source, "top": 3,
                                                 "trials": [p.warm_from for p in trials if p.warm_from is not None]})
    study.set_user_attr(records.LATENCY, [latency_row(params_count, threads) for threads in (1, 2)])
    for p in trials:
        dists = {k: dist_of[k] for k in p.params}
        values = curve(p.final, p.epochs) if p.final is not None else curve(0.3, p.epochs)
        history = _history(values)
        metrics: dict[str, Any] = {}
        if p.state in ("complete", "pruned"):
            last = values[-1]
            metrics = {**dict(knn_top1=last, linear_top1=last + 0.03, test_knn_top1=last - 0.01,
                              test_linear_top1=last + 0.02, epochs=p.epochs), **p.extra_metrics}
        if p.state == "diverged":
            history[-1]["loss"] = float("nan")
        optuna_state = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED,
                        "failed": TrialState.FAIL, "diverged": TrialState.FAIL}[p.state]
        study.add_trial(optuna.trial.create_trial(
            state=optuna_state,
            value=values[-1] if p.state in ("complete", "pruned") else None,
            params=p.params,
            distributions=dists,
            intermediate_values={e: v for e, v in enumerate(values)},
            user_attrs={
                records.STATE: p.state,
                records.ERROR: p.error,
                records.BASELINE: p.baseline,
                records.RECIPE: recipe_dict(recipe_arch or arch, p.params, p.seed),
                records.HISTORY: history,
                records.METRICS: metrics,
                records.PARAMS_COUNT: params_count,
                records.WALL_SECONDS: 10.0 * p.epochs,
                records.DEVICE_SECONDS: 20.0 * p.epochs,
                records.NODE: p.node,
                records.RUN_DIR: f"/runs/{arch}/{p.seed}",
                **({} if p.warm_from is None else {
                    records.WARM_SOURCE: "planted", records.WARM_SOURCE_STUDY: warm_source,
                    records.WARM_SOURCE_TRIAL: p.warm_from, records.WARM_CHANGES: ["temperature 0.6 -> 0.5 (clipped)"]}),
                **({records.FITTED: p.fitted} if p.fitted else {}),
            },
        ))
    for _ in range(running):  # a trial the sweep is still training: asked, two epochs reported, never told
        trial = study.ask({k: DISTRIBUTIONS[k] for k in ("base_lr", "temperature")})
        trial.set_user_attr(records.STATE, "running")
        trial.set_user_attr(records.BASELINE, False)
        trial.set_user_attr(records.HISTORY, _history(curve(0.5, 2)))
        trial.set_user_attr(records.PARAMS_COUNT, params_count)
        for e, v in enumerate(curve(0.5, 2)):
            trial.report(v, e)
    return study


def _topk(alpha: float, k: int) -> dict[str, Any]:
    return dict(smoothing="topk", smoothing_alpha=alpha, smoothing_k=k)


@dataclass
class Expected:
    folder: Path
    archs: tuple[str, ...]
    baseline: dict[str, list[float]]  # arch -> baseline finals (two seeds)
    best: dict[str, float]  # arch -> best final knn_top1
    best_params: dict[str, dict[str, Any]]
    near_best_temperature: dict[str, tuple[float, float]]  # arch -> temperature range within 1 point of best
    counts: dict[str, dict[str, int]]  # arch -> state -> count
    params_count: dict[str, int]
    # arch -> (trial number, params, linear_top1) of a trial that wins on the probe but not on kNN
    probe_best: dict[str, tuple[int, dict[str, Any], float]] = field(default_factory=dict)


def arch_trials(best: float, base: tuple[float, float], shift: float,
                near_weight_decay: tuple[float, float] = (1e-5, 2e-5), *, probe_winner: bool = False,
                extra: dict[str, Any] | None = None) -> tuple[list[Planted], dict[str, Any]]:
    """Trials of one arch: two baseline seeds, 9 searched complete trials, 2 pruned, 1 failed, 1 diverged.

    `near_weight_decay`: the weight decay of the best trial and of the one within a point of it (that one
    keeps the ResNet-50 crop scale, so crop_min_scale does not move). `probe_winner`: the trial
    `PROBE_WINNER` loses on kNN by 4-5 points but wins on the linear probe (best + 0.06 against best + 0.03).
    `extra`: more params every searched trial samples."""
    common = dict(base_lr=0.06, crop_min_scale=0.5, symmetric=True, **(extra or {}))
    best_params = dict(common, weight_decay=near_weight_decay[0], temperature=0.1, **_topk(0.1, 16))
    probe = dict(linear_top1=best + 0.06) if probe_winner else {}
    trials = [
        Planted(dict(BASELINE_PARAMS), base[0], baseline=True, seed=0),
        Planted(dict(BASELINE_PARAMS), base[1], baseline=True, seed=1),
        Planted(best_params, best),
        Planted(dict(common, weight_decay=near_weight_decay[1], temperature=0.12, crop_min_scale=0.2,
                     **_topk(0.05, 8)), best - 0.005),  # within 1 pt
        Planted(dict(common, weight_decay=1e-5, temperature=0.3, smoothing="none"), best - 0.05 + shift,
                extra_metrics=probe),
        Planted(dict(common, weight_decay=3e-4, temperature=0.07, smoothing="none"), best - 0.08),
        Planted(dict(common, weight_decay=5e-6, temperature=0.15, **_topk(0.2, 32)), best - 0.03),
        Planted(dict(common, weight_decay=1e-4, temperature=0.45, **_topk(0.02, 4)), best - 0.15),
        Planted(dict(common, weight_decay=8e-4, temperature=0.25, smoothing="none"), best - 0.2),
        Planted(dict(BASELINE_PARAMS, base_lr=0.2, crop_min_scale=0.9), best - 0.25 + shift),
        Planted(dict(common, weight_decay=3e-6, temperature=0.09, **_topk(0.15, 2)), best - 0.04),
        Planted(dict(common, weight_decay=1e-3, temperature=0.5, smoothing="none"), 0.3, state="pruned", epochs=2),
        Planted(dict(common, weight_decay=9e-4, temperature=0.05, **_topk(0.3, 64)), 0.35, state="pruned", epochs=3),
        Planted(dict(common, weight_decay=1e-6, temperature=0.2, smoothing="none"), None, state="failed", epochs=1,
                error=f"CUDA out of memory {SCRIPT}", node=f"gpu-{SCRIPT}"),
        Planted(dict(common, base_lr=0.29, weight_decay=1e-6, temperature=0.06, smoothing="none"), None,
                state="diverged", epochs=3, error="loss became nan at epoch 2"),
    ]
    return trials, best_params


PROBE_WINNER = 4  # index (= trial number) in `arch_trials` of the trial that `probe_winner` lets win the probe


def planted_sweep(folder: Path, *, running: int = 1) -> Expected:
    """A sweep folder with `trials.db`: studies for mobilenetv3_large_100 and efficientnet_b0. In
    efficientnet_b0's, the linear probe ranks another trial first than kNN does (`Expected.probe_best`)."""
    folder.mkdir(parents=True, exist_ok=True)
    url = records.default_storage_url(str(folder))
    plan = {
        "mobilenetv3_large_100": (0.71, (0.40, 0.42), 0.0, 4_202_000),
        "efficientnet_b0": (0.74, (0.45, 0.44), 0.01, 4_007_000),
    }
    expected = Expected(folder, tuple(plan), {}, {}, {}, {}, {}, {})
    for arch, (best, base, shift, count) in plan.items():
        trials, best_params = arch_trials(best, base, shift, probe_winner=arch == "efficientnet_b0")
        if arch == "efficientnet_b0":
            expected.probe_best[arch] = (PROBE_WINNER, trials[PROBE_WINNER].params, best + 0.06)
        build_study(url, arch=arch, trials=trials, params_count=count, running=running)
        expected.baseline[arch] = list(base)
        expected.best[arch] = best
        expected.best_params[arch] = best_params
        expected.near_best_temperature[arch] = (0.1, 0.12)
        states = [t.state for t in trials] + ["running"] * running
        expected.counts[arch] = {s: states.count(s) for s in set(states)}
        expected.params_count[arch] = count
    return expected


def resnet50_sweep(folder: Path) -> float:
    """A second sweep folder with a resnet50 study (ResNet-50 settings on ResNet-50); returns its best."""
    folder.mkdir(parents=True, exist_ok=True)
    trials = [
        Planted(dict(BASELINE_PARAMS), 0.80, baseline=True, seed=0),
        Planted(dict(BASELINE_PARAMS, temperature=0.1), 0.82),
        Planted(dict(BASELINE_PARAMS, weight_decay=1e-5), 0.78),
    ]
    build_study(records.default_storage_url(str(folder)), arch="resnet50", trials=trials, params_count=23_508_032)
    return 0.82


# Archs with their timm parameter counts (backbone, num_classes=0), for sweeps of one, two and four archs.
ARCH_PARAMS = {
    "mobilenetv3_small_050": 570_000,
    "mobilenetv3_large_100": 4_202_000,
    "efficientnet_b0": 4_007_000,
    "resnet50": 23_508_032,
}


def arch_sweep(folder: Path, archs: tuple[str, ...]) -> Path:
    """A sweep folder with one planted study per arch (as `planted_sweep`), each also holding a trial that
    ASHA stopped after its first epoch: a curve of one point. The first arch's best weight decays lie within
    2x of the ResNet-50 value (1e-4), as in a short real sweep: a linear axis of long, tiny numbers."""
    folder.mkdir(parents=True, exist_ok=True)
    url = records.default_storage_url(str(folder))
    for i, arch in enumerate(archs):
        near_wd = (1.8e-4, 1.25e-4) if i == 0 else (1e-5, 2e-5)
        trials, _ = arch_trials(0.6 + 0.05 * i, (0.40 + 0.02 * i, 0.42), 0.01 * i, near_wd,
                                extra=dict(aug_strength=0.8, warmup_epochs=2.0, proj_hidden_dim=512))
        trials.append(Planted(dict(BASELINE_PARAMS, weight_decay=5e-4, temperature=0.4), 0.33, state="pruned",
                              epochs=1))
        build_study(url, arch=arch, trials=trials, params_count=ARCH_PARAMS[arch])
    return folder


# Strings a hand-made or hostile database can hold in any name. Each must reach every output as the text it is.
MARKDOWN = "*em* _u_ [link](javascript:alert(1)) ![img](http://example.com/x.png) `code` | cell <b>bold</b> &lt; ~~s~~"
MATHTEXT = r"$\pwned{1}$ costs 5$"  # matplotlib would typeset it, and fail on the unknown command
LINE_BREAKS = "one\rtwo\u2028three\nfour"  # a line break for YAML, CommonMark or Python in each
LONG = "x" * 150  # one word wider than a table column
HOSTILE_ARCH = f"net{SCRIPT} {MATHTEXT} {MARKDOWN} {LONG}"
HOSTILE_SPACE = f"space {SCRIPT} {LINE_BREAKS}"
HOSTILE_CHOICE = f"digits{SCRIPT}{MATHTEXT}|{MARKDOWN}"
# Study arch names that try to leave the report folder (up, absolute, "..") or collide once made
# file-name-safe, and a short one with mathtext and line breaks (shown whole in figure legends); their trials
# record a real timm arch, so each best recipe is valid and gets written.
ESCAPING_ARCHS = ("../../a b", "/a/b", "a_b", "..", f"m$\\pwned{{2}}$ {LINE_BREAKS}")  # the first three: best-a_b
VALID_ARCH = "mobilenetv3_small_050"


def hostile_sweep(folder: Path) -> Path:
    """A sweep folder whose names are hostile: one full study with `HOSTILE_ARCH` in `HOSTILE_SPACE`,
    searching the recipe field `dataset` over `HOSTILE_CHOICE` too, and a one-trial study per
    `ESCAPING_ARCHS` name (trials record `VALID_ARCH`)."""
    folder.mkdir(parents=True, exist_ok=True)
    url = records.default_storage_url(str(folder))
    choice = {"dataset": CategoricalDistribution(["digits", HOSTILE_CHOICE])}
    trials, _ = arch_trials(0.7, (0.4, 0.42), 0.0, extra=dict(dataset=HOSTILE_CHOICE))
    build_study(url, arch=HOSTILE_ARCH, space=HOSTILE_SPACE, trials=trials, params_count=4_000_000,
                distributions=choice)
    for i, arch in enumerate(ESCAPING_ARCHS):
        build_study(url, arch=arch, space=HOSTILE_SPACE, recipe_arch=VALID_ARCH, params_count=570_000,
                    trials=[Planted(dict(BASELINE_PARAMS), 0.5 + 0.01 * i, baseline=True)])
    return folder
