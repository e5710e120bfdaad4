"""The prediction log's in-place commits never checkpoint the WAL themselves
(a checkpoint fsyncs, and they run on `predict`'s event loop): a thread does."""

import contextlib
import time
import uuid
from datetime import datetime, timezone

from shared.records import PredictionRecord
from shared.stores import sqlite_checkpoints
from shared.stores.predictions.sqlite import SqlitePredictionStore
from shared.stores.sqlite_database import SqliteDatabase


def record() -> PredictionRecord:
    return PredictionRecord(uuid.uuid4().hex, datetime.now(timezone.utc), 36.6, 70.0, 120.0, "NO ENFERMO",
                            {"NO ENFERMO": 1.0}, "v1")


def test_commits_made_in_place_never_copy_the_wal_into_the_database_file(tmp_path):
    path = tmp_path / "db.sqlite3"
    store = SqlitePredictionStore(SqliteDatabase(path, checkpoint_interval_seconds=3600))
    assert store.save_predictions_nowait([record()])
    size = path.stat().st_size
    for _ in range(1500):  # ~4 WAL pages each: SQLite's own checkpoint would have run past 1,000 pages
        assert store.save_predictions_nowait([record()])
    assert path.stat().st_size == size
    assert store.count() == 1501


def test_no_connection_of_a_checkpointing_process_checkpoints_inside_a_commit(tmp_path):
    """The thread fallback's blocking commits (and outcomes, metadata) write through other
    connections: under contention one of them would otherwise checkpoint, fsyncs included,
    while it holds the write lock that both workers' in-place commits are waiting for."""
    path = tmp_path / "db.sqlite3"
    store = SqlitePredictionStore(SqliteDatabase(path, checkpoint_interval_seconds=3600))
    store.save_predictions([record()])  # a blocking connection first, as a fallback thread makes it
    size = path.stat().st_size
    for _ in range(750):
        store.save_predictions([record()])
        assert store.save_predictions_nowait([record()])
    assert path.stat().st_size == size
    assert store.count() == 1501


def test_a_thread_checkpoints_what_the_in_place_commits_wrote(tmp_path):
    path = tmp_path / "db.sqlite3"
    store = SqlitePredictionStore(SqliteDatabase(path, checkpoint_interval_seconds=0.05))
    assert store.save_predictions_nowait([record()])
    size = path.stat().st_size
    for _ in range(300):
        assert store.save_predictions_nowait([record()])
    deadline = time.monotonic() + 10
    while path.stat().st_size == size:
        assert time.monotonic() < deadline, "nothing was checkpointed"
        time.sleep(0.05)


class Checkpoints:
    """A connection answering `PRAGMA wal_checkpoint` with given (busy, frames, copied) rows."""

    def __init__(self, database, *answers):
        self.database, self.answers, self.under_lock = database, list(answers), []

    def execute(self, sql):
        assert sql == "PRAGMA wal_checkpoint(PASSIVE)"
        self.under_lock.append(self.database.locked)
        return self

    def fetchone(self):
        return self.answers.pop(0)


class LockRecordingDatabase:
    locked = False

    @contextlib.contextmanager
    def writing(self):
        self.locked = True
        yield
        self.locked = False


def test_a_wal_writers_kept_growing_is_checkpointed_once_under_the_write_lock():
    database = LockRecordingDatabase()
    big = sqlite_checkpoints.RESET_FRAMES + 1
    grown = Checkpoints(database, (0, big, 10), (0, big, big))
    assert sqlite_checkpoints.checkpoint_once(grown, database) == (big, big)
    assert grown.under_lock == [False, True]
    copied = Checkpoints(database, (0, big, big), (0, big, big))  # all copied, yet not started over
    sqlite_checkpoints.checkpoint_once(copied, database)
    assert copied.under_lock == [False, True]
    small = Checkpoints(database, (0, 100, 10))  # under the bound: the next pass catches up
    assert sqlite_checkpoints.checkpoint_once(small, database) == (100, 10)
    assert small.under_lock == [False]


def test_a_process_that_checkpointed_in_a_thread_still_empties_the_wal_as_it_exits(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "db.sqlite3"
    script = ("import sys, uuid; from datetime import datetime, timezone;"
              " from shared.records import PredictionRecord;"
              " from shared.stores.predictions.sqlite import SqlitePredictionStore;"
              " from shared.stores.sqlite_database import SqliteDatabase;"
              " store = SqlitePredictionStore(SqliteDatabase(sys.argv[1], checkpoint_interval_seconds=0.05));"
              " [store.save_predictions_nowait([PredictionRecord(uuid.uuid4().hex, datetime.now(timezone.utc),"
              " 36.6, 70.0, 120.0, 'NO ENFERMO', {'NO ENFERMO': 1.0}, 'v1')]) for _ in range(300)];"
              " import time; time.sleep(0.3)")  # the thread has made its passes
    from tests.conftest import ROOT

    subprocess.run([sys.executable, "-c", script, str(path)], cwd=ROOT, check=True)
    wal = path.with_name(path.name + "-wal")
    # SQLite empties the WAL as the last connection closes: a connection the thread kept open would stop that
    assert not wal.exists() or wal.stat().st_size == 0
    assert SqlitePredictionStore(SqliteDatabase(path)).count() == 300
