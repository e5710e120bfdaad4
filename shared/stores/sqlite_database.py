"""One SQLite file per local data folder, one connection per thread.

WAL mode lets the server's worker processes read while one writes; the busy
timeout makes concurrent writers wait instead of failing. The hot writer (the
prediction log) also queues on a lock file first: SQLite's busy handler polls
in sleeps of 1 to 100 ms, a blocked `flock` wakes as soon as the lock is free.

`writing(blocking=False)` lets an event loop commit in place when no one else
is writing, and hand the commit to a thread only when it would have to wait.
No connection checkpoints the WAL inside a commit: a thread per process does
(`sqlite_checkpoints`), so no fsync runs on the loop, nor in a fallback
thread's commit while it holds the write lock the loops are waiting for.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

from shared.stores.predictions.sqlite_layout import create_predictions_table

try:
    import fcntl
except ImportError:  # Windows: no lock file; SQLite's busy handler alone serialises writers
    fcntl = None

# Every commit writes whole pages to the WAL: a one-prediction commit rewrites its leaf page (rows of ~260
# bytes), and now and then splits it. bench/prediction_log.py (100,000 rows, five probabilities): the (time, id)
# layout writes 5.3 KB a commit at 2 KB pages and 7.4 KB at 4 KB (the previous layout at 4 KB: 15.2 KB), same
# commit time; each checkpoint then fsyncs those bytes. 1 KB pages would spill rows into overflow pages (a 4x
# larger file). A 2 KB index page keeps up to ~490 bytes of a row.
PAGE_SIZE_OF_NEW_DATABASES = 2048
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outcome_rates (
    key TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (collection, id)
);
CREATE INDEX IF NOT EXISTS documents_by_time ON documents (collection, created_us);
"""


# Columns added after the first release: a database made by an older checkout gains them.
_ADDED_COLUMNS = {"predictions": (("outcome_caller", "TEXT"), ("outcome_history", "TEXT"))}


def _add_missing_columns(connection: sqlite3.Connection) -> None:
    for table, columns in _ADDED_COLUMNS.items():
        present = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        for name, kind in columns:
            if name not in present:
                try:
                    connection.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
                except sqlite3.OperationalError as error:  # another process added it first
                    if "duplicate column" not in str(error):
                        raise


# Every database of this process, weakly (they may still be garbage-collected): a forked child resets each.
_databases: weakref.WeakSet = weakref.WeakSet()
# The parent's connections, as a forked child inherited them: held, never used nor closed
# (SQLite forbids carrying a connection across a fork; closing one is a use).
_inherited_from_the_parent: list = []


def _forget_the_parents_state_after_fork() -> None:
    for database in list(_databases):
        database._after_fork_in_child()


class WriteWouldBlock(Exception):
    """`writing(blocking=False)`: another writer holds the database; nothing was written."""


class SqliteDatabase:
    def __init__(self, path: str | Path, timeout_seconds: float = 5.0, checkpoint_interval_seconds: float = 0.5):
        self.path = Path(path)
        self.timeout_seconds = timeout_seconds
        self.checkpoint_interval_seconds = checkpoint_interval_seconds
        self._local = threading.local()
        self._schema_lock = threading.Lock()
        self._schema_ready = False
        self._write_lock = threading.Lock()  # flock is per process: threads queue here first
        self._lock_file: tuple[int, int] | None = None  # (pid, descriptor): a forked child opens its own
        self._checkpointer_pid: int | None = None  # threads do not survive a fork: each process starts its own
        _databases.add(self)

    def _after_fork_in_child(self) -> None:
        """A child gets the forking thread's connections (so it would never start its own
        checkpointer) and locks that another thread of the parent may hold forever: fresh ones."""
        _inherited_from_the_parent.append(self._local)
        self._local = threading.local()
        self._schema_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._checkpointer_pid = None
        if self._lock_file is not None:
            with contextlib.suppress(OSError):  # the parent's flock holds while its own descriptor is open
                os.close(self._lock_file[1])
            self._lock_file = None

    def connection(self, blocking: bool = True) -> sqlite3.Connection:
        """This thread's connection; with `blocking=False` one that fails at
        once (SQLITE_BUSY) instead of waiting for another writer."""
        slot = "connection" if blocking else "connection_nowait"
        connection = getattr(self._local, slot, None)
        if connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=self.timeout_seconds if blocking else 0.0,
                                         isolation_level=None)
            connection.execute(f"PRAGMA page_size={PAGE_SIZE_OF_NEW_DATABASES}")  # no effect on an existing file
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._checkpoint_in_a_thread(connection)  # every connection: one left automatic would checkpoint
            with self._schema_lock:
                if not self._schema_ready:
                    create_predictions_table(connection)
                    connection.executescript(_SCHEMA)
                    _add_missing_columns(connection)
                    self._schema_ready = True
            setattr(self._local, slot, connection)
        return connection

    def _checkpoint_in_a_thread(self, connection: sqlite3.Connection) -> None:
        from shared.stores import sqlite_checkpoints

        connection.execute("PRAGMA wal_autocheckpoint=0")
        connection.execute(f"PRAGMA journal_size_limit={sqlite_checkpoints.WAL_SIZE_LIMIT_BYTES}")
        with self._schema_lock:
            if self._checkpointer_pid != os.getpid():
                self._checkpointer_pid = os.getpid()
                sqlite_checkpoints.start_checkpointer(self)

    @contextlib.contextmanager
    def writing(self, blocking: bool = True) -> Iterator[None]:
        """Hold the write lock shared by every thread and process using this file.

        With `blocking=False`, raise `WriteWouldBlock` instead of waiting for it.
        """
        if not self._write_lock.acquire(blocking=blocking):
            raise WriteWouldBlock()
        try:
            if fcntl is None:
                yield
                return
            if self._lock_file is None or self._lock_file[0] != os.getpid():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                descriptor = os.open(self.path.with_name(self.path.name + ".write-lock"), os.O_RDWR | os.O_CREAT, 0o600)
                self._lock_file = (os.getpid(), descriptor)
            descriptor = self._lock_file[1]
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise WriteWouldBlock() from None
            try:
                yield
            finally:
                fcntl.flock(descriptor, fcntl.LOCK_UN)
        finally:
            self._write_lock.release()


if hasattr(os, "register_at_fork"):  # not on Windows, which does not fork
    os.register_at_fork(after_in_child=_forget_the_parents_state_after_fork)
