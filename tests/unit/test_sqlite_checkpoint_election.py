"""One process checkpoints a SQLite file (the holder of `<file>.checkpoint-lock`), and the lock always
comes free for another when that process exits, drops its database, is killed, or forks: a lock held by no
checkpointer would leave the WAL growing without bound."""

import time
from datetime import datetime, timezone

import pytest

from shared.records import PredictionRecord
from shared.stores import sqlite_checkpoints
from shared.stores.predictions.ids import new_prediction_id
from shared.stores.predictions.sqlite import SqlitePredictionStore
from shared.stores.sqlite_database import SqliteDatabase


def record() -> PredictionRecord:
    created = datetime.now(timezone.utc)
    return PredictionRecord(new_prediction_id(created), created, 36.6, 70.0, 120.0, "NO ENFERMO",
                            {"NO ENFERMO": 1.0}, "v1")


def eventually(condition, within_seconds: float = 10.0, every_seconds: float = 0.02) -> bool:
    """Poll `condition` until it holds or the deadline passes (the machine is shared: no fixed sleeps)."""
    deadline = time.monotonic() + within_seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(every_seconds)
    return True


def lock_is_free(path) -> bool:
    import fcntl
    import os

    descriptor = os.open(path.with_name(path.name + ".checkpoint-lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(descriptor)  # releases it again


# Process A: its checkpoint thread is in the middle of its election (lock taken, not yet recorded as held)
# when the main thread forks; the child lives on, A exits.
FORK_DURING_ELECTION = """
import fcntl, gc, os, sys, threading, time, types
from shared.stores import sqlite_checkpoints
from shared.stores.sqlite_database import SqliteDatabase

in_election = threading.Event()

def slow_flock(descriptor, operation):
    fcntl.flock(descriptor, operation)
    in_election.set()
    time.sleep(0.3)

sqlite_checkpoints.fcntl = types.SimpleNamespace(flock=slow_flock, LOCK_EX=fcntl.LOCK_EX, LOCK_NB=fcntl.LOCK_NB)
database = SqliteDatabase(sys.argv[1], checkpoint_interval_seconds=0.02)
database.connection()
assert in_election.wait(30)
child = os.fork()
if child == 0:
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1), os.dup2(quiet, 2)  # the test reads A's output to its end
    time.sleep(60)
    os._exit(0)
print(child, flush=True)
if sys.argv[2] == "exits":
    os._exit(0)
del database  # A lives on without it: its thread ends and lets the lock go
gc.collect()
while sqlite_checkpoints._held_checkpoint_locks:
    time.sleep(0.01)
print("dropped", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("then", ["exits", "drops its database"])
def test_a_fork_during_the_election_leaves_the_lock_to_whoever_comes_next(tmp_path, then):
    """A child that kept an unrecorded copy of the lock's descriptor would hold the lock for as long as it
    lives, with no checkpointer anywhere: the WAL would grow without bound."""
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT

    path = tmp_path / "db.sqlite3"
    parent = subprocess.Popen([sys.executable, "-c", FORK_DURING_ELECTION, str(path), then.split()[0]], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    child = None
    try:
        child = int(parent.stdout.readline())
        if then == "exits":
            assert parent.wait(timeout=30) == 0
        else:
            assert parent.stdout.readline().strip() == "dropped"
        assert eventually(lambda: lock_is_free(path), within_seconds=5), "the forked child holds the lock"
    finally:
        parent.kill()
        parent.wait(timeout=30)
        if child:
            os.kill(child, signal.SIGKILL)


def test_a_killed_checkpointer_is_replaced(tmp_path, monkeypatch):
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT

    path = tmp_path / "db.sqlite3"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from shared.stores import sqlite_checkpoints;"
         " from shared.stores.sqlite_database import SqliteDatabase;"
         " database = SqliteDatabase(sys.argv[1], checkpoint_interval_seconds=0.02); database.connection()\n"
         "while not sqlite_checkpoints._held_checkpoint_locks: time.sleep(0.01)\n"
         "print('holding', flush=True); time.sleep(60)", str(path)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        passes = []
        real = sqlite_checkpoints.checkpoint_once
        monkeypatch.setattr(sqlite_checkpoints, "checkpoint_once",
                            lambda connection, database: passes.append(database) or real(connection, database))
        elections = []
        elect = sqlite_checkpoints.become_the_checkpointer
        monkeypatch.setattr(sqlite_checkpoints, "become_the_checkpointer",
                            lambda path: elections.append(elect(path)) or elections[-1])
        database = SqliteDatabase(path, checkpoint_interval_seconds=0.02)
        assert SqlitePredictionStore(database).save_predictions_nowait([record()])
        assert eventually(lambda: None in elections)  # lost to the holder at least once
        assert not passes
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        assert eventually(lambda: bool(passes), within_seconds=5)
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_a_lock_file_that_cannot_be_locked_leaves_every_process_checkpointing(tmp_path, monkeypatch):
    """ENOLCK or EOPNOTSUPP (some network and FUSE mounts) is not "another process checkpoints"."""
    import errno
    import fcntl
    import types

    def refused(descriptor, operation):
        raise OSError(errno.ENOLCK, "no locks available")

    monkeypatch.setattr(sqlite_checkpoints, "fcntl",
                        types.SimpleNamespace(flock=refused, LOCK_EX=fcntl.LOCK_EX, LOCK_NB=fcntl.LOCK_NB))
    passes = []
    real = sqlite_checkpoints.checkpoint_once
    monkeypatch.setattr(sqlite_checkpoints, "checkpoint_once",
                        lambda connection, database: passes.append(database) or real(connection, database))
    database = SqliteDatabase(tmp_path / "db.sqlite3", checkpoint_interval_seconds=0.02)
    assert SqlitePredictionStore(database).save_predictions_nowait([record()])
    assert eventually(lambda: bool(passes), within_seconds=5)


def test_one_process_checkpoints_a_file_however_many_open_it(tmp_path, monkeypatch):
    """Each pass fsyncs the WAL and the database file, and a writer's WAL write waits on ext4 while
    the WAL is being synced: two workers each checkpointing doubled those stalls for nothing."""
    import gc

    passes = []  # ids, not the databases: a reference here would keep the dropped one alive
    real = sqlite_checkpoints.checkpoint_once

    def recording(connection, database):
        passes.append(id(database))
        return real(connection, database)

    monkeypatch.setattr(sqlite_checkpoints, "checkpoint_once", recording)
    path = tmp_path / "db.sqlite3"
    first, second = (SqliteDatabase(path, checkpoint_interval_seconds=0.02) for _ in range(2))
    for database in (first, second):
        assert SqlitePredictionStore(database).save_predictions_nowait([record()])
    del database
    assert eventually(lambda: len(passes) >= 5)
    assert len(set(passes)) == 1
    survivor = second if passes[0] == id(first) else first
    del first, second  # the checkpointing one goes away: the other takes over
    gc.collect()
    del passes[:]  # a pass of the dropped one may have been in flight
    assert eventually(lambda: len(passes) >= 3)
    assert set(passes[1:]) == {id(survivor)}
