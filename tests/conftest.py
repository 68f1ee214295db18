"""Test-wide settings, set before anything imports Ray or matplotlib: quiet, offline Ray and headless plots.

Ray runs as a user gets it: token authentication on (Ray's default for a local instance), and each private
instance on 127.0.0.1 because lightrecipe's own `local_ray` keeps it there. The one difference: the session's
token lives in a temp file named by RAY_AUTH_TOKEN_PATH (Ray reads it before ~/.ray/auth_token), so the
tests neither need nor write the machine's ~/.ray.
"""

import atexit
import os
import secrets
import shutil
import tempfile

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MPLBACKEND", "Agg")
if "RAY_AUTH_TOKEN" not in os.environ and "RAY_AUTH_TOKEN_PATH" not in os.environ:
    _token_dir = tempfile.mkdtemp(prefix="lr-token-")
    atexit.register(shutil.rmtree, _token_dir, True)
    _token_file = os.path.join(_token_dir, "auth_token")
    with open(os.open(_token_file, os.O_WRONLY | os.O_CREAT, 0o600), "w") as _f:
        _f.write(secrets.token_hex(32))  # the form `ray get-auth-token --generate` writes
    os.environ["RAY_AUTH_TOKEN_PATH"] = _token_file

# W&B's own folders (cache, settings, staging) in a temp dir for every process of the session, Ray's workers and
# their logging actors included (they start with this environment): a test run writes nothing under ~/.
_wandb_home = tempfile.mkdtemp(prefix="lr-wandb-")
atexit.register(shutil.rmtree, _wandb_home, True)
for _name in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
    os.environ.setdefault(_name, os.path.join(_wandb_home, _name.lower()))

import pytest  # noqa: E402

# slow_guard: a test not marked slow fails when it starts a process or Ray, or trains (see its docstring).
pytest_plugins = ["pytester", "tests.slow_guard"]


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray instance for the whole test session (starting Ray costs seconds on 2 shared cores).

    Started by the product's own `local_ray` (new instance, loopback only, token auth). Code under test that
    finds Ray initialised uses it and leaves it running. Yields the GCS address, so a subprocess (the CLI as
    a user runs it) can join with `--address`.
    """
    from lightrecipe.search.cluster.session import local_ray

    with local_ray(num_cpus=2) as gcs_address:  # this machine's cores; trials ask for 1 CPU each
        yield gcs_address


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server on 127.0.0.1 for the session (see tests/search/postgres.py), stopped at the end."""
    from tests.search import postgres

    try:
        server = postgres.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        postgres.stop(server)
