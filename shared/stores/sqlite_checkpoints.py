"""Checkpoints of the SQLite write-ahead log, in a thread instead of in a commit.

By default SQLite checkpoints (copies the WAL into the database file, and
under `synchronous=NORMAL` fsyncs both) inside whichever commit pushes the WAL
past 1,000 pages. For the prediction log, committed in place on `predict`'s
event loop, that froze the loop for 2-30 ms every few hundred commits
(measured at 16 connections: ~1.4 s of 8 s across the two workers), and every
request in flight waited for it.

The connection that commits in place therefore turns automatic checkpoints
off, and one daemon thread per process and database checkpoints instead:
PASSIVE (it neither waits for nor blocks a writer) five times a second; the
sqlite3 module releases the GIL while SQLite works, so the fsyncs no longer
stop the loop. A passive checkpoint that writers keep from finishing leaves
the WAL growing; past `RESET_FRAMES` one pass holds the write lock so it
completes, and the next commit starts the WAL over (truncated to
`WAL_SIZE_LIMIT_BYTES`). Durability is unchanged: a commit is in the WAL
before it returns, whoever checkpoints it later.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import weakref

RESET_FRAMES = 4096  # 16 MB of WAL at SQLite's 4 KB pages
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024


def checkpoint_once(connection: sqlite3.Connection, database) -> tuple[int, int]:
    """One pass: (frames in the WAL, frames copied into the database)."""
    _, frames, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    if frames > RESET_FRAMES and copied < frames:
        with database.writing():  # no writer of ours can add frames: this pass copies them all
            _, frames, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return frames, copied


def start_checkpointer(database) -> threading.Thread:
    """Checkpoint `database` (a SqliteDatabase) every `checkpoint_interval_seconds` until it is garbage."""
    thread = threading.Thread(target=_checkpoint_while_alive,
                              args=(weakref.ref(database), database.checkpoint_interval_seconds),
                              name=f"sqlite-checkpoint-{database.path.name}", daemon=True)
    thread.start()
    return thread


def _checkpoint_while_alive(database_ref: weakref.ref, interval_seconds: float) -> None:
    connection = None
    try:
        while True:
            time.sleep(interval_seconds)
            database = database_ref()  # held only during a pass: the thread ends with the database
            if database is None:
                return
            try:
                if connection is None:
                    connection = sqlite3.connect(database.path, timeout=database.timeout_seconds,
                                                 isolation_level=None)
                checkpoint_once(connection, database)
            except (sqlite3.Error, OSError):  # busy or briefly unavailable: the next pass tries again
                pass
            finally:
                del database
    finally:
        if connection is not None:
            connection.close()
