"""Prediction store on SQLite: the local default."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

import numpy as np

from shared.errors import StoreUnavailable
from shared.records import PredictionRecord, WindowChunk, probability_rows
from shared.schema import FEATURES
from shared.stores.predictions.cursor import decode_cursor, page_of
from shared.stores.predictions.ids import is_prediction_id, prediction_not_found, time_in_prediction_id
from shared.stores.predictions.micros import from_micros, to_micros
from shared.stores.predictions.sqlite_layout import NOT_TIME_KEYED
from shared.stores.sqlite_database import SqliteDatabase, WriteWouldBlock


class SqlitePredictionStore:
    def __init__(self, database: SqliteDatabase):
        self.database = database

    def _execute(self, sql: str, parameters=()):
        import sqlite3

        try:
            return self.database.connection().execute(sql, parameters)
        except sqlite3.OperationalError as error:
            raise StoreUnavailable(f"prediction store unavailable: {error}") from None

    def save_predictions(self, records: list[PredictionRecord]) -> None:
        self._insert(records, blocking=True)

    def save_predictions_nowait(self, records: list[PredictionRecord]) -> bool:
        """Commit now if no other writer holds the database; otherwise write
        nothing and return False (an event loop then waits in a thread instead)."""
        try:
            self._insert(records, blocking=False)
        except WriteWouldBlock:
            return False
        return True

    def _insert(self, records: list[PredictionRecord], blocking: bool) -> None:
        import sqlite3

        rows = [
            (
                r.prediction_id, to_micros(r.created_at), r.temperature, r.heart_rate, r.blood_pressure,
                r.prediction, json.dumps(r.probabilities), r.model_version,
            )
            for r in records
        ]
        try:
            connection = self.database.connection(blocking)  # a first connection may meet a writer too
            with self.database.writing(blocking), connection:  # one transaction: all records or none
                connection.execute("BEGIN IMMEDIATE")
                connection.executemany(
                    "INSERT INTO predictions (prediction_id, created_us, temperature, heart_rate, blood_pressure,"
                    " prediction, probabilities, model_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
        except sqlite3.OperationalError as error:
            # Extended codes (BUSY_RECOVERY, BUSY_SNAPSHOT...) carry SQLITE_BUSY in their low byte.
            if not blocking and error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
                raise WriteWouldBlock() from None  # the transaction rolled back: nothing was written
            raise StoreUnavailable(f"prediction store unavailable: {error}") from None

    @staticmethod
    def _where_id(prediction_id: str) -> tuple[str, tuple]:
        """The WHERE clause that finds one id through an index: the key, for an id that carries its
        time; `predictions_by_other_id` (or a previous release's id index) for the rest."""
        other = f"(prediction_id = ? AND {NOT_TIME_KEYED})"
        micros = time_in_prediction_id(prediction_id)
        if micros is None:
            return other, (prediction_id,)
        return f"(created_us = ? AND prediction_id = ?) OR {other}", (micros, prediction_id, prediction_id)

    @staticmethod
    def _record(row) -> PredictionRecord:
        return PredictionRecord(
            # float(): a NUMERIC column gives 70.0 back as 70; the JSON must not depend on the backend.
            prediction_id=row[0], created_at=from_micros(row[1]), temperature=float(row[2]),
            heart_rate=float(row[3]), blood_pressure=float(row[4]), prediction=row[5],
            probabilities=json.loads(row[6]), model_version=row[7],
            outcome_label=row[8], outcome_recorded_at=from_micros(row[9]), outcome_updated_at=from_micros(row[10]),
            outcome_caller=row[11], outcome_history=_history(row[12]),
        )

    _COLUMNS = (
        "prediction_id, created_us, temperature, heart_rate, blood_pressure, prediction, probabilities,"
        " model_version, outcome_label, outcome_recorded_us, outcome_updated_us, outcome_caller, outcome_history"
    )

    def list_predictions(self, limit: int, cursor: str | None = None) -> tuple[list[PredictionRecord], str | None]:
        if cursor:
            micros, prediction_id = decode_cursor(cursor)
            rows = self._execute(
                f"SELECT {self._COLUMNS} FROM predictions WHERE (created_us, prediction_id) < (?, ?)"
                " ORDER BY created_us DESC, prediction_id DESC LIMIT ?",
                (micros, prediction_id, limit + 1),
            ).fetchall()
        else:
            rows = self._execute(
                f"SELECT {self._COLUMNS} FROM predictions ORDER BY created_us DESC, prediction_id DESC LIMIT ?",
                (limit + 1,),
            ).fetchall()
        return page_of([self._record(row) for row in rows], limit)

    def get_prediction(self, prediction_id: str) -> PredictionRecord:
        if not is_prediction_id(prediction_id):
            raise prediction_not_found(prediction_id)
        where, parameters = self._where_id(prediction_id)
        row = self._execute(f"SELECT {self._COLUMNS} FROM predictions WHERE {where}", parameters).fetchone()
        if row is None:
            raise prediction_not_found(prediction_id)
        return self._record(row)

    def record_outcome(self, prediction_id: str, label: str, now: datetime,
                       caller: str | None = None) -> PredictionRecord:
        """One atomic UPDATE (SET reads the old values): `updated_at` never goes
        back, not even for a request that read the clock before another committed.
        A new label or a new caller pushes the current (label, caller, time) onto
        `outcome_history`; the same label from the same caller changes nothing."""
        if not is_prediction_id(prediction_id):
            raise prediction_not_found(prediction_id)
        micros = to_micros(now)
        where, id_parameters = self._where_id(prediction_id)
        rows = self._execute(
            "UPDATE predictions SET"
            " outcome_history = CASE WHEN outcome_label IS NULL OR (outcome_label IS ? AND outcome_caller IS ?)"
            " THEN outcome_history ELSE json_insert(COALESCE(outcome_history, '[]'), '$[#]', json_object("
            "'label', outcome_label, 'caller', outcome_caller,"
            " 'at_us', COALESCE(outcome_updated_us, outcome_recorded_us))) END,"
            " outcome_caller = ?,"
            " outcome_recorded_us = COALESCE(outcome_recorded_us, ?),"
            " outcome_updated_us = CASE WHEN outcome_label IS ? THEN outcome_updated_us"
            " ELSE MAX(?, COALESCE(outcome_updated_us, outcome_recorded_us, ?)) END,"
            f" outcome_label = ? WHERE {where} RETURNING {self._COLUMNS}",
            (label, caller, caller, micros, label, micros, micros, label, *id_parameters),
        ).fetchall()  # all rows: the statement, and its write lock, end here
        if not rows:
            raise prediction_not_found(prediction_id)
        return self._record(rows[0])

    def _iter_chunks(self, where: str, parameters: tuple, chunk_size: int,
                     order: str = "created_us", with_times: bool = False) -> Iterator[WindowChunk]:
        """`with_times`: also when each prediction was made (only the retrain's
        outcomes need it; a datetime a row would slow every drift window)."""
        cursor = self._execute(
            "SELECT temperature, heart_rate, blood_pressure, prediction, outcome_label, model_version, probabilities,"
            " outcome_caller, COALESCE(outcome_updated_us, outcome_recorded_us), outcome_history"
            + (", created_us" if with_times else "") + " FROM predictions"
            f" WHERE {where} ORDER BY {order}",
            parameters,
        )
        while rows := cursor.fetchmany(chunk_size):
            columns = list(zip(*rows))
            yield WindowChunk(
                features=np.column_stack([np.asarray(columns[i], dtype=float) for i in range(len(FEATURES))]),
                predictions=list(columns[3]),
                outcomes=list(columns[4]),
                model_versions=list(columns[5]),
                probabilities=probability_rows(json.loads(text) for text in columns[6]),
                outcome_callers=list(columns[7]),
                outcome_times=[from_micros(micros) for micros in columns[8]],
                outcome_histories=[_history(text) for text in columns[9]],
                predicted_times=[from_micros(micros) for micros in columns[10]] if with_times else [],
            )

    def iter_window(self, start: datetime, end: datetime, chunk_size: int = 5000) -> Iterator[WindowChunk]:
        return self._iter_chunks("created_us >= ? AND created_us < ?", (to_micros(start), to_micros(end)), chunk_size)

    def iter_labelled(self, chunk_size: int = 5000) -> Iterator[WindowChunk]:
        return self._iter_chunks("outcome_label IS NOT NULL", (), chunk_size)

    def iter_outcomes_recorded(self, start: datetime, end: datetime,
                               chunk_size: int = 5000) -> Iterator[WindowChunk]:
        return self._iter_chunks("outcome_recorded_us >= ? AND outcome_recorded_us < ?",
                                 (to_micros(start), to_micros(end)), chunk_size, order="outcome_recorded_us",
                                 with_times=True)

    def count_outcome_request(self, hour: str, caller: str) -> int:
        """Add one to `caller`'s counter for `hour` (YYYYMMDDHH, UTC); returns the new count.
        Earlier hours' counters are deleted on the way (keys sort by hour first)."""
        self._execute("DELETE FROM outcome_rates WHERE key < ?", (f"{hour}|",))
        return self._execute("INSERT INTO outcome_rates (key, count) VALUES (?, 1) ON CONFLICT (key)"
                             " DO UPDATE SET count = count + 1 RETURNING count", (f"{hour}|{caller}",)).fetchall()[0][0]

    def count(self) -> int:
        return self._execute("SELECT COUNT(*) FROM predictions").fetchone()[0]


def _history(text: str | None) -> list[dict]:
    return [{"label": entry["label"], "caller": entry.get("caller"), "at": from_micros(entry.get("at_us"))}
            for entry in json.loads(text)] if text else []
