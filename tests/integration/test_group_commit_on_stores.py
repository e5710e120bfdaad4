"""Group commit on the real stores: Firestore's async commit and its
ambiguous outcomes, SQLite's cross-process write lock."""

import asyncio
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


def test_sqlite_writers_in_other_processes_wait_for_the_lock_file(tmp_path):
    path = tmp_path / "mlops.sqlite3"
    context = multiprocessing.get_context("spawn")
    held, release = context.Event(), context.Event()
    holder = context.Process(target=hold_write_lock, args=(path, held, release))
    holder.start()
    try:
        assert held.wait(30)
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
    finally:
        release.set()
        holder.join(10)


def sqlite_store(path):
    from shared.stores.predictions.sqlite import SqlitePredictionStore

    return SqlitePredictionStore(SqliteDatabase(path))


def test_sqlite_commit_in_place_never_waits_for_another_process_and_writes_nothing_then(tmp_path):
    path = tmp_path / "mlops.sqlite3"
    store = sqlite_store(path)
    context = multiprocessing.get_context("spawn")
    held, release = context.Event(), context.Event()
    holder = context.Process(target=hold_write_lock, args=(path, held, release))
    holder.start()
    try:
        assert held.wait(30)
        refused = records(2)
        started = time.monotonic()
        assert store.save_predictions_nowait(refused) is False
        assert time.monotonic() - started < 0.05
        assert store.count() == 0
    finally:
        release.set()
        holder.join(10)
    assert store.save_predictions_nowait(refused) is True
    assert store.count() == 2


def test_sqlite_commit_in_place_gives_way_to_any_other_sqlite_writer(tmp_path):
    import sqlite3

    path = tmp_path / "mlops.sqlite3"
    store = sqlite_store(path)
    store.count()  # the schema exists
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # e.g. an outcome being recorded, outside the prediction lock
    try:
        assert store.save_predictions_nowait(records(1)) is False
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.count() == 0
    assert store.save_predictions_nowait(records(1)) is True


def test_group_commit_on_sqlite_waits_in_a_thread_while_another_process_writes(tmp_path):
    path = tmp_path / "mlops.sqlite3"
    store = sqlite_store(path)
    committer = GroupCommitter(store)
    context = multiprocessing.get_context("spawn")
    held, release = context.Event(), context.Event()
    holder = context.Process(target=hold_write_lock, args=(path, held, release))
    holder.start()
    try:
        assert held.wait(30)

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
    finally:
        release.set()
        holder.join(10)
    assert store.count() == 3
