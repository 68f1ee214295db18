"""Ray: start a local instance or join a cluster, and check that a trial fits on it.

Nothing here schedules work; Ray does. A caller that already connected (a test session, a
notebook) keeps its connection: the sweep uses it and leaves it running.

A local instance listens on 127.0.0.1 only, whatever the environment, and uses Ray's token authentication
(its default for `ray.init()`; the token is ~/.ray/auth_token). Joining a cluster checks first that something
listens at HOST:PORT, and names an authentication failure as such.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import sys
import tempfile
from typing import Iterator

from lightrecipe.errors import UserError, first_line
from lightrecipe.search.cluster.ray_private import loopback_only, quiet_token_notice

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # an offline tool: no usage reports


AUTH_FAILURE_MARKERS = ("InvalidAuthToken", "Unauthenticated", "authentication token")
CONNECT_CHECK_S = 5.0  # a head that does not accept a TCP connection in 5 s is not there (Ray would retry for minutes)
RAY_INIT_KWARGS = dict(
    include_dashboard=False,  # the sweep prints its own table; a dashboard costs a process and a port
    log_to_driver=False,  # trial output goes to worker logs, so it cannot break the progress table
    logging_level=logging.WARNING,
)


@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[None]:
    """Connected Ray for the duration of the block: `address` joins a cluster, None starts a local one."""
    import ray

    if ray.is_initialized():
        yield
        return
    if address:
        join(address)
        try:
            yield
        finally:
            ray.shutdown()
    else:
        with local_ray():
            yield


@contextlib.contextmanager
def local_ray(num_cpus: int | None = None) -> Iterator[str]:
    """A new private Ray instance on this machine, on 127.0.0.1 only, with Ray's token authentication (its
    default for a local instance); yields its GCS address. Never one that RAY_ADDRESS or /tmp/ray points to."""
    import ray

    with loopback_only():
        try:
            with quiet_token_notice():
                ray.init(address="local", num_cpus=num_cpus, **RAY_INIT_KWARGS)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise UserError(f"local Ray: cannot start: {first_line(exc)}") from None
        try:
            yield ray.get_runtime_context().gcs_address
        finally:
            ray.shutdown()


def join(address: str) -> None:
    """Connect this driver to the Ray cluster at `address`; every way that fails is one UserError line."""
    import ray

    if address != "auto" and "://" not in address:
        host, port = parse_address(address)
        _check_listening(address, host, port)
    with _captured_stderr() as captured:  # Ray's C++ client logs each failed attempt there, ~20 lines
        try:
            ray.init(address=address, **RAY_INIT_KWARGS)
        except Exception as exc:  # noqa: BLE001 - ConnectionError, AuthenticationError, ValueError, ...
            failure = exc
        else:
            failure = None
    if failure is None:
        sys.stderr.write(captured.text)  # a successful join keeps whatever Ray had to say
        return
    said = f"{failure} {captured.text}"
    if any(marker in said for marker in AUTH_FAILURE_MARKERS):
        raise UserError(
            f"--address {address}: the cluster refused this driver's Ray authentication token. Run the sweep "
            "with RAY_AUTH_MODE=token and the cluster's token (the file ~/.ray/auth_token, or RAY_AUTH_TOKEN / "
            "RAY_AUTH_TOKEN_PATH; `ray get-auth-token` on the head prints it)"
        ) from None
    raise UserError(f"--address {address}: cannot connect to the Ray cluster: {first_line(failure)}") from None


def parse_address(address: str) -> tuple[str, int]:
    """HOST:PORT of a Ray head -> (host, port); anything else is a UserError naming what is valid."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(
            f"--address '{address}' is not HOST:PORT of a Ray head (e.g. 10.0.0.1:6379, the address "
            "`ray start --head` prints), nor 'auto'"
        )
    return host.strip("[]"), int(port)


def _check_listening(address: str, host: str, port: int) -> None:
    try:
        with socket.create_connection((host, port), timeout=CONNECT_CHECK_S):
            pass
    except OSError as exc:
        raise UserError(
            f"--address {address}: nothing accepts connections there ({exc.strerror or exc}); start the head "
            f"with `ray start --head --port {port}` or check the host and port"
        ) from None


class _Captured:
    text = ""


@contextlib.contextmanager
def _captured_stderr() -> Iterator[_Captured]:
    """File descriptor 2 (where Ray's C++ client logs) goes to a temporary file inside the block."""
    captured = _Captured()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.text = sink.read().decode(errors="replace")




def trials_that_fit(cpus_per_trial: float, gpus_per_trial: float) -> int:
    """How many trials the cluster can run at once; UserError when not even one fits on any node."""
    import ray

    best_node, total = 0.0, 0
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        res = node.get("Resources", {})
        fits = _fits(res.get("CPU", 0.0), cpus_per_trial)
        if gpus_per_trial > 0:
            fits = min(fits, _fits(res.get("GPU", 0.0), gpus_per_trial))
        total += fits
        best_node = max(best_node, fits)
    if best_node < 1:
        need = f"{cpus_per_trial:g} CPU" + (f" and {gpus_per_trial:g} GPU" if gpus_per_trial > 0 else "")
        have = ", ".join(
            f"{n.get('Resources', {}).get('CPU', 0):g} CPU/{n.get('Resources', {}).get('GPU', 0):g} GPU"
            for n in ray.nodes()
            if n.get("Alive")
        )
        raise UserError(
            f"a trial needs {need} (--cpus-per-trial/--gpus-per-trial) but no Ray node has that much "
            f"(nodes: {have or 'none'}); lower the request or add nodes"
        )
    return total


def _fits(available: float, per_trial: float) -> int:
    if per_trial <= 0:
        return 1_000_000
    return int(math.floor(available / per_trial + 1e-9))
