"""Test-wide settings: a quiet, local, offline Ray and a headless matplotlib, set before anything imports them."""

import os

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # keeps Ray on 127.0.0.1
os.environ.setdefault("MPLBACKEND", "Agg")
