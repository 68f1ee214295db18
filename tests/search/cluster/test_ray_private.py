"""Pins the Ray behaviour that `search/ray_private.py` relies on; a Ray release that moves it fails here first."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from lightrecipe.search.cluster import ray_private

# In a fresh process (no Ray node yet), how Ray resolves "127.0.0.1" for a node it would start.
RESOLVE = """
import os, sys
import ray
from ray._private import services
from lightrecipe.search.cluster.ray_private import loopback_only
outside = services.resolve_ip_for_localhost("127.0.0.1")
with loopback_only():
    inside = services.resolve_ip_for_localhost("127.0.0.1")
    env_inside = os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
print(outside, inside, env_inside, os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "unset"))
"""


@pytest.mark.slow  # runs a child Python that imports Ray
@pytest.mark.parametrize("setting", [None, "1"])
def test_loopback_only_keeps_ray_on_127_0_0_1_whatever_the_environment(setting):
    env = {k: v for k, v in os.environ.items() if k != ray_private.MULTI_NODE_ENV}
    if setting is not None:
        env[ray_private.MULTI_NODE_ENV] = setting
    result = subprocess.run([sys.executable, "-c", RESOLVE], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    outside, inside, env_inside, env_after = result.stdout.split()
    assert inside == "127.0.0.1" and env_inside == "0"  # what a node started inside the block binds to
    assert env_after == (setting or "unset")  # the caller's setting comes back
    # The premise: without it, Ray turns 127.0.0.1 into the machine's routable address (where it has one).
    routable = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    if any(not ip.startswith("127.") and ":" not in ip for ip in routable):
        assert outside != "127.0.0.1"


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_ray_logs_its_token_notice_where_the_filter_looks_and_only_that_is_dropped():
    from ray._private.authentication import authentication_token_setup as setup

    assert setup.logger.name == ray_private.TOKEN_NOTICE_LOGGER
    seen = Records()
    setup.logger.addHandler(seen)  # Ray's loggers do not propagate to the root logger
    try:
        setup._warn_token_auth_enabled()
        assert any(ray_private.TOKEN_NOTICE in m for m in seen.messages)
        seen.messages.clear()
        with ray_private.quiet_token_notice():
            setup._warn_token_auth_enabled()
            setup._warn_token_auth_disabled()  # a different warning still gets through
    finally:
        setup.logger.removeHandler(seen)
    assert not any(ray_private.TOKEN_NOTICE in m for m in seen.messages)
    assert any("Token authentication is disabled" in m for m in seen.messages)
