"""The method: MoCo (timm backbone, projector, EMA key encoder, queue), its losses (InfoNCE and the smoothed
variants), split and synchronised BatchNorm, schedules, optimisers and precision.

Owns: model.py, losses.py, split_bn.py, schedules.py, optim.py, precision.py. May import: errors, trainers' recipe
rules, parallel (World). Knows nothing of data or of runs.
"""
