"""One driver per study, enforced in the trial database itself.

A sweep's driver is the only writer of its studies, and `--resume` treats a study's RUNNING trials as left
by a driver that died; a second driver on the same study would run those trials twice and break exact N.
So each driver holds a lease on each of its studies, naming the holder's host and PID, a random token and a
heartbeat time, kept in the study's own database:
- an SQL database (SQLite, PostgreSQL, MySQL): a row of the table `lightrecipe_driver_lease`. Taking a free
  lease is one INSERT, made atomic by the primary key; taking over a stale one is one UPDATE conditional on
  the old token. Optuna and reports ignore a table they do not know;
- any other Optuna storage (a journal file on a shared folder): an empty study named `<study> [driver lease]`
  holding the lease as study attributes. Taking a free lease is creating that study, which every Optuna
  storage makes atomic (a second creation fails); a stale one is deleted and created again. Reports show no
  rows for a study without trials.
A heartbeat thread renews the lease. No file lock is involved, so this works across machines and where the
file system has no flock (Lustre mounted without `-o flock`).

A lease is stale when its heartbeat is older than STALE_AFTER_S, or when its holder ran on this host and
that process is gone (a driver killed here). Only `--resume` takes a stale lease over (or a new sweep, when
the study does not exist yet).
"""

from __future__ import annotations

import _thread
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import optuna
import sqlalchemy as sa

from lightrecipe.errors import UserError

HEARTBEAT_S = 10.0  # how often a driver renews its leases
STALE_AFTER_S = 120.0  # a dozen missed heartbeats: the holder died, or lost the database for two minutes
TABLE = "lightrecipe_driver_lease"
LEASE_STUDY_SUFFIX = " [driver lease]"  # the lease of study S on a non-SQL storage is the study "S [driver lease]"
LEASE_ATTR = "driver_lease"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Holder:
    study_name: str
    token: str
    host: str
    pid: int
    heartbeat: float  # seconds since the epoch, the holder's clock

    def describe(self, now: float) -> str:
        return f"host {self.host}, PID {self.pid} (last heartbeat {max(now - self.heartbeat, 0):.0f} s ago)"

    def is_stale(self, now: float) -> bool:
        return now - self.heartbeat > STALE_AFTER_S or (self.host == socket.gethostname() and not _alive(self.pid))


class DriverLease:
    """This driver's leases on a set of studies; `hold_studies` is the usual way in."""

    def __init__(
        self,
        storage: optuna.storages.BaseStorage,
        *,
        host: str | None = None,
        pid: int | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.rows: _SqlRows | _LeaseStudies = (
            _SqlRows(storage.engine) if isinstance(storage, optuna.storages.RDBStorage) else _LeaseStudies(storage)
        )
        self.host = host or socket.gethostname()
        self.pid = os.getpid() if pid is None else pid
        self.token = uuid.uuid4().hex
        self.clock = clock
        self.held: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def mine(self, name: str) -> Holder:
        return Holder(name, self.token, self.host, self.pid, self.clock())

    # --- taking and giving back -------------------------------------------------------------------
    def acquire(self, name: str, *, takeover: bool) -> None:
        """Hold study `name`, or raise UserError naming the driver that holds it."""
        for _ in range(3):  # another driver may release or take the lease between two statements
            if self.rows.insert(self.mine(name)):
                self.held.append(name)
                return
            holder = self.holder(name)
            if holder is None:
                continue
            now = self.clock()
            if not holder.is_stale(now):
                raise UserError(
                    f"study '{name}' is being run by another driver: {holder.describe(now)}; wait for it to "
                    "end or stop it, or use another --out/--storage"
                )
            if not takeover:
                raise UserError(
                    f"study '{name}' was run by a driver that stopped without releasing it: "
                    f"{holder.describe(now)}; pass --resume to take it over and continue the sweep"
                )
            if self.rows.replace(holder, self.mine(name)):
                log.warning("study '%s': took over the lease of a stopped driver (%s)", name, holder.describe(now))
                self.held.append(name)
                return
        raise UserError(f"study '{name}': another driver keeps taking the lease; is a second sweep starting?")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for name in self.held:
            self.rows.delete(self.mine(name))
        self.held = []

    def holder(self, name: str) -> Holder | None:
        return self.rows.read(name)

    # --- heartbeat --------------------------------------------------------------------------------
    def beat(self) -> list[str]:
        """Renew every held lease; returns the studies whose lease another driver has taken."""
        return [name for name in self.held if not self.rows.renew(self.mine(name))]

    def start_heartbeat(self, interval: float = HEARTBEAT_S) -> None:
        self._thread = threading.Thread(target=self._beat_until_stopped, args=(interval,), daemon=True,
                                        name="lightrecipe-lease")
        self._thread.start()

    def _beat_until_stopped(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                lost = self.beat()
            except Exception as exc:  # noqa: BLE001 - a database hiccup: the next beat retries
                log.warning("lease heartbeat failed (%s); retrying in %.0f s", exc, interval)
                continue
            if lost:
                log.error("another driver took over %s; stopping this sweep", ", ".join(lost))
                _thread.interrupt_main()  # as Ctrl-C: Tune stops, running trials stay resumable
                return


class _SqlRows:
    """Leases as rows of one table in an SQL trial database (see the module docstring)."""

    _metadata = sa.MetaData()
    table = sa.Table(
        TABLE,
        _metadata,
        sa.Column("study_name", sa.String(512), primary_key=True),  # Optuna's own limit on study names
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("heartbeat", sa.Float, nullable=False),
    )

    def __init__(self, engine: sa.engine.Engine):
        self.engine = engine
        for attempt in range(3):
            try:
                self._metadata.create_all(engine, checkfirst=True)
                break
            except sa.exc.DatabaseError:  # another driver created it at the same moment
                if attempt == 2:
                    raise
                time.sleep(0.5)

    def insert(self, mine: Holder) -> bool:
        try:
            with self.engine.begin() as con:
                con.execute(sa.insert(self.table).values(**vars(mine)))
        except sa.exc.IntegrityError:
            return False
        return True

    def read(self, name: str) -> Holder | None:
        with self.engine.connect() as con:
            row = con.execute(sa.select(self.table).where(self.table.c.study_name == name)).first()
        return None if row is None else Holder(row.study_name, row.token, row.host, int(row.pid), float(row.heartbeat))

    def replace(self, old: Holder, mine: Holder) -> bool:
        return self._update(old.study_name, old.token, vars(mine))

    def renew(self, mine: Holder) -> bool:
        return self._update(mine.study_name, mine.token, {"heartbeat": mine.heartbeat})

    def delete(self, mine: Holder) -> None:
        columns = self.table.c
        with self.engine.begin() as con:
            con.execute(sa.delete(self.table).where(columns.study_name == mine.study_name, columns.token == mine.token))

    def _update(self, name: str, token: str, values: dict) -> bool:
        columns = self.table.c
        with self.engine.begin() as con:
            done = con.execute(sa.update(self.table).where(columns.study_name == name, columns.token == token).values(**values))
        return done.rowcount == 1


class _LeaseStudies:
    """Leases as empty studies on any Optuna storage, through its public storage API (see the module
    docstring). Creation is atomic; a takeover (delete, create) is safe against a live holder, and two
    drivers taking over the same stale lease at the same instant are told apart by reading the lease back."""

    def __init__(self, storage: optuna.storages.BaseStorage):
        self.storage = storage

    def insert(self, mine: Holder) -> bool:
        try:
            study_id = self.storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE],
                                                     mine.study_name + LEASE_STUDY_SUFFIX)
        except optuna.exceptions.DuplicatedStudyError:
            return False
        self.storage.set_study_user_attr(study_id, LEASE_ATTR, vars(mine))
        return True

    def read(self, name: str) -> Holder | None:
        for _ in range(10):  # a lease study is created first and written a moment later
            try:
                study_id = self.storage.get_study_id_from_name(name + LEASE_STUDY_SUFFIX)
                fields = self.storage.get_study_user_attrs(study_id).get(LEASE_ATTR)
            except KeyError:
                return None
            if fields is not None:
                return Holder(**fields)
            time.sleep(0.2)
        return Holder(name, "", "(a driver that died while taking the lease)", 0, 0.0)  # stale: never written

    def replace(self, old: Holder, mine: Holder) -> bool:
        current = self.read(old.study_name)
        if current is None or current.token != old.token:
            return False
        self.delete(old)
        return self.insert(mine) and getattr(self.read(mine.study_name), "token", None) == mine.token

    def renew(self, mine: Holder) -> bool:
        current = self.read(mine.study_name)
        if current is None or current.token != mine.token:
            return False
        study_id = self.storage.get_study_id_from_name(mine.study_name + LEASE_STUDY_SUFFIX)
        self.storage.set_study_user_attr(study_id, LEASE_ATTR, vars(mine))
        return True

    def delete(self, mine: Holder) -> None:
        current = self.read(mine.study_name)
        if current is not None and current.token == mine.token:
            try:
                self.storage.delete_study(self.storage.get_study_id_from_name(mine.study_name + LEASE_STUDY_SUFFIX))
            except KeyError:
                pass


@contextlib.contextmanager
def hold_studies(
    storage: optuna.storages.BaseStorage, names: Iterable[str], *, takeover: Callable[[str], bool]
) -> Iterator[DriverLease]:
    """Hold every study in `names` for the duration of the block (heartbeat included), or raise UserError.
    `takeover(name)` says whether a stale lease on that study may be taken over."""
    lease = DriverLease(storage)
    try:
        for name in names:
            lease.acquire(name, takeover=takeover(name))
        lease.start_heartbeat()
        yield lease
    finally:
        lease.release()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
