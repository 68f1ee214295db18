"""`--warm-start SOURCE[:ARCH] --warm-top K`: start a study from what another study learned (issue 23).

The top-K recipes of the source study (its confirmed winners first, when `lightrecipe confirm` ran on it,
then the rest by the sweep's objective) are mapped into this sweep's space (warm_map.py) and enqueued right
after the ResNet-50 baseline, once, when the study is created: `--resume` finds the study and enqueues
nothing again. Each carries its source (records.WARM_*); TPE then treats them as ordinary trials.

SOURCE is a sweep folder or a trial-database URL; ARCH picks the source study by arch. Without it, the
source study of the same arch as the target's, else the source's only sweep study.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, TextIO

import optuna
from optuna.trial import FrozenTrial, TrialState

from lightrecipe.errors import UserError
from lightrecipe.ranking import Standing, as_images, winner_first
from lightrecipe.search.store import records
from lightrecipe.search.store.storage import masked, open_storage
from lightrecipe.search.warm_map import map_recipe


@dataclass(frozen=True)
class WarmSource:
    label: str  # what messages and records show (password masked)
    url: str
    arch: str | None  # the source study's arch, when SOURCE:ARCH named one


def parse_source(text: str) -> WarmSource:
    """SOURCE[:ARCH] -> WarmSource. The text after the last ':' is an arch when it holds no '/' (a URL's
    ':' is followed by '//' or a port and a path)."""
    head, sep, tail = str(text).rpartition(":")
    arch = tail if sep and head and tail and "/" not in tail else None
    where = head if arch else str(text)
    if "://" in where:
        if where.startswith("sqlite:///") and not Path(where[len("sqlite:///"):]).is_file():
            raise UserError(f"--warm-start {masked(where)}: SQLite file does not exist; give a sweep folder "
                            "or the URL of its trial database")
        return WarmSource(masked(where), where, arch)
    db = Path(where) / records.DB_FILENAME
    if not db.is_file():
        raise UserError(f"--warm-start '{where}' is no sweep folder (no {records.DB_FILENAME} in it); give the "
                        "--out folder of a sweep, or a database URL")
    return WarmSource(str(where), records.default_storage_url(where), arch)


def source_study(source: WarmSource, target_arch: str, space_name: str) -> tuple[Any, optuna.Study]:
    """The source study for a target arch, with its storage (the confirm studies are not candidates); of
    several studies of that arch (other spaces), the one of the target's space."""
    storage = open_storage(source.url)
    by_arch: dict[str, list[str]] = {}
    for s in optuna.get_all_study_summaries(storage, include_best_trial=False):
        if s.user_attrs.get(records.KIND) != records.KIND_CONFIRM:
            by_arch.setdefault(str(s.user_attrs.get(records.ARCH, s.study_name.split("/")[-1])), []).append(
                s.study_name)
    valid = ", ".join(sorted(by_arch)) or "none (the database holds no sweep study)"
    if source.arch is not None and source.arch not in by_arch:
        raise UserError(f"--warm-start {source.label}:{source.arch}: no study of arch '{source.arch}' there; "
                        f"valid: {valid}")
    arch = source.arch or (target_arch if target_arch in by_arch else None)
    if arch is None and len(by_arch) != 1:
        raise UserError(f"--warm-start {source.label}: no study of arch '{target_arch}' there; name one as "
                        f"SOURCE:ARCH, valid: {valid}")
    arch = arch or next(iter(by_arch))  # the source's only arch
    names = by_arch[arch]
    name = records.study_name(space_name, arch) if len(names) > 1 else names[0]
    if name not in names:
        raise UserError(f"--warm-start {source.label}: several studies of that arch ({', '.join(sorted(names))}) "
                        f"and none of space '{space_name}'; give a source holding one of them")
    return storage, optuna.load_study(study_name=name, storage=storage)


def top_trials(storage: Any, study: optuna.Study, top: int, label: str) -> list[FrozenTrial]:
    """The source's top-`top` searched trials: its confirmed recipes first, in the order the report names the
    winner (lightrecipe.ranking), then the other complete trials by value (ties: the earlier). A source with no
    complete trial is a UserError."""
    done = {t.number: t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if not t.user_attrs.get(records.BASELINE) and t.params and _finite(t.value)}
    if not done:
        raise UserError(f"--warm-start {label}: study '{study.study_name}' has no complete searched trial to "
                        "start from; valid: a sweep with at least one complete trial besides the baseline")
    confirmed = _confirmed_standings(storage, study.study_name, done)
    first = [confirmed[i].source_trial for i in winner_first(confirmed)]
    rest = sorted((n for n in done if n not in first), key=lambda n: (-done[n].value, n))
    return [done[n] for n in (first + rest)[:top]]


def _confirmed_standings(storage: Any, name: str, done: Mapping[int, FrozenTrial]) -> list[Standing]:
    """The standing of each trial of `done` with a complete confirm run, when a confirm study of `name` exists:
    seeds completed of those enqueued, the mean confirmed value and the sweep value, in images."""
    confirm = records.confirm_study_name(name)
    if confirm not in {s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}:
        return []
    planned: dict[int, list[FrozenTrial]] = {}
    for t in optuna.load_study(study_name=confirm, storage=storage).get_trials(deepcopy=False):
        if t.user_attrs.get(records.ROLE) == records.ROLE_SEARCHED:
            planned.setdefault(int(t.user_attrs[records.SOURCE_TRIAL]), []).append(t)
    standings = []
    for number, runs in planned.items():
        complete = [t for t in runs if t.state == TrialState.COMPLETE and _finite(t.value)]
        if number not in done or not complete:
            continue
        images = float((complete[0].user_attrs.get(records.METRICS) or {}).get("val_images", math.nan))
        mean = sum(t.value for t in complete) / len(complete)
        standings.append(Standing(all_seeds=len(complete) >= len(runs),
                                  confirmed=float(as_images(mean, images, len(complete))),
                                  short=float(as_images(done[number].value, images)), source_trial=number))
    return standings


@dataclass(frozen=True)
class WarmPicks:
    """What a new study starts from: the source, its study, and the trials to map, best first."""

    source: WarmSource
    study: str
    trials: list[FrozenTrial]
    top: int


def warm_picks(source: WarmSource, top: int, space: Any, arch: str) -> WarmPicks:
    """Everything about the source checked before the new study is created: its study, its top trials, a
    knob in common with `space`."""
    storage, study = source_study(source, arch, space.name)
    trials = top_trials(storage, study, top, source.label)
    _check_shared(study, space)
    return WarmPicks(source, study.study_name, trials, top)


def enqueue_warm(study: optuna.Study, picks: WarmPicks, space: Any, overrides: Mapping[str, Any],
                 taken: list[dict[str, Any]], stream: TextIO) -> None:
    """Map the picked trials into `space` and enqueue them (after whatever `taken` holds: the baseline's
    params), printing each change; a recipe equal to one already enqueued is skipped."""
    tag, used = f"[{study.study_name}] warm start", []
    for t in picks.trials:
        where = f"{picks.study} #{t.number}"
        try:
            mapped = map_recipe(t.params, t.user_attrs.get(records.RECIPE), space, overrides)
        except UserError as exc:
            stream.write(f"{tag}: {where} skipped: its recipe is invalid here: {exc}\n")
            continue
        if mapped.params in taken:
            stream.write(f"{tag}: {where} skipped: maps to a recipe already enqueued\n")
            continue
        taken.append(mapped.params)
        study.enqueue_trial(mapped.params, user_attrs={
            records.WARM_SOURCE: picks.source.label, records.WARM_SOURCE_STUDY: picks.study,
            records.WARM_SOURCE_TRIAL: t.number, records.WARM_CHANGES: mapped.changes})
        used.append(t.number)
        stream.write(f"{tag}: {where} (value {t.value:.4f})" + ("" if mapped.changes else ", as is") + "\n")
        for change in mapped.changes:
            stream.write(f"    {change}\n")
    study.set_user_attr(records.WARM_START, {"source": picks.source.label, "study": picks.study,
                                             "top": picks.top, "trials": used})
    stream.flush()


def _check_shared(source: optuna.Study, space: Any) -> None:
    """A source whose searched knobs share none with the target's has nothing to transfer."""
    spec = source.user_attrs.get(records.SPACE_SPEC) or {}
    knobs = set(spec.get("params") or {}) or {k for t in source.get_trials(deepcopy=False) for k in t.params}
    if not knobs & set(space.params):
        raise UserError(f"--warm-start: study '{source.study_name}' searched {', '.join(sorted(knobs)) or 'nothing'},"
                        f" none of which space '{space.name}' searches ({', '.join(space.params)}); valid: a "
                        "source sharing at least one knob")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
