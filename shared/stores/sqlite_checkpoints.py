"""Checkpoints of the SQLite write-ahead log, in a thread instead of in a commit.

By default SQLite checkpoints (copies the WAL into the database file, and
under `synchronous=NORMAL` fsyncs both) inside whichever commit pushes the WAL
past 1,000 pages. For the prediction log, committed in place on `predict`'s
event loop, that froze the loop every few hundred commits for as long as the
two fsyncs take (3-110 ms on a shared disk), and every request in flight
waited for it.

Every connection of a `SqliteDatabase` therefore turns automatic checkpoints
off (the thread fallback's commits hold the write lock too), and a daemon
thread checkpoints instead: PASSIVE (it neither waits for nor blocks a writer)
twice a second; the sqlite3 module releases the GIL while SQLite works, so the
fsyncs no longer stop the loop. Only one process checkpoints a file (the one
holding `<file>.checkpoint-lock`; another takes over when it exits): a writer's
WAL write waits while the WAL is being fsynced (seen with `perf trace`: 2-5 ms
`pwrite64` on the loop during the thread's `fdatasync`), so every worker
checkpointing too multiplied those stalls. Under load the WAL still grows, even when each pass copies
every frame: only a commit that begins with nothing left to copy starts it
over, and another worker's commit always comes first. Past `RESET_FRAMES` one
pass holds the write lock, so the next commit starts the WAL over (truncated
to `WAL_SIZE_LIMIT_BYTES`). A WAL left long is read back by the next process
before its first query: 20,000 frames cost a cold start 50 ms. Durability is unchanged: a commit is in the WAL before
it returns, whoever checkpoints it later.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sqlite3
import threading
import weakref

try:
    import fcntl
except ImportError:  # Windows: no lock file; every process checkpoints
    fcntl = None

# Lock files this process holds as a file's checkpointer: a forked child closes its copies (the parent keeps
# the lock; the child's own checkpointer then waits its turn like any other process).
_held_checkpoint_locks: set[int] = set()

# 16 MB of WAL at the 2 KB pages of new databases (32 MB for a file made before with 4 KB pages): under load a
# pass under the write lock every second or two, and what a process that opens the file next reads back first if
# the server stopped without emptying it (~10 ms).
RESET_FRAMES = 8192
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024


def checkpoint_once(connection: sqlite3.Connection, database) -> tuple[int, int]:
    """One pass: (frames in the WAL, frames copied into the database)."""
    _, frames, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    if frames > RESET_FRAMES:
        # Passes that copy everything do not shorten the WAL: only a commit that starts with
        # nothing left to copy starts it over, and under load another commit always came first.
        # Under the write lock the prediction log (the writer that keeps the WAL growing) adds no
        # frames, so this pass usually copies them all. Outcomes and metadata write without that
        # lock: one of theirs may still slip in, and the next pass past the bound tries again.
        with database.writing():
            _, frames, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return frames, copied


# Set as the interpreter exits: a pass in flight finishes, none starts. A connection a pass still held
# would keep the process's last connection from emptying the WAL (the daemon thread is frozen mid-pass).
_exiting = threading.Event()
_threads: weakref.WeakSet = weakref.WeakSet()


def _let_the_pass_in_flight_finish() -> None:
    _exiting.set()
    for thread in list(_threads):
        thread.join(timeout=2.0)


atexit.register(_let_the_pass_in_flight_finish)


def start_checkpointer(database) -> threading.Thread:
    """Checkpoint `database` (a SqliteDatabase) every `checkpoint_interval_seconds` until it is garbage."""
    thread = threading.Thread(target=_checkpoint_while_alive,
                              args=(weakref.ref(database), database.checkpoint_interval_seconds),
                              name=f"sqlite-checkpoint-{database.path.name}", daemon=True)
    _threads.add(thread)
    thread.start()
    return thread


def _checkpoint_while_alive(database_ref: weakref.ref, interval_seconds: float) -> None:
    lock = None
    try:
        while not _exiting.wait(interval_seconds):
            database = database_ref()  # held only during a pass: the thread ends with the database
            if database is None:
                return
            if lock is None:
                lock = become_the_checkpointer(database.path)
            if lock is not None:
                _pass(database)
            del database
    finally:
        if lock is not None and lock != NO_LOCK:
            give_up_checkpointing(lock)  # another process's thread takes over


# Returned instead of a descriptor where no lock can be taken (Windows, or a file system refusing flock):
# this process checkpoints, whether or not another does too.
NO_LOCK = -1

# Held around taking and recording a lock, and around forgetting and closing it, and across a fork
# (`register_at_fork` below): so a child never inherits a lock's descriptor that is not yet, or no
# longer, in `_held_checkpoint_locks`. Such a copy would keep the lock held, by a process that never
# checkpoints, for as long as the child lives.
_election = threading.Lock()


def become_the_checkpointer(path) -> int | None:
    """The lock file's descriptor if this process is now the one checkpointing `path` (NO_LOCK if it
    checkpoints without one), else None. Held until the thread ends or the process dies."""
    if fcntl is None:
        return NO_LOCK
    with _election:
        try:
            descriptor = os.open(path.with_name(path.name + ".checkpoint-lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:  # the folder is gone or read-only: the next pass tries again
            return None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another process checkpoints this file
            os.close(descriptor)
            return None
        except OSError:  # no locks on this file system (ENOLCK, EOPNOTSUPP): every process checkpoints
            os.close(descriptor)
            return NO_LOCK
        _held_checkpoint_locks.add(descriptor)
        return descriptor


def give_up_checkpointing(descriptor: int) -> None:
    with _election:
        _held_checkpoint_locks.discard(descriptor)
        os.close(descriptor)


def _close_inherited_locks() -> None:
    _election.release()
    for descriptor in list(_held_checkpoint_locks):
        with contextlib.suppress(OSError):
            os.close(descriptor)
    _held_checkpoint_locks.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_election.acquire, after_in_parent=_election.release,
                        after_in_child=_close_inherited_locks)


def _pass(database) -> None:
    try:
        # A connection per pass, closed after it: one left open by this thread would keep the
        # process's last connection from checkpointing and removing the WAL when it exits,
        # and the next process to open the file would first have to read the whole WAL back.
        connection = sqlite3.connect(database.path, timeout=database.timeout_seconds, isolation_level=None)
        try:
            checkpoint_once(connection, database)
        finally:
            connection.close()
    except (sqlite3.Error, OSError):  # busy or briefly unavailable: the next pass tries again
        pass
