"""Everything that trains, evaluates or exports one model. Imports no Optuna and no Ray, and nothing from
`search`, `spaces` or `reports`.

Rooms, from the ground up (a room imports only rooms before it):
- fields/: what a field may hold (choices, bounds and types, arch names, the fitted queue and batch, smoothing
  groups), recipes as text (files, `--set`), the YAML reader.
- recipe.py, presets.py: the Recipe and every rule about its fields; named recipes.
- data/: datasets, fixed splits, decoding, two-view augmentation.
- parallel/: the process group (`World`: gathers, broadcasts) and the local launcher.
- method/: MoCo (backbone, projector, key encoder, queue), losses, split/sync BatchNorm, schedules, optimisers,
  precision.
- run/: train(), scoring (kNN, probe, feature rank), the run folder's files, progress, `--nproc` runs.
- export.py, bench.py, commands.py, export_commands.py: exported backbones, throughput, the CLI commands.
"""
