"""Open trial databases for reading, without ever writing to them or holding a writer up.

A source is a sweep folder (its `trials.db`), an SQLite file, or any SQLAlchemy URL. SQLite databases are
copied into memory with SQLite's online-backup API through a read-only (`mode=ro`) connection: the copy is a
consistent snapshot taken in one short read, so a running sweep keeps writing while the report reads the copy,
and the file is never created, migrated or locked for long. Other databases (PostgreSQL, MySQL) are opened
without table creation or schema checks; PostgreSQL sessions are also set read-only.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from lightrecipe.errors import UserError
from lightrecipe.search.store import records
from lightrecipe.search.store import storage as storage_rules


@dataclass(frozen=True)
class Source:
    label: str  # what the report shows: the folder or file path, or the URL with its password hidden
    url: str  # SQLAlchemy URL
    sqlite_path: Path | None  # set for SQLite files, which are read through a snapshot


def resolve(source: str) -> Source:
    """A sweep folder, an SQLite file or an SQLAlchemy URL -> `Source`; anything else is a UserError."""
    text = str(source)
    if text.startswith(storage_rules.JOURNAL_SCHEME):
        storage_rules.journal_path(text)  # a UserError for a relative or empty path
        return Source(label=text, url=text, sqlite_path=None)
    if "://" in text:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(text)
        except ArgumentError:
            raise UserError(f"source '{storage_rules.masked(text)}' is not a valid database URL "
                            "(e.g. sqlite:////abs/trials.db)") from None
        label = storage_rules.masked(text)
        if url.get_backend_name() == "sqlite":
            if not url.database or url.database == ":memory:":
                raise UserError(f"source '{label}' names no SQLite file; give the file, e.g. sqlite:////abs/trials.db")
            path = Path(url.database)
            if not path.is_file():
                raise UserError(f"source '{label}': SQLite file '{path}' does not exist")
            return Source(label=label, url=text, sqlite_path=path.resolve())
        return Source(label=label, url=text, sqlite_path=None)
    path = Path(text)
    if path.is_dir():
        db = path / records.DB_FILENAME
        if not db.is_file():
            raise UserError(
                f"source '{path}' is a folder without a trial database '{records.DB_FILENAME}'; "
                "give a sweep folder, a .db file or a database URL"
            )
        return Source(label=str(path), url=records.default_storage_url(str(path)), sqlite_path=db.resolve())
    if path.is_file():
        return Source(label=str(path), url=f"sqlite:///{path.resolve().as_posix()}", sqlite_path=path.resolve())
    raise UserError(f"source '{text}' does not exist; give a sweep folder, a .db file or a database URL")


def _snapshot(path: Path) -> sqlite3.Connection:
    """An in-memory copy of an SQLite file, read through a read-only connection."""
    try:
        read_only = sqlite3.connect(f"file:{quote(path.as_posix())}?mode=ro", uri=True, timeout=30)
        try:
            memory = sqlite3.connect(":memory:", check_same_thread=False)
            read_only.backup(memory)  # pages=-1: one consistent copy; SQLite restarts it if a writer commits meanwhile
        finally:
            read_only.close()
    except sqlite3.DatabaseError as exc:
        raise UserError(f"source '{path}' is not a readable SQLite database: {exc}") from None
    return memory


def open_storage(source: Source) -> Any:
    """A read-only `optuna.storages.RDBStorage` over the source."""
    import optuna
    from sqlalchemy.pool import StaticPool

    kwargs: dict[str, Any] = {}
    url = source.url
    if url.startswith(storage_rules.JOURNAL_SCHEME):
        return storage_rules.journal_snapshot(url)
    if source.sqlite_path is not None:
        memory = _snapshot(source.sqlite_path)
        kwargs = {"creator": lambda: memory, "poolclass": StaticPool}
        url = "sqlite://"
    elif url.startswith("postgresql"):
        kwargs = {"connect_args": {"options": "-c default_transaction_read_only=on"}}
    try:
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=kwargs,
            skip_compatibility_check=True,  # a report reads what it can; it never migrates a database
            skip_table_creation=True,  # and never creates tables in it
        )
    except UserError:
        raise
    except Exception as exc:  # a driver's connection or schema error, shown as one line
        first = storage_rules.scrubbed_first_line(exc, source.url)
        raise UserError(f"source '{source.label}' could not be opened as an Optuna trial database: {first}") from None
