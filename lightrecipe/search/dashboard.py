"""`lightrecipe dashboard SOURCE`: optuna-dashboard over a trial database, for watching a sweep live.

optuna-dashboard (the `lightrecipe[dashboard]` extra) is the browser view Optuna users already know: studies,
trials, intermediate values per epoch, parameter importances. It is served on 127.0.0.1 only: it reads and
can annotate the trial database, so it is no page for the network. From another machine, forward the port:
`ssh -L 8080:127.0.0.1:8080 HOST`.
"""

from __future__ import annotations

import signal
import socketserver
import sys
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from lightrecipe.errors import UserError, install_extra
from lightrecipe.search.store import records
from lightrecipe.search.store.storage import masked, open_storage

HOST = "127.0.0.1"  # loopback only, see the module docstring
DEFAULT_PORT = 8080  # optuna-dashboard's own default
REQUEST_TIMEOUT_S = 30  # seconds a connection may wait for its client (wsgiref answers one request per connection)


def storage_url(source: str) -> str:
    """A sweep folder, an SQLite file or a database URL (SQLAlchemy or journal://) -> the URL to open."""
    if "://" in source:
        return source
    path = Path(source)
    if path.is_dir():
        if not (path / records.DB_FILENAME).is_file():
            raise UserError(
                f"source '{source}' is a folder without a trial database '{records.DB_FILENAME}'; give a sweep "
                "folder, a .db file or a database URL"
            )
        return records.default_storage_url(str(path))
    if path.is_file():
        return f"sqlite:///{path.resolve().as_posix()}"
    raise UserError(f"source '{source}' does not exist; give a sweep folder, a .db file or a database URL")


class _Threaded(socketserver.ThreadingMixIn, WSGIServer):
    # One thread per request, joined when the server closes: Ctrl-C lets a request in flight (a parameter
    # importance can take seconds) finish and then exits. Daemon threads would be cut off in the middle of a
    # database call during interpreter shutdown, which can hang the exit instead.
    daemon_threads = False
    block_on_close = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # a client that went away or stalled past the timeout: nothing for the user to act on
        super().handle_error(request, client_address)


class _Quiet(WSGIRequestHandler):
    timeout = REQUEST_TIMEOUT_S  # a connection that sends nothing cannot hold up Ctrl-C for longer than this

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # one line per request would bury the address line


def serve(source: str, port: int = DEFAULT_PORT) -> WSGIServer:
    """A dashboard server over `source`, bound to 127.0.0.1:`port` (0: a free port); call serve_forever()."""
    try:
        import optuna_dashboard
    except ModuleNotFoundError:
        raise UserError(f"the dashboard needs optuna-dashboard: {install_extra('dashboard')}") from None
    if not 0 <= port < 65536:
        raise UserError(f"--port must be 0..65535, got {port}")
    url = storage_url(source)
    app = optuna_dashboard.wsgi(open_storage(url))
    try:
        return make_server(HOST, port, app, server_class=_Threaded, handler_class=_Quiet)
    except OSError as exc:
        raise UserError(f"--port {port}: cannot listen on {HOST}:{port}: {exc.strerror or exc}") from None


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM end serve_forever(). Python only turns SIGINT into KeyboardInterrupt when the process
    did not start with it ignored, and a shell script's background job (`lightrecipe dashboard ... &`) starts
    with it ignored; the command promises that Ctrl-C stops it, so it says so itself."""

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)


def cmd_dashboard(args: Any) -> int:
    server = serve(args.source, args.port)
    host, port = server.server_address[:2]
    _stop_on_signals()
    print(f"dashboard of {masked(storage_url(args.source))}: http://{host}:{port}/dashboard/ (Ctrl-C stops it)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "dashboard",
        help="watch a trial database live in optuna-dashboard (on 127.0.0.1)",
        description="Serve optuna-dashboard over a sweep's trial database on 127.0.0.1: studies, trials, "
        "per-epoch values, importances; a running sweep is fine. Needs optuna-dashboard: "
        f"{install_extra('dashboard')}.",
    )
    p.add_argument("source", metavar="SWEEP_DIR_OR_URL",
                   help="sweep folder (its trials.db), SQLite file, or database URL (postgresql://..., journal://...)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT})")
    p.set_defaults(func=cmd_dashboard)
