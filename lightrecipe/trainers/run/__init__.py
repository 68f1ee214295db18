"""A run: `train(recipe, workdir=..., device=..., report=...)` and the Trainer whose steps it runs, its scoring (kNN monitor, linear probe, feature
rank), the run folder's files (recipe, history, checkpoints, metrics), the progress bar, `--nproc` runs, and
what a run tells the `--log-to` trackers.

Owns: train.py, trainer.py, scoring.py, evaluate.py, run_files.py, progress.py, launch.py, outcome.py, trackers.py,
tracker_clients.py. May import: errors, trainers' recipe rules, data, parallel, method.
"""
