"""Sweeps: the trainer as a Ray Tune trial, Optuna sampling the recipe knobs, ASHA stopping weak trials, every
trial recorded in an Optuna trial database; resumable, local or on a Ray cluster. Imports trainers and spaces,
never reports.

Rooms, from the ground up (a room imports only rooms before it):
- store/: the trial database: record names (the schema), studies, storage URLs, the driver lease.
- cluster/: Ray sessions (a private one on loopback, or a joined cluster), signals and exit codes.
- tune/: the Ray side: trainable, Ray Train data-parallel trials, Optuna searcher and sampler, ASHA, live table.
- settings.py, planning.py, floor.py, sweep.py, dashboard.py, commands.py: the sweep itself, flags to outcome;
  warm_start.py and warm_map.py: `--warm-start`, another study's top recipes mapped into this space.
- confirm/: re-training a sweep's winners over seeds on a longer schedule.
"""
