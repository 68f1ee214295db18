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

    if address:
        check_address(address)  # a wrong address is named before anything else, even when Ray is up already
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


def check_address(address: str) -> None:
    """HOST:PORT where something listens (or 'auto', or a ray:// URL); UserError otherwise."""
    if address != "auto" and "://" not in address:
        host, port = parse_address(address)
        _check_listening(address, host, port)


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




@contextlib.contextmanager
def placement_groups_released() -> Iterator[None]:
    """Placement groups this driver's job creates inside the block and leaves behind are removed at its end.

    A data-parallel trial's Ray Train controller holds its workers' CPUs and GPUs in a placement group. When
    Tune ends the trial by ending its actor (the time budget, a signal), the controller goes with it, and Ray
    Train leaves the group to a detached cleaner that asks Ray's state API whether the controller still lives.
    That API gives up when two Ray instances run on one machine (two users' sweeps, a test beside a sweep), so
    the group and its CPUs would outlive the sweep on any Ray that outlives it (a cluster joined with
    --address, a notebook's), and the `--resume` that follows would wait for them forever. Groups of other
    jobs (other drivers on a shared cluster) are never touched: a group's id ends with its job's id.
    """
    import ray
    from ray.util.placement_group import PlacementGroup, placement_group_table, remove_placement_group

    job = ray.get_runtime_context().get_job_id()
    before = set(placement_group_table())
    try:
        yield
    finally:
        for group_id, info in placement_group_table().items():
            if group_id in before or not group_id.endswith(job) or info.get("state") == "REMOVED":
                continue
            try:
                remove_placement_group(PlacementGroup(ray.PlacementGroupID.from_hex(group_id)))
            except Exception:  # noqa: BLE001 - removed meanwhile by Ray Train's own cleaner
                pass


def trials_that_fit(cpus_per_worker: float, gpus_per_worker: float, workers: int = 1) -> int:
    """How many trials of `workers` workers each the live cluster can run at once; UserError when the whole
    cluster cannot hold one trial. A trial's workers may sit on different nodes (Ray Train places them)."""
    import ray

    nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
    bundles = worker_bundles(nodes, cpus_per_worker, gpus_per_worker)
    if bundles < workers:
        need = f"{cpus_per_worker:g} CPU" + (f" and {gpus_per_worker:g} GPU" if gpus_per_worker > 0 else "")
        have = ", ".join(f"{res.get('CPU', 0):g} CPU/{res.get('GPU', 0):g} GPU" for res in nodes)
        raise UserError(
            f"a trial needs {workers} worker(s) of {need} (--workers-per-trial, --cpus-per-trial, --gpus-per-trial) "
            f"but the cluster holds {bundles} (nodes: {have or 'none'}); lower the request or add nodes"
        )
    return bundles // workers


def worker_bundles(nodes: list[dict[str, float]], cpus_per_worker: float, gpus_per_worker: float) -> int:
    """Workers of `cpus_per_worker` CPUs and `gpus_per_worker` GPUs that fit on `nodes` (each a dict of its
    resources, as `ray.nodes()` gives them): the sum over nodes of min(free CPUs / c, free GPUs / g)."""
    total = 0
    for res in nodes:
        fits = _fits(res.get("CPU", 0.0), cpus_per_worker)
        if gpus_per_worker > 0:
            fits = min(fits, _fits(res.get("GPU", 0.0), gpus_per_worker))
        total += fits
    return total


def _fits(available: float, per_trial: float) -> int:
    if per_trial <= 0:
        return 1_000_000
    return int(math.floor(available / per_trial + 1e-9))
