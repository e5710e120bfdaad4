"""The prediction log's SQLite layout: one commit of one prediction dirties
one page of one B-tree (kept in time order), not a random page of an index on
a random id beside it; and a database made by the previous release still
works (its rows, their ids, history order, cursors, outcomes)."""

import sqlite3
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from shared.records import PredictionRecord
from shared.serving.prediction_service import predict_records
from shared.stores.predictions.ids import new_prediction_id
from shared.stores.predictions.micros import to_micros
from shared.stores.predictions.sqlite import SqlitePredictionStore
from shared.stores.sqlite_database import SqliteDatabase

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)

# The table as releases before this layout created it (existing `.local` databases have it).
PREVIOUS_RELEASE_SCHEMA = (Path(__file__).parents[1] / "data" / "previous_release_predictions.sql").read_text()


def service_record(at: datetime) -> PredictionRecord:
    return PredictionRecord(new_prediction_id(at), at, 36.6, 70.0, 120.0, "NO ENFERMO", {"NO ENFERMO": 1.0}, "v1")


def foreign_record(at: datetime) -> PredictionRecord:
    """An id the service would not issue (older releases', a test's): still a record like any other."""
    return PredictionRecord(uuid.uuid4().hex, at, 36.6, 70.0, 120.0, "NO ENFERMO", {"NO ENFERMO": 1.0}, "v1")


def test_service_ids_are_random_first_and_carry_their_time():
    at = T0 + timedelta(microseconds=123)
    first, second = new_prediction_id(at), new_prediction_id(at)
    assert first != second and first[:32] != second[:32]  # 128 random bits lead: unguessable, spread in Firestore
    assert first.endswith(format(to_micros(at), "014x"))


def test_predict_issues_ids_that_carry_the_records_time():
    class Model:
        version = "v1"

        def predict(self, rows):
            return [("NO ENFERMO", {"NO ENFERMO": 1.0}) for _ in rows]

    class Vitals:
        temperature, heart_rate, blood_pressure = 36.6, 70.0, 120.0

        def as_row(self):
            return [36.6, 70.0, 120.0]

    records = predict_records(Model(), [Vitals(), Vitals()], now=T0)
    assert all(r.prediction_id.endswith(format(to_micros(T0), "014x")) for r in records)
    assert records[0].prediction_id != records[1].prediction_id


def _wal_bytes_per_commit(path, store, make, commits=200) -> float:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = path.with_name(path.name + "-wal").stat().st_size
    start = T0 + timedelta(days=1)
    for i in range(commits):
        assert store.save_predictions_nowait([make(start + timedelta(milliseconds=i))])
    after = path.with_name(path.name + "-wal").stat().st_size
    connection.close()
    return (after - before) / commits


def test_one_prediction_commits_about_a_third_of_the_wal_bytes_of_the_previous_layout(tmp_path):
    """bench/prediction_log.py, 100,000 rows of five probabilities: 5.3 KB a commit against 15.2 KB (0.35x);
    these rows (one probability) are smaller, the ratio is the claim."""
    written = {}
    for layout, make in (("current", service_record), ("previous", foreign_record)):
        path = tmp_path / f"{layout}.sqlite3"
        if layout == "previous":
            with sqlite3.connect(path) as old:
                old.executescript(PREVIOUS_RELEASE_SCHEMA)
        store = SqlitePredictionStore(SqliteDatabase(path, checkpoint_interval_seconds=3600))
        store.save_predictions([make(T0 + timedelta(milliseconds=i)) for i in range(20_000)])
        written[layout] = _wal_bytes_per_commit(path, store, make)
    assert written["current"] < 0.4 * written["previous"], written


def test_new_databases_use_2_kb_pages_and_older_ones_keep_theirs(tmp_path):
    new = SqliteDatabase(tmp_path / "new.sqlite3")
    SqlitePredictionStore(new).count()
    assert new.connection().execute("PRAGMA page_size").fetchone()[0] == 2048
    old_path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(old_path, isolation_level=None)
    old.execute("PRAGMA journal_mode=WAL")
    old.executescript(PREVIOUS_RELEASE_SCHEMA)
    old.close()
    reopened = SqliteDatabase(old_path)
    SqlitePredictionStore(reopened).count()
    assert reopened.connection().execute("PRAGMA page_size").fetchone()[0] == 4096


@pytest.mark.parametrize("make", [service_record, foreign_record], ids=["service id", "foreign id"])
def test_a_prediction_is_found_by_id_through_an_index(tmp_path, make):
    path = tmp_path / "db.sqlite3"
    store = SqlitePredictionStore(SqliteDatabase(path))
    records = [make(T0 + timedelta(seconds=i)) for i in range(50)]
    store.save_predictions(records)
    wanted = records[17]
    assert store.get_prediction(wanted.prediction_id) == wanted
    labelled = store.record_outcome(wanted.prediction_id, "ENFERMEDAD LEVE", T0 + timedelta(hours=1))
    assert labelled.outcome_label == "ENFERMEDAD LEVE" and labelled.prediction_id == wanted.prediction_id
    sql, parameters = store._where_id(wanted.prediction_id)
    plan = " ".join(row[3] for row in sqlite3.connect(path).execute(
        f"EXPLAIN QUERY PLAN SELECT * FROM predictions WHERE {sql}", parameters))
    assert "SCAN" not in plan, plan


def test_a_service_shaped_id_whose_time_is_not_its_records_is_refused(tmp_path):
    """Such an id (copied, hand-made) would escape both the key and the unique index of other ids."""
    store = SqlitePredictionStore(SqliteDatabase(tmp_path / "db.sqlite3"))
    odd = PredictionRecord(new_prediction_id(T0), T0 + timedelta(days=3), 36.6, 70.0, 120.0, "NO ENFERMO",
                           {"NO ENFERMO": 1.0}, "v1")
    with pytest.raises(sqlite3.IntegrityError):
        store.save_predictions([service_record(T0), odd])
    assert store.count() == 0  # one transaction: neither


def test_a_database_made_by_the_previous_release_still_works(tmp_path):
    path = tmp_path / "db.sqlite3"
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("PRAGMA journal_mode=WAL")
    old.executescript(PREVIOUS_RELEASE_SCHEMA)
    old_records = [foreign_record(T0 + timedelta(seconds=i // 2)) for i in range(10)]
    old.executemany("INSERT INTO predictions (prediction_id, created_us, temperature, heart_rate, blood_pressure,"
                    " prediction, probabilities, model_version) VALUES (?, ?, 36.6, 70.0, 120.0, 'NO ENFERMO',"
                    " '{\"NO ENFERMO\": 1.0}', 'v1')",
                    [(r.prediction_id, to_micros(r.created_at)) for r in old_records])
    old.close()

    store = SqlitePredictionStore(SqliteDatabase(path))
    new_records = [service_record(T0 + timedelta(seconds=5 + i // 2)) for i in range(10)]
    store.save_predictions(new_records)
    for wanted in (old_records[3], new_records[4]):
        assert store.get_prediction(wanted.prediction_id) == wanted
        assert store.record_outcome(wanted.prediction_id, "ENFERMEDAD LEVE", T0 + timedelta(hours=1)).outcome_label \
            == "ENFERMEDAD LEVE"
    seen, cursor = [], None
    while True:
        page, cursor = store.list_predictions(3, cursor)
        seen.extend(page)
        if cursor is None:
            break
    keys = [(r.created_at, r.prediction_id) for r in seen]
    assert keys == sorted(((r.created_at, r.prediction_id) for r in old_records + new_records), reverse=True)
    assert store.count() == 20


def test_an_id_saved_twice_is_refused_on_a_database_of_the_previous_release_too(tmp_path):
    path = tmp_path / "db.sqlite3"
    with sqlite3.connect(path) as old:
        old.executescript(PREVIOUS_RELEASE_SCHEMA)
    store = SqlitePredictionStore(SqliteDatabase(path))
    first = foreign_record(T0)
    store.save_predictions([first])
    with pytest.raises(sqlite3.IntegrityError):
        store.save_predictions([PredictionRecord(first.prediction_id, T0 + timedelta(seconds=1),
                                                 36.6, 70.0, 120.0, "NO ENFERMO", {"NO ENFERMO": 1.0}, "v1")])
    assert store.count() == 1


def test_the_index_a_previous_release_adds_to_a_new_file_is_dropped_on_open(tmp_path):
    """Opened by the previous release, a new file gains its `predictions_by_time` (a copy of the key)."""
    path = tmp_path / "db.sqlite3"
    SqlitePredictionStore(SqliteDatabase(path)).count()
    with sqlite3.connect(path) as downgraded:
        downgraded.execute("CREATE INDEX IF NOT EXISTS predictions_by_time ON predictions (created_us, prediction_id)")
    SqlitePredictionStore(SqliteDatabase(path)).count()
    names = {row[0] for row in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "predictions_by_time" not in names
