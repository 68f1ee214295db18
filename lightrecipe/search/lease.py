"""One driver per study, enforced in the trial database itself.

A sweep's driver is the only writer of its studies, and `--resume` treats a study's RUNNING trials as left
by a driver that died; a second driver on the same study would run those trials twice and break exact N.
So each driver holds a lease on each of its studies: a row of the table `lightrecipe_driver_lease` in the
study's own database, naming the holder's host and PID, a random token and a heartbeat time. Taking a free
lease is one INSERT, made atomic by the table's primary key; taking over a stale one is one UPDATE
conditional on the old token; a heartbeat thread renews the row. No file lock is involved, so this works
across machines and where the file system has no flock (Lustre mounted without `-o flock`).

A lease is stale when its heartbeat is older than STALE_AFTER_S, or when its holder ran on this host and
that process is gone (a driver killed here). Only `--resume` takes a stale lease over (or a new sweep, when
the study does not exist yet). Optuna ignores tables it does not know, and so do reports.
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

log = logging.getLogger(__name__)
_metadata = sa.MetaData()
_leases = sa.Table(
    TABLE,
    _metadata,
    sa.Column("study_name", sa.String(512), primary_key=True),  # Optuna's own limit on study names
    sa.Column("token", sa.String(64), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("heartbeat", sa.Float, nullable=False),  # seconds since the epoch, the holder's clock
)


@dataclass(frozen=True)
class Holder:
    study_name: str
    token: str
    host: str
    pid: int
    heartbeat: float

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
        if not isinstance(storage, optuna.storages.RDBStorage):
            raise UserError(
                f"the one-driver-per-study lease needs an SQL trial database (got {type(storage).__name__}); "
                "use the default SQLite file or a postgresql:// --storage"
            )
        self.engine = storage.engine
        self.host = host or socket.gethostname()
        self.pid = os.getpid() if pid is None else pid
        self.token = uuid.uuid4().hex
        self.clock = clock
        self.held: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        _create_table(self.engine)

    # --- taking and giving back -------------------------------------------------------------------
    def acquire(self, name: str, *, takeover: bool) -> None:
        """Hold study `name`, or raise UserError naming the driver that holds it."""
        for _ in range(3):  # another driver may release or take the row between two statements
            if self._insert(name):
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
            if self._replace(name, holder.token):
                log.warning("study '%s': took over the lease of a stopped driver (%s)", name, holder.describe(now))
                self.held.append(name)
                return
        raise UserError(f"study '{name}': another driver keeps taking the lease; is a second sweep starting?")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self.engine.begin() as con:
            for name in self.held:
                con.execute(sa.delete(_leases).where(_leases.c.study_name == name, _leases.c.token == self.token))
        self.held = []

    def holder(self, name: str) -> Holder | None:
        with self.engine.connect() as con:
            row = con.execute(sa.select(_leases).where(_leases.c.study_name == name)).first()
        return None if row is None else Holder(row.study_name, row.token, row.host, int(row.pid), float(row.heartbeat))

    # --- heartbeat --------------------------------------------------------------------------------
    def beat(self) -> list[str]:
        """Renew every held lease; returns the studies whose lease another driver has taken."""
        lost = []
        with self.engine.begin() as con:
            for name in self.held:
                done = con.execute(
                    sa.update(_leases)
                    .where(_leases.c.study_name == name, _leases.c.token == self.token)
                    .values(heartbeat=self.clock())
                ).rowcount
                if done != 1:
                    lost.append(name)
        return lost

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

    # --- rows ---------------------------------------------------------------------------------------
    def _row(self, name: str) -> dict:
        return dict(study_name=name, token=self.token, host=self.host, pid=self.pid, heartbeat=self.clock())

    def _insert(self, name: str) -> bool:
        try:
            with self.engine.begin() as con:
                con.execute(sa.insert(_leases).values(**self._row(name)))
        except sa.exc.IntegrityError:
            return False
        return True

    def _replace(self, name: str, old_token: str) -> bool:
        with self.engine.begin() as con:
            done = con.execute(
                sa.update(_leases)
                .where(_leases.c.study_name == name, _leases.c.token == old_token)
                .values(**self._row(name))
            ).rowcount
        return done == 1


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


def _create_table(engine: sa.engine.Engine) -> None:
    for attempt in range(3):
        try:
            _metadata.create_all(engine, checkfirst=True)
            return
        except sa.exc.DatabaseError:  # another driver created it at the same moment
            if attempt == 2:
                raise
            time.sleep(0.5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
