"""The Ray Tune side: the function trainable around `train()`, Ray Train data-parallel trials, the Optuna
searcher and sampler, ASHA, the collapse stop and the live trial table.

Owns: trainable.py, data_parallel.py, devices.py, searcher.py, sampler.py, scheduler.py, collapse.py,
progress.py. May import: errors, trainers, store.
"""
