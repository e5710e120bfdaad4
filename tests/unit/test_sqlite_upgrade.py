"""`tools.cli upgrade-prediction-log`: a previous release's `.local` database
gets the (time, id) layout in one transaction, every row, outcome and other
table kept; a database in use, or one it cannot convert, is left as it was."""

import fcntl
import json
import os
import sqlite3
import uuid
from pathlib import Path

import pytest

from shared.records import PredictionRecord
from shared.stores.predictions.ids import new_prediction_id
from shared.stores.predictions.micros import from_micros
from shared.stores.predictions.sqlite import SqlitePredictionStore
from shared.stores.predictions.sqlite_layout import is_clustered
from shared.stores.sqlite_database import _SCHEMA, SqliteDatabase
from tools.cli import main

PREVIOUS_RELEASE = (Path(__file__).parents[1] / "data" / "previous_release_predictions.sql").read_text()
T0 = 1_767_225_600_000_000  # 2026-01-01, µs


def previous_release_database(ids: list[str]) -> Path:
    path = Path(os.environ["LOCAL_DATA_DIR"]) / "mlops.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as old:
        old.execute("PRAGMA journal_mode=WAL")
        old.executescript(PREVIOUS_RELEASE + _SCHEMA)
        old.executemany(
            "INSERT INTO predictions VALUES (?, ?, 36.6, 70.0, 120.0, 'NO ENFERMO', '{\"NO ENFERMO\": 1.0}', 'v1',"
            " ?, ?, ?, ?, ?)",
            [(prediction_id, T0 + 1000 * (i // 2), *(("ENFERMEDAD LEVE", T0 + 9, T0 + 9, "nurse", "[]")
                                                       if i % 3 == 0 else (None,) * 5))
             for i, prediction_id in enumerate(ids)])
        old.execute("INSERT INTO documents VALUES ('experiments', 'run-1', 1, '{\"status\": \"kept\"}')")
        old.execute("INSERT INTO outcome_rates VALUES ('2026010100:nurse', 3)")
    return path


def everything(path: Path) -> list:
    with sqlite3.connect(path) as connection:
        return [connection.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
                for table in ("predictions", "documents", "outcome_rates")]


def run(capsys, *arguments) -> tuple[int, str]:
    status = main(["upgrade-prediction-log", "--json", *arguments])
    return status, capsys.readouterr()


def test_a_previous_release_database_is_rebuilt_with_every_row_outcome_and_table(capsys):
    path = previous_release_database([uuid.uuid4().hex for _ in range(30)])
    before = everything(path)
    status, out = run(capsys)
    assert status == 0, out
    assert json.loads(out.out)["upgraded"] is True and json.loads(out.out)["rows"] == 30
    assert everything(path) == before  # rows byte for byte (outcomes, history), documents, counters
    with sqlite3.connect(path) as connection:
        assert is_clustered(connection)
        indexes = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"predictions_by_other_id", "predictions_by_outcome_time"} <= indexes
    assert "predictions_by_time" not in indexes
    store = SqlitePredictionStore(SqliteDatabase(path))
    first = before[0][0]
    assert store.get_prediction(first[0]).outcome_label == first[8]
    fresh = new_prediction_id(from_micros(T0 + 10**6))
    store.save_predictions([PredictionRecord(fresh, from_micros(T0 + 10**6), 36.6, 70.0, 120.0, "NO ENFERMO",
                                             {"NO ENFERMO": 1.0}, "v1")])
    assert store.count() == 31
    status, out = run(capsys)  # a second run changes nothing
    assert status == 0 and json.loads(out.out) == {"database": str(path), "upgraded": False, "rows": 31}


def test_a_database_in_use_is_refused_and_left_as_it_was(capsys):
    path = previous_release_database([uuid.uuid4().hex for _ in range(5)])
    before = everything(path)
    held = os.open(path.with_name(path.name + ".checkpoint-lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running server's process holds it
        status, out = run(capsys)
    finally:
        os.close(held)
    assert status == 2 and "stop it first" in out.err
    assert everything(path) == before
    with sqlite3.connect(path) as connection:
        assert not is_clustered(connection)


@pytest.mark.parametrize("late_row", [True, False], ids=["bad row last", "bad row first"])
def test_a_row_the_new_layout_cannot_keep_leaves_nothing_changed(capsys, late_row):
    """A 46-digit id whose last 14 digits are not its row's time (hand-made): the whole rebuild rolls back."""
    odd = "0" * 32 + format(T0 + 123_456_789, "014x")
    ids = [uuid.uuid4().hex for _ in range(10)]
    path = previous_release_database(ids + [odd] if late_row else [odd] + ids)
    before = everything(path)
    status, out = run(capsys)
    assert status == 2 and "nothing was changed" in out.err
    assert everything(path) == before
    with sqlite3.connect(path) as connection:
        assert not is_clustered(connection)
        assert not connection.execute("SELECT name FROM sqlite_master WHERE name = 'predictions_upgraded'").fetchall()
