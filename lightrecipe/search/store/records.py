"""What a sweep writes into its Optuna trial database, and what reports read back.

This module is the seam between search/ (the writer) and reports/ (the reader): both use these names and
nothing else. One Optuna study per (space, arch); its name is `study_name(space, arch)`.

Study user attributes
    space            space name (str)
    arch             timm architecture (str)
    objective        the metric the study maximises, e.g. "knn_top1" (str)
    max_epochs       epochs of a full trial (int)
    space_spec       the space as a plain dict (its YAML, parsed)
    sweep            the sweep's settings: trials, epochs, grace_epochs, overrides (--set), seed,
                     baseline; `--resume` checks them against its own flags (dict)
    study_key        a random id drawn when the study is created; its run folders are named by it, so two
                     studies never share a run folder (another database in the same --out, or two space
                     names that map to the same folder name) (str)
    floor            the random-init floor: the study's backbone untrained, scored by train()'s own final
                     evaluation; a list of dicts (seed, knn_top1, linear_top1, test_knn_top1,
                     test_linear_top1), one seed for a sweep study, --seeds for a confirm study (list)
    latency          the arch's inference latency on the driver's machine (search/latency.py): a list of dicts,
                     one per (device, threads), with the keys of `lightrecipe bench latency`: device,
                     device_name, threads, image_size, memory_format, batch1_ms_median, batch1_ms_p90,
                     serving_batch, serving_images_per_s; sweep studies only (list)
    kind             "sweep" (absent on older studies) or "confirm" (str)
    source_study     a confirm study: the name of the sweep study whose recipes it re-trains (str)
    confirm          a confirm study's settings: top, seeds, epochs (dict)
    confirm_seeds    a confirm study's seeds, for its runs and its floor: the smallest none of the sweep's
                     trials trained with (list of int; absent on older confirm studies, which used 0..seeds-1)
    warm_start       a warm-started study (`--warm-start`): where its first recipes came from: source (the
                     database, password masked), study (the source study's name), top (K) and trials (the
                     source trial numbers enqueued, in order) (dict)

Trial: Optuna's own fields hold the state (COMPLETE / PRUNED / FAIL / RUNNING), `params` (the sampled
values, Optuna distributions included) and `value` (the objective; a pruned trial keeps its last value).
A diverged trial is PRUNED in Optuna (so TPE learns to avoid its region; a FAIL trial TPE ignores) and
"diverged" in its `state` attribute; a failed one is FAIL.
Intermediate values hold the objective per epoch (step = epoch). Trial user attributes:
    state            "complete" | "pruned" | "failed" | "diverged" | "running"
    error            message of a failure or divergence ("" otherwise)
    baseline         True for the ResNet-50 settings trial (`lightrecipe` enqueues it first)
    recipe           the full resolved recipe (dict, Recipe.to_dict())
    history          per-epoch metrics: list of dicts with epoch, loss, lr, knn_top1, images_per_s,
                     epoch_seconds (what train() reports each epoch)
    metrics          the final metrics dict (train()'s return value; for a pruned trial, its last epoch); with
                     val_images and test_images, the split sizes, so reports rank on image counts
    params_count     backbone parameter count (int)
    wall_seconds     trial wall time (float)
    device_seconds   wall time x devices held (GPUs if any, else CPUs) (float)
    node             host name / Ray node IP where the trial ran (str)
    run_dir          absolute path of the trial's run folder (checkpoints, logs) (str)
    fitted           what fitting MoCo's settings to the data changed in this trial's recipe (trainers/fit.py):
                     {"train_images": N, "changed": {field: [preset value, fitted value]}}; absent when the
                     preset's queue and batch were kept (dict)
A confirm study's trials carry, set when they are enqueued:
    confirm_recipe   the recipe to train: the source trial's, at the confirm epochs and this seed (dict)
    source_trial     number of the source trial in the source study (int)
    role             "searched" (a top-K recipe) or "resnet50" (the ResNet-50 settings) (str)
    seed             the recipe seed of this run (int)
    short_value      the source trial's objective on the sweep's short schedule (float)
A warm-started trial (a source study's recipe mapped into this space, enqueued after the baseline) carries,
set when it is enqueued:
    warm_source      the source trial database, password masked (str)
    warm_source_study  the source study's name (str)
    warm_source_trial  the source trial's number (int)
    warm_changes     what mapping it into this space changed: one sentence per knob, e.g. "temperature 0.03
                     -> 0.05 (clipped to [0.05, 0.2])"; empty when it carried over as is (list of str)
"""

from __future__ import annotations

from lightrecipe.trainers.run.outcome import COMPLETE, DIVERGED

# Study attributes
SPACE = "space"
ARCH = "arch"
OBJECTIVE = "objective"
MAX_EPOCHS = "max_epochs"
SPACE_SPEC = "space_spec"
SWEEP = "sweep"
STUDY_KEY = "study_key"
FLOOR = "floor"
LATENCY = "latency"
LATENCY_MS = "batch1_ms_median"  # the latency a report plots: batch 1, the median warm run
KIND = "kind"
SOURCE_STUDY = "source_study"
CONFIRM = "confirm"
CONFIRM_SEEDS = "confirm_seeds"
WARM_START = "warm_start"
KIND_SWEEP, KIND_CONFIRM = "sweep", "confirm"

# Trial attributes
STATE = "state"
ERROR = "error"
BASELINE = "baseline"
RECIPE = "recipe"
HISTORY = "history"
METRICS = "metrics"
PARAMS_COUNT = "params_count"
WALL_SECONDS = "wall_seconds"
DEVICE_SECONDS = "device_seconds"
NODE = "node"
RUN_DIR = "run_dir"
FITTED = "fitted"
CONFIRM_RECIPE = "confirm_recipe"
SOURCE_TRIAL = "source_trial"
ROLE = "role"
SEED = "seed"
SHORT_VALUE = "short_value"
WARM_SOURCE = "warm_source"
WARM_SOURCE_STUDY = "warm_source_study"
WARM_SOURCE_TRIAL = "warm_source_trial"
WARM_CHANGES = "warm_changes"
ROLE_SEARCHED, ROLE_RESNET50 = "searched", "resnet50"
FLOOR_METRICS = ("knn_top1", "linear_top1", "test_knn_top1", "test_linear_top1")  # train()'s final scores

# Trial states. The trainer owns how a run ends (COMPLETE, DIVERGED); a sweep adds the rest.
PRUNED = "pruned"  # stopped early: by ASHA, or by the collapse stop
FAILED = "failed"  # raised an error (its one-line reason is in ERROR)
RUNNING = "running"  # started, not finished (or its sweep died while it ran)
WAITING = "waiting"  # enqueued, not started
STATES = (COMPLETE, PRUNED, FAILED, DIVERGED, RUNNING)  # what a trial's STATE attribute may hold
# How each state is kept in Optuna, by TrialState name. A diverged trial is PRUNED (with its last finite value,
# if any): TPE ranks pruned trials below every complete one, so it learns to avoid the region; FAIL it would
# ignore (optuna#1214).
OPTUNA_STATE_NAMES = {COMPLETE: "COMPLETE", PRUNED: "PRUNED", DIVERGED: "PRUNED", FAILED: "FAIL",
                      RUNNING: "RUNNING", WAITING: "WAITING"}
# A trial read back without a state of its own takes its Optuna state's plain name (PRUNED reads as pruned).
STATE_OF_OPTUNA = {name: state for state, name in reversed(OPTUNA_STATE_NAMES.items())}
VALIDATION_METRICS = ("knn_top1", "linear_top1")  # what may rank recipes: never a test metric
DEFAULT_OBJECTIVE = "knn_top1"  # val kNN: cheap per epoch, so ASHA and the final ranking use one metric
DB_FILENAME = "trials.db"  # SQLite file inside the sweep folder when no --storage is given


def study_name(space: str, arch: str) -> str:
    return f"{space}/{arch}"


def confirm_study_name(source_study: str) -> str:
    """The confirm study of a sweep study: its own study, tied to the source by name and `source_study`."""
    return f"{source_study}/confirm"


def default_storage_url(sweep_dir: str) -> str:
    """SQLite URL of the trial database inside a sweep folder (absolute: Ray trials change directory)."""
    from pathlib import Path

    return f"sqlite:///{(Path(sweep_dir).resolve() / DB_FILENAME).as_posix()}"
