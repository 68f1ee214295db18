"""Where trials run: a private Ray on loopback or a joined cluster, what it can hold, and how a sweep stops
(signals, time budget, exit codes).

Owns: session.py, ray_private.py, interrupts.py. May import: errors and Ray.
"""
