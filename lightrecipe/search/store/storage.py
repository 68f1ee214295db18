"""Where a trial database lives, and how its URL may be shown: the one home of both rules.

A trial database is named by a URL:
- `sqlite:////abs/path/trials.db`: the default, a file inside the sweep folder. It is switched to WAL mode so
  a report can read while the sweep writes. SQLite's locking is unsafe on network file systems (NFS, Lustre):
  use it on a local disk only.
- `postgresql://user@host/db` (or any SQLAlchemy URL): a database server, for clusters and long sweeps. The
  `lightrecipe[postgres]` extra installs the driver (psycopg 3) that a plain `postgresql://` URL needs with
  SQLAlchemy 2.1. Connections are checked before use (`pool_pre_ping`), so one that a server or a firewall
  dropped during a multi-day sweep is replaced instead of failing the next write.
- `journal:////abs/path/trials.log`: Optuna's JournalStorage on a plain file, safe on a shared file system
  (it locks with symlinks, which NFS makes atomic, not with `flock`).

A URL can carry a password. It is never printed, logged or written anywhere by lightrecipe: every message
shows `masked(url)`, and every error text that came from a driver passes through `scrub(text, url)`.
"""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from lightrecipe.errors import UserError, first_line, install_extra

SQLITE_TIMEOUT_S = 60  # a report holding a read transaction must not make the sweep's writes fail
JOURNAL_SCHEME = "journal://"
SQLITE_SCHEME = "sqlite:///"
MASK = "***"
# scheme://user:password@host... : the password is what lies between the first ':' after '//' and the last '@'
_USERINFO = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@]*:)(?P<password>.*)@(?P<tail>[^@]*)$")
EXAMPLES = (
    "e.g. sqlite:////abs/path/trials.db, postgresql://user@host/db (password in ~/.pgpass or PGPASSWORD) "
    "or journal:////shared/path/trials.log"
)


def masked(url: str) -> str:
    """`url` with its password replaced by ***, for anything a user or a log sees."""
    match = _USERINFO.match(str(url))
    if match is None:
        return str(url)
    return f"{match['head']}{MASK}@{match['tail']}"


def password(url: str) -> str | None:
    """The password a URL carries (decoded), or None."""
    match = _USERINFO.match(str(url))
    return unquote(match["password"]) if match and match["password"] else None


def scrub(text: str, url: str) -> str:
    """`text` (a driver's error message, say) with every form of the URL's password replaced by ***."""
    secret = password(url)
    out = str(text).replace(str(url), masked(url))
    if secret:
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            out = out.replace(form, MASK)
    return out


def scrubbed_first_line(exc: BaseException, url: str) -> str:
    """An exception as one line for a UserError, password scrubbed."""
    return scrub(first_line(exc), url)


def journal_path(url: str) -> Path:
    """The log file of a `journal:///abs/path` URL; a relative or empty path is a UserError."""
    path = Path(url[len(JOURNAL_SCHEME):])
    if not path.is_absolute() or not path.name:
        raise UserError(f"--storage {url}: a journal URL names an absolute file, e.g. journal:////shared/sweeps/trials.log")
    return path


def open_storage(url: str) -> Any:
    """The Optuna storage behind `url` (see the module docstring); a bad URL is a UserError naming it, masked."""
    import optuna

    if url.startswith(JOURNAL_SCHEME):
        path = journal_path(url)
        if not path.parent.is_dir():
            raise UserError(f"--storage {url}: folder '{path.parent}' does not exist")
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(str(path)))
    engine_kwargs: dict[str, Any] = {}
    if url.startswith(SQLITE_SCHEME):
        path = Path(url[len(SQLITE_SCHEME):])
        if not path.parent.is_dir():
            raise UserError(f"--storage {url}: folder '{path.parent}' does not exist")
        engine_kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT_S}
    elif "://" not in url:
        raise UserError(f"--storage '{masked(url)}' is not an SQLAlchemy URL nor a journal URL; {EXAMPLES}")
    else:
        engine_kwargs["pool_pre_ping"] = True  # a connection a server or firewall dropped is replaced, not used
    for attempt in range(3):
        try:
            storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)  # creates the tables
            if url.startswith(SQLITE_SCHEME):
                _enable_wal(Path(url[len(SQLITE_SCHEME):]))
            return storage
        except Exception as exc:  # noqa: BLE001 - driver missing, host unreachable, bad credentials: all user-side
            if any(m in str(exc) for m in ("already exists", "UNIQUE constraint")) and attempt < 2:
                time.sleep(0.5)  # another process was creating the tables at the same moment; they are there now
                continue
            raise UserError(f"--storage {masked(url)}: cannot open the trial database: {_hint(exc, url)}") from None
    raise AssertionError("unreachable")


def _hint(exc: BaseException, url: str) -> str:
    line = scrubbed_first_line(exc, url)
    if isinstance(exc, ModuleNotFoundError) and url.startswith("postgresql"):
        return f"{line}; install the driver: {install_extra('postgres')}"
    return line


def _enable_wal(path: Path) -> None:
    """WAL lets readers (reports) and the one writer (the sweep) work at once; the mode persists in the file."""
    con = sqlite3.connect(path, timeout=SQLITE_TIMEOUT_S)
    try:
        con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()


def journal_snapshot(url: str) -> Any:
    """An in-memory RDB copy of a journal file's studies: a report reads it without locking the journal."""
    import optuna

    path = journal_path(url)
    if not path.is_file():
        raise UserError(f"source '{url}': journal file '{path}' does not exist")
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    journal = JournalStorage(JournalFileBackend(str(path)))
    memory = optuna.storages.RDBStorage("sqlite://")
    for summary in optuna.get_all_study_summaries(journal, include_best_trial=False):
        optuna.copy_study(from_study_name=summary.study_name, from_storage=journal, to_storage=memory)
    return memory
