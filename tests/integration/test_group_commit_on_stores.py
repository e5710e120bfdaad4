"""Group commit on the real stores: Firestore's async commit and its
ambiguous outcomes, SQLite's cross-process write lock."""

import asyncio
import contextlib
import multiprocessing
import threading
import time
import uuid
from datetime import datetime, timezone

import pytest
from google.api_core.exceptions import Conflict

from shared import wiring
from shared.records import PredictionRecord
from shared.serving.group_commit import GroupCommitter
from shared.stores.sqlite_database import SqliteDatabase


def records(count: int) -> list[PredictionRecord]:
    return [PredictionRecord(prediction_id=uuid.uuid4().hex, created_at=datetime.now(timezone.utc), temperature=36.6,
                             heart_rate=80, blood_pressure=120, prediction="NO ENFERMO",
                             probabilities={"NO ENFERMO": 1.0}, model_version="v1") for _ in range(count)]


@pytest.mark.emulator
def test_a_commit_that_already_landed_is_a_success_and_a_partial_one_is_not(firestore_env):
    store = wiring.prediction_store(wiring.settings("predict"))
    landed = records(3)
    store.save_predictions(landed)  # as if the first attempt committed and its answer was lost
    asyncio.run(store.save_predictions_async(landed))  # the retry finds its own documents: success
    mixed = records(2)
    store.save_predictions(mixed[:1])
    with pytest.raises(Conflict):
        asyncio.run(store.save_predictions_async(mixed))
    assert {store.get_prediction(r.prediction_id).prediction_id for r in landed} == {r.prediction_id for r in landed}
    assert store.count() == 4


@pytest.mark.emulator
def test_concurrent_requests_grouped_on_the_firestore_emulator_are_all_stored(firestore_env):
    store = wiring.prediction_store(wiring.settings("predict"))
    committer = GroupCommitter(store)

    async def requests():
        await asyncio.gather(*(committer.save(records(1 + index % 3)) for index in range(60)))

    asyncio.run(requests())
    assert store.count() == sum(1 + index % 3 for index in range(60))


def hold_write_lock(path, held, release):
    with SqliteDatabase(path).writing():
        held.set()
        release.wait(10)


@contextlib.contextmanager
def write_lock_held_by_another_process(path):
    """Another process holds the prediction write lock (for 10 s at most) until
    the `release` event this yields is set, or the block ends."""
    context = multiprocessing.get_context("spawn")
    held, release = context.Event(), context.Event()
    holder = context.Process(target=hold_write_lock, args=(path, held, release))
    holder.start()
    try:
        assert held.wait(30)
        yield release
    finally:
        release.set()
        holder.join(10)


@contextlib.contextmanager
def write_transaction_open_in_another_connection(path):
    """A plain SQLite writer (an outcome being recorded, a worker creating the
    schema) holds the database's write lock, outside the prediction lock file."""
    import sqlite3

    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_sqlite_writers_in_other_processes_wait_for_the_lock_file(tmp_path):
    path = tmp_path / "mlops.sqlite3"
    with write_lock_held_by_another_process(path) as release:
        database = SqliteDatabase(path)
        released_at = None

        def release_soon():
            nonlocal released_at
            time.sleep(0.3)
            released_at = time.monotonic()
            release.set()

        threading.Thread(target=release_soon).start()
        with database.writing():
            acquired_at = time.monotonic()
        assert released_at is not None and acquired_at >= released_at
        assert acquired_at - released_at < 0.2  # woken when freed, not after a polling sleep


def sqlite_store(path):
    from shared.stores.predictions.sqlite import SqlitePredictionStore

    return SqlitePredictionStore(SqliteDatabase(path))


def test_sqlite_commit_in_place_never_waits_for_another_process_and_writes_nothing_then(tmp_path):
    path = tmp_path / "mlops.sqlite3"
    store = sqlite_store(path)
    with write_lock_held_by_another_process(path):
        refused = records(2)
        started = time.monotonic()
        assert store.save_predictions_nowait(refused) is False
        assert time.monotonic() - started < 0.5  # no wait for the holder (it holds for 10 s)
        assert store.count() == 0
    assert store.save_predictions_nowait(refused) is True
    assert store.count() == 2


def test_sqlite_commit_in_place_gives_way_to_any_other_sqlite_writer(tmp_path):
    path = tmp_path / "mlops.sqlite3"
    store = sqlite_store(path)
    store.count()  # the schema exists
    with write_transaction_open_in_another_connection(path):
        assert store.save_predictions_nowait(records(1)) is False
    assert store.count() == 0
    assert store.save_predictions_nowait(records(1)) is True


def test_group_commit_on_sqlite_waits_in_a_thread_while_another_process_writes(tmp_path):
    path = tmp_path / "mlops.sqlite3"
    store = sqlite_store(path)
    committer = GroupCommitter(store)
    with write_lock_held_by_another_process(path) as release:

        async def scenario():
            saving = asyncio.gather(*(committer.save(records(1)) for _ in range(3)))
            for _ in range(5):  # the loop keeps running while the commit waits
                await asyncio.sleep(0.02)
                assert not saving.done() and store.count() == 0
            release.set()
            await saving

        started = time.monotonic()
        asyncio.run(scenario())
        assert time.monotonic() - started < 3  # the holder gives up after 10 s: nobody waited for that
    assert store.count() == 3


def test_sqlite_commit_in_place_on_a_new_database_another_process_is_creating_gives_way(tmp_path):
    path = tmp_path / "mlops.sqlite3"
    with write_transaction_open_in_another_connection(path):  # before the schema exists
        store = sqlite_store(path)  # this process's first connection will be the in-place one
        assert store.save_predictions_nowait(records(1)) is False
    assert store.save_predictions_nowait(records(1)) is True
    assert store.count() == 1


class BusyConnection:
    """A connection whose every statement fails with the given SQLite error code."""

    def __init__(self, code):
        self.code = code

    def execute(self, *args):
        import sqlite3

        error = sqlite3.OperationalError("database is locked")
        error.sqlite_errorcode = self.code
        raise error

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class BusyDatabase:
    def __init__(self, code):
        self.code = code

    def connection(self, blocking=True):
        return BusyConnection(self.code)

    def writing(self, blocking=True):
        import contextlib

        return contextlib.nullcontext()


@pytest.mark.parametrize("code", [5, 261, 517])  # SQLITE_BUSY and its extended codes (recovery, snapshot)
def test_every_kind_of_busy_makes_the_in_place_commit_give_way(code):
    from shared.stores.predictions.sqlite import SqlitePredictionStore

    assert SqlitePredictionStore(BusyDatabase(code)).save_predictions_nowait(records(1)) is False


def test_any_other_failure_of_the_in_place_commit_is_store_unavailable():
    from shared.errors import StoreUnavailable
    from shared.stores.predictions.sqlite import SqlitePredictionStore

    with pytest.raises(StoreUnavailable):
        SqlitePredictionStore(BusyDatabase(10)).save_predictions_nowait(records(1))  # SQLITE_IOERR


def test_group_commit_on_a_free_sqlite_database_commits_on_the_event_loop(tmp_path):
    from shared.stores.predictions.sqlite import SqlitePredictionStore

    class Recording(SqlitePredictionStore):
        threads: list[str] = []

        def save_predictions_nowait(self, batch):
            committed = super().save_predictions_nowait(batch)
            self.threads.append(("in place" if committed else "refused", threading.current_thread().name))
            return committed

        def save_predictions(self, batch):
            self.threads.append(("thread", threading.current_thread().name))
            super().save_predictions(batch)

    store = Recording(SqliteDatabase(tmp_path / "mlops.sqlite3"))
    committer = GroupCommitter(store)

    async def scenario():
        await asyncio.gather(*(committer.save(records(1)) for _ in range(5)))
        return threading.current_thread().name

    loop_thread = asyncio.run(scenario())
    assert store.threads == [("in place", loop_thread)]  # one commit for the five, on the loop
    assert store.count() == 5
