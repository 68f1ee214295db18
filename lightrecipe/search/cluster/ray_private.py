"""The two places where lightrecipe needs more of Ray than its public API offers, kept in one small module.

`tests/search/cluster/test_ray_private.py` pins each behaviour relied on, so a Ray release that moves them fails a
fast test instead of silently exposing a sweep's Ray on the network or printing Ray's notices again.

1. Loopback only. A single-node Ray keeps every port on 127.0.0.1 only when its multi-node mode is off
   (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`, read once, when `ray` is first imported, into
   `ray._private.ray_constants.ENABLE_RAY_CLUSTER`). With the mode on, Linux's default, Ray replaces
   127.0.0.1 with the machine's routable address and its GCS, raylet and workers listen on every interface,
   even with `_node_ip_address="127.0.0.1"`. The sweep's own Ray never needs other machines, so it switches
   the mode off in this process (the constant) and in the processes Ray starts (the variable) while it runs.
2. Ray's notice on every new local instance ("Token authentication is enabled for this Ray cluster. Set
   RAY_AUTH_MODE=disabled to opt out...") is advice about Ray, printed above the sweep's live table. Token
   authentication itself stays on (Ray's default); only that one log record is dropped.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Iterator

MULTI_NODE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
TOKEN_NOTICE_LOGGER = "ray._private.authentication.authentication_token_setup"
TOKEN_NOTICE = "Token authentication is enabled for this Ray cluster"


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Ray started inside this block listens on 127.0.0.1 only; the settings before it come back after it."""
    from ray._private import ray_constants

    before_env = os.environ.get(MULTI_NODE_ENV)
    before_const = ray_constants.ENABLE_RAY_CLUSTER
    os.environ[MULTI_NODE_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = before_const
        if before_env is None:
            os.environ.pop(MULTI_NODE_ENV, None)
        else:
            os.environ[MULTI_NODE_ENV] = before_env


class _DropTokenNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return TOKEN_NOTICE not in record.getMessage()


@contextlib.contextmanager
def quiet_token_notice() -> Iterator[None]:
    """Drop Ray's token-authentication notice logged inside this block; every other record passes."""
    logger = logging.getLogger(TOKEN_NOTICE_LOGGER)
    notice_filter = _DropTokenNotice()
    logger.addFilter(notice_filter)
    try:
        yield
    finally:
        logger.removeFilter(notice_filter)
