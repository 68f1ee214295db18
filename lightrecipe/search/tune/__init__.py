"""The Ray Tune side: the function trainable around `train()`, Ray Train data-parallel trials, the Optuna
searcher and sampler, ASHA, the collapse stop, the live trial table and the `--log-to` tracker callbacks.

Owns: trainable.py, data_parallel.py, devices.py, searcher.py, sampler.py, scheduler.py, collapse.py,
progress.py, trackers.py, wandb_actor.py. May import: errors, trainers, store.
"""
