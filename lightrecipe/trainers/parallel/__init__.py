"""Data parallelism: the process group a run sits in (`World`: rank, size, gathers, broadcasts, the strided
layout of the global batch) and the local launcher that starts N ranks on this machine.

Owns: world.py, launch.py. May import: errors only (torch.distributed below it; what a rank runs is the caller's).
"""
