"""A real PostgreSQL server for the tests: Debian's binaries, a temp data dir, a free port on 127.0.0.1.

`tests/ensure_system_packages.sh` installs the binaries when missing (the Makefile runs it before the tests).
PostgreSQL refuses to run as root, so under root the server runs as the unprivileged `nobody` user, in a
data dir owned by it; as any other user it runs as that user. Clients log in with a password
(scram-sha-256): the tests of secrets need one that can leak.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from .helpers import free_port

SUPERUSER = "lightrecipe"
UNPRIVILEGED = "nobody"  # Debian's user without a home or a shell: enough to own a data dir and run a server
START_TIMEOUT_S = 60


@dataclass
class Server:
    root: Path
    port: int
    password: str
    bindir: Path
    run_as: str | None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}:{quote(self.password, safe='')}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; its URL (password included, as a user would write it)."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if not found:
        raise RuntimeError("PostgreSQL is missing: run tests/ensure_system_packages.sh (the Makefile does)")
    return Path(found[-1]).parent


def start() -> Server:
    """initdb into a new temp dir and start the server on a free port of 127.0.0.1; `stop()` undoes both."""
    run_as = UNPRIVILEGED if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="lr-pg-", dir="/tmp"))  # short: the socket path must fit 107 bytes
    # A password with characters that URLs must encode: a leak of either form is caught.
    server = Server(root=root, port=free_port(), password=f"pw{secrets.token_hex(8)}@/x", bindir=bindir(),
                    run_as=run_as)
    (root / "pwfile").write_text(server.password + "\n")
    if run_as:
        account = pwd.getpwnam(run_as)
        for path in (root, root / "pwfile"):
            os.chown(path, account.pw_uid, account.pw_gid)
    root.chmod(0o700)
    _run(server, "initdb", "-D", str(root / "data"), "-U", SUPERUSER, "--auth=scram-sha-256",
         f"--pwfile={root / 'pwfile'}", "-E", "UTF8", "--no-instructions")
    options = f"-c listen_addresses=127.0.0.1 -p {server.port} -k {root}"
    _run(server, "pg_ctl", "-D", str(root / "data"), "-l", str(root / "server.log"), "-o", options,
         "-w", "-t", str(START_TIMEOUT_S), "start")
    return server


def stop(server: Server) -> None:
    try:
        _run(server, "pg_ctl", "-D", str(server.root / "data"), "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(server.root, ignore_errors=True)


def _run(server: Server, tool: str, *args: str) -> None:
    result = subprocess.run(
        [str(server.bindir / tool), *args], cwd=server.root, capture_output=True, text=True,
        user=server.run_as, group=server.run_as and pwd.getpwnam(server.run_as).pw_gid,
        env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8"}, timeout=START_TIMEOUT_S + 30,
    )
    if result.returncode != 0:
        log = server.root / "server.log"
        tail = log.read_text()[-2000:] if log.exists() else ""
        raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stdout}{result.stderr}{tail}")
