"""Group commit: requests in flight share a transaction, and each is answered
only after the commit that holds its own records."""

import asyncio
import threading
from datetime import datetime, timezone

import pytest

from shared.errors import StoreUnavailable
from shared.records import PredictionRecord
from shared.serving.group_commit import IN_PLACE_RETRY_PAUSES, GroupCommitter


def records(name: str, count: int = 1) -> list[PredictionRecord]:
    return [PredictionRecord(prediction_id=f"{name}-{index}", created_at=datetime.now(timezone.utc), temperature=36.6,
                             heart_rate=80, blood_pressure=120, prediction="NO ENFERMO",
                             probabilities={"NO ENFERMO": 1.0}, model_version="v1") for index in range(count)]


class GatedStore:
    """An in-memory store whose commits wait for `gate` and may be told to fail."""

    def __init__(self):
        self.commits: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail_next = False

    def save_predictions(self, batch):
        self.entered.set()
        assert self.gate.wait(5)
        if self.fail_next:
            self.fail_next = False
            raise StoreUnavailable("prediction store unavailable: test")
        self.commits.append([record.prediction_id for record in batch])

    def committed(self) -> set[str]:
        return {prediction_id for commit in self.commits for prediction_id in commit}


async def until(condition, timeout: float = 5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never met"
        await asyncio.sleep(0.001)


def test_requests_waiting_for_a_commit_share_the_next_one_and_return_after_it():
    store = GatedStore()
    committer = GroupCommitter(store)
    returned_with_record: dict[str, bool] = {}

    async def request(name):
        mine = records(name)
        await committer.save(mine)
        returned_with_record[name] = mine[0].prediction_id in store.committed()

    async def scenario():
        store.gate.clear()
        first = asyncio.create_task(request("first"))
        await until(store.entered.is_set)  # the first request's commit is in flight
        others = [asyncio.create_task(request(f"r{index}")) for index in range(5)]
        await asyncio.sleep(0.01)
        assert not any(task.done() for task in [first, *others])  # nobody answered before the commit
        store.gate.set()
        await asyncio.gather(first, *others)

    asyncio.run(scenario())
    assert store.commits == [["first-0"], [f"r{index}-0" for index in range(5)]]
    assert returned_with_record == {name: True for name in ["first", *[f"r{index}" for index in range(5)]]}


def test_a_failed_commit_fails_every_request_in_it_and_the_next_commit_works():
    store = GatedStore()
    committer = GroupCommitter(store)

    async def scenario():
        store.gate.clear()
        store.fail_next = True
        waiting = [asyncio.create_task(committer.save(records(f"r{index}"))) for index in range(4)]
        await asyncio.sleep(0.01)
        store.gate.set()
        outcomes = await asyncio.gather(*waiting, return_exceptions=True)
        await committer.save(records("after"))
        return outcomes

    outcomes = asyncio.run(scenario())
    assert all(isinstance(outcome, StoreUnavailable) for outcome in outcomes)
    assert store.committed() == {"after-0"}


def test_groups_stay_under_the_cap_and_a_request_is_never_split():
    store = GatedStore()
    committer = GroupCommitter(store, max_group_records=10)

    async def scenario():
        store.gate.clear()
        first = asyncio.create_task(committer.save(records("first")))
        await asyncio.sleep(0.01)
        sizes = {"a": 4, "b": 4, "c": 4, "big": 25, "d": 1}
        waiting = [asyncio.create_task(committer.save(records(name, size))) for name, size in sizes.items()]
        await asyncio.sleep(0.01)
        store.gate.set()
        await asyncio.gather(first, *waiting)

    asyncio.run(scenario())
    assert [len(commit) for commit in store.commits] == [1, 8, 4, 25, 1]
    assert store.commits[3] == [f"big-{index}" for index in range(25)]


def test_one_committer_serves_successive_event_loops():
    store = GatedStore()
    committer = GroupCommitter(store)
    for index in range(2):
        asyncio.run(committer.save(records(f"loop{index}")))
    assert store.commits == [["loop0-0"], ["loop1-0"]]


class InPlaceStore(GatedStore):
    """A synchronous store that can commit in place unless told it would wait."""

    def __init__(self):
        super().__init__()
        self.would_wait: bool | int = False
        self.attempts = 0
        self.threads: list[str] = []

    def save_predictions_nowait(self, batch) -> bool:
        self.attempts += 1
        if self.would_wait is True or self.attempts <= self.would_wait:  # True: always; n: the first n attempts
            return False
        self.threads.append(threading.current_thread().name)
        self.commits.append([record.prediction_id for record in batch])
        return True

    def save_predictions(self, batch):
        self.threads.append(threading.current_thread().name)
        super().save_predictions(batch)


def test_requests_ready_together_share_a_commit_made_in_place_on_the_loop():
    store = InPlaceStore()
    committer = GroupCommitter(store)

    async def scenario():
        await asyncio.gather(*(committer.save(records(f"r{index}")) for index in range(4)))
        return threading.current_thread().name

    loop_thread = asyncio.run(scenario())
    assert store.commits == [[f"r{index}-0" for index in range(4)]]
    assert store.threads == [loop_thread]


@pytest.mark.parametrize("would_wait, attempts, in_place", [
    (True, 2 + len(IN_PLACE_RETRY_PAUSES), False),  # a writer that holds on: then a worker thread waits
    (2, 3, True),  # another worker's brief commit (~100 µs): retried in place; a thread waited ~5 ms for the GIL
])
def test_a_commit_that_meets_another_writer_is_retried_in_place_then_made_in_a_thread(would_wait, attempts,
                                                                                       in_place):
    store = InPlaceStore()
    store.would_wait = would_wait
    committer = GroupCommitter(store)

    async def scenario():
        await committer.save(records("waits"))
        return threading.current_thread().name

    loop_thread = asyncio.run(scenario())
    assert store.committed() == {"waits-0"}
    assert store.attempts == attempts and len(store.threads) == 1
    assert (store.threads[0] == loop_thread) is in_place


def test_a_commit_that_fails_in_place_fails_every_request_in_it_and_the_next_commit_works():
    """SQLite's common failure (a full disk, an unwritable lock file): `save_predictions_nowait`
    raises, and every request in the group must get that error (503), none left waiting."""
    store = InPlaceStore()
    committer = GroupCommitter(store)

    def refuse(batch):
        store.attempts += 1
        raise StoreUnavailable("prediction store unavailable: disk full")

    async def scenario():
        store.save_predictions_nowait = refuse
        outcomes = await asyncio.wait_for(asyncio.gather(
            *(committer.save(records(f"r{index}")) for index in range(3)), return_exceptions=True), 2)
        del store.save_predictions_nowait
        await asyncio.wait_for(committer.save(records("after")), 2)
        return outcomes

    outcomes = asyncio.run(scenario())
    assert [type(outcome) for outcome in outcomes] == [StoreUnavailable] * 3
    assert store.attempts == 2 and store.committed() == {"after-0"}  # one refused group, one commit, no thread
