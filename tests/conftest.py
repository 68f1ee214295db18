"""Test-wide settings: a quiet, local, offline Ray and a headless matplotlib, set before anything imports them."""

import os

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # keeps Ray on 127.0.0.1
os.environ.setdefault("MPLBACKEND", "Agg")

import logging  # noqa: E402

import pytest  # noqa: E402

# slow_guard: a test not marked slow fails when it starts a process or Ray, or trains (see its docstring).
pytest_plugins = ["pytester", "tests.slow_guard"]


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray instance for the whole test session (starting Ray costs seconds on 2 shared cores).

    `address="local"` never joins another instance on this machine (RAY_ADDRESS, /tmp/ray). Code under test
    that finds Ray initialised uses it and leaves it running. Yields the GCS address, so a subprocess (the
    CLI as a user runs it) can join with `--address`.
    """
    import ray

    ray.init(
        address="local",
        num_cpus=2,  # this machine's cores; trials ask for 1 CPU each
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
