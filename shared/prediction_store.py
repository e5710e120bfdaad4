"""Prediction store port: every answered prediction and its clinician outcome.

Adapters: `SqlitePredictionStore` (local default) and
`FirestorePredictionStore` (collection `predictions`, random document ids so
writes spread across the key space instead of hot-spotting on time order).

A record holds the model's inputs and outputs and metadata only: no client
IP, no patient identifier.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Protocol

import numpy as np

from shared.errors import NotFound, StoreUnavailable, ValidationError
from shared.schema import FEATURES
from shared.sqlite_database import SqliteDatabase

COLLECTION = "predictions"


@dataclass
class PredictionRecord:
    prediction_id: str
    created_at: datetime
    temperature: float
    heart_rate: float
    blood_pressure: float
    prediction: str
    probabilities: dict[str, float]
    model_version: str
    outcome_label: str | None = None
    outcome_recorded_at: datetime | None = None
    outcome_updated_at: datetime | None = None

    def to_api(self) -> dict:
        item = {
            "prediction_id": self.prediction_id,
            "created_at": isoformat(self.created_at),
            "inputs": {name: getattr(self, name) for name in FEATURES},
            "prediction": self.prediction,
            "probabilities": self.probabilities,
            "model_version": self.model_version,
        }
        if self.outcome_label is not None:
            item["outcome"] = {
                "label": self.outcome_label,
                "recorded_at": isoformat(self.outcome_recorded_at),
                "updated_at": isoformat(self.outcome_updated_at),
            }
        return item


@dataclass
class WindowChunk:
    """A bounded slice of logged predictions, column-wise for vectorised stats."""

    features: np.ndarray  # shape (n, len(FEATURES))
    predictions: list[str]
    outcomes: list[str | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.predictions)


class PredictionStore(Protocol):
    def save_predictions(self, records: list[PredictionRecord]) -> None: ...

    def list_predictions(self, limit: int, cursor: str | None = None) -> tuple[list[PredictionRecord], str | None]: ...

    def get_prediction(self, prediction_id: str) -> PredictionRecord: ...

    def record_outcome(self, prediction_id: str, label: str, now: datetime) -> PredictionRecord: ...

    def iter_window(self, start: datetime, end: datetime, chunk_size: int = 5000) -> Iterator[WindowChunk]: ...

    def iter_labelled(self, chunk_size: int = 5000) -> Iterator[WindowChunk]: ...

    def count(self) -> int: ...


def isoformat(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def encode_cursor(created_at: datetime, prediction_id: str) -> str:
    raw = json.dumps({"t": _to_micros(created_at), "id": prediction_id}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        micros, prediction_id = data["t"], data["id"]
        if not isinstance(micros, int) or not isinstance(prediction_id, str):
            raise TypeError
        return micros, prediction_id
    except (ValueError, TypeError, KeyError, UnicodeError):
        raise ValidationError("'cursor' is not a cursor this service issued", field="cursor",
                              code="invalid_cursor") from None


def _to_micros(moment: datetime) -> int:
    return int(round(moment.timestamp() * 1_000_000))


def _from_micros(micros: int | None) -> datetime | None:
    if micros is None:
        return None
    return datetime.fromtimestamp(micros / 1_000_000, tz=timezone.utc)


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
        import sqlite3

        rows = [
            (
                r.prediction_id, _to_micros(r.created_at), r.temperature, r.heart_rate, r.blood_pressure,
                r.prediction, json.dumps(r.probabilities), r.model_version,
            )
            for r in records
        ]
        connection = self.database.connection()
        try:
            with connection:  # one transaction: all records or none
                connection.execute("BEGIN IMMEDIATE")
                connection.executemany(
                    "INSERT INTO predictions (prediction_id, created_us, temperature, heart_rate, blood_pressure,"
                    " prediction, probabilities, model_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
        except sqlite3.OperationalError as error:
            raise StoreUnavailable(f"prediction store unavailable: {error}") from None

    @staticmethod
    def _record(row) -> PredictionRecord:
        return PredictionRecord(
            prediction_id=row[0], created_at=_from_micros(row[1]), temperature=row[2], heart_rate=row[3],
            blood_pressure=row[4], prediction=row[5], probabilities=json.loads(row[6]), model_version=row[7],
            outcome_label=row[8], outcome_recorded_at=_from_micros(row[9]), outcome_updated_at=_from_micros(row[10]),
        )

    _COLUMNS = (
        "prediction_id, created_us, temperature, heart_rate, blood_pressure, prediction, probabilities,"
        " model_version, outcome_label, outcome_recorded_us, outcome_updated_us"
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
        records = [self._record(row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = records[-1]
            next_cursor = encode_cursor(last.created_at, last.prediction_id)
        return records, next_cursor

    def get_prediction(self, prediction_id: str) -> PredictionRecord:
        row = self._execute(
            f"SELECT {self._COLUMNS} FROM predictions WHERE prediction_id = ?", (prediction_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"no prediction with id {prediction_id!r}", field="prediction_id")
        return self._record(row)

    def record_outcome(self, prediction_id: str, label: str, now: datetime) -> PredictionRecord:
        micros = _to_micros(now)
        cursor = self._execute(
            "UPDATE predictions SET"
            " outcome_recorded_us = COALESCE(outcome_recorded_us, ?),"
            " outcome_updated_us = CASE WHEN outcome_label IS ? THEN outcome_updated_us ELSE ? END,"
            " outcome_label = ? WHERE prediction_id = ?",
            (micros, label, micros, label, prediction_id),
        )
        if cursor.rowcount == 0:
            raise NotFound(f"no prediction with id {prediction_id!r}", field="prediction_id")
        return self.get_prediction(prediction_id)

    def _iter_chunks(self, where: str, parameters: tuple, chunk_size: int) -> Iterator[WindowChunk]:
        cursor = self._execute(
            "SELECT temperature, heart_rate, blood_pressure, prediction, outcome_label FROM predictions"
            f" WHERE {where} ORDER BY created_us",
            parameters,
        )
        while rows := cursor.fetchmany(chunk_size):
            columns = list(zip(*rows))
            yield WindowChunk(
                features=np.column_stack([np.asarray(columns[i], dtype=float) for i in range(len(FEATURES))]),
                predictions=list(columns[3]),
                outcomes=list(columns[4]),
            )

    def iter_window(self, start: datetime, end: datetime, chunk_size: int = 5000) -> Iterator[WindowChunk]:
        return self._iter_chunks("created_us >= ? AND created_us < ?", (_to_micros(start), _to_micros(end)), chunk_size)

    def iter_labelled(self, chunk_size: int = 5000) -> Iterator[WindowChunk]:
        return self._iter_chunks("outcome_label IS NOT NULL", (), chunk_size)

    def count(self) -> int:
        return self._execute("SELECT COUNT(*) FROM predictions").fetchone()[0]


class FirestorePredictionStore:
    """Firestore in native mode. The client is built lazily unless injected."""

    def __init__(self, project: str, database: str = "(default)", client=None, timeout: float = 5.0,
                 retention_days: int = 365):
        self.project = project
        self.database = database
        self._client = client
        self.timeout = timeout
        self.retention = timedelta(days=retention_days)

    @property
    def client(self):
        if self._client is None:
            from google.cloud import firestore

            self._client = firestore.Client(project=self.project, database=self.database)
        return self._client

    @property
    def collection(self):
        return self.client.collection(COLLECTION)

    def _call(self, function, *args, **kwargs):
        from google.api_core import exceptions

        try:
            return function(*args, **kwargs)
        except (exceptions.ServiceUnavailable, exceptions.DeadlineExceeded, exceptions.RetryError,
                exceptions.InternalServerError) as error:
            raise StoreUnavailable(f"prediction store unavailable: {type(error).__name__}") from None

    def _retry(self):
        from google.api_core.retry import Retry

        # Bounded: a request must fail fast with a 503, never hang on a dead store.
        return Retry(initial=0.1, maximum=1.0, timeout=self.timeout)

    def save_predictions(self, records: list[PredictionRecord]) -> None:
        batch = self.client.batch()
        for record in records:
            batch.create(self.collection.document(record.prediction_id), self._document(record))
        self._call(batch.commit, retry=self._retry(), timeout=self.timeout)

    def _document(self, record: PredictionRecord) -> dict:
        return {
            "created_at": record.created_at,
            "expire_at": record.created_at + self.retention,
            "temperature": record.temperature,
            "heart_rate": record.heart_rate,
            "blood_pressure": record.blood_pressure,
            "prediction": record.prediction,
            "probabilities": record.probabilities,
            "model_version": record.model_version,
        }

    @staticmethod
    def _record(snapshot) -> PredictionRecord:
        data = snapshot.to_dict()
        return PredictionRecord(
            prediction_id=snapshot.id,
            created_at=data["created_at"],
            temperature=data["temperature"],
            heart_rate=data["heart_rate"],
            blood_pressure=data["blood_pressure"],
            prediction=data["prediction"],
            probabilities=data["probabilities"],
            model_version=data["model_version"],
            outcome_label=data.get("outcome_label"),
            outcome_recorded_at=data.get("outcome_recorded_at"),
            outcome_updated_at=data.get("outcome_updated_at"),
        )

    def list_predictions(self, limit: int, cursor: str | None = None) -> tuple[list[PredictionRecord], str | None]:
        from google.cloud import firestore

        query = self.collection.order_by("created_at", direction=firestore.Query.DESCENDING).order_by(
            "__name__", direction=firestore.Query.DESCENDING
        )
        if cursor:
            micros, prediction_id = decode_cursor(cursor)
            query = query.start_after(
                {"created_at": _from_micros(micros), "__name__": self.collection.document(prediction_id)})
        snapshots = self._call(lambda: list(query.limit(limit + 1).stream(retry=self._retry(), timeout=self.timeout)))
        records = [self._record(snapshot) for snapshot in snapshots[:limit]]
        next_cursor = None
        if len(snapshots) > limit:
            next_cursor = encode_cursor(records[-1].created_at, records[-1].prediction_id)
        return records, next_cursor

    def get_prediction(self, prediction_id: str) -> PredictionRecord:
        snapshot = self._call(self.collection.document(prediction_id).get, retry=self._retry(), timeout=self.timeout)
        if not snapshot.exists:
            raise NotFound(f"no prediction with id {prediction_id!r}", field="prediction_id")
        return self._record(snapshot)

    def record_outcome(self, prediction_id: str, label: str, now: datetime) -> PredictionRecord:
        from google.cloud import firestore

        reference = self.collection.document(prediction_id)

        @firestore.transactional
        def update(transaction):
            snapshot = reference.get(transaction=transaction)
            if not snapshot.exists:
                raise NotFound(f"no prediction with id {prediction_id!r}", field="prediction_id")
            data = snapshot.to_dict()
            changes = {"outcome_label": label}
            if data.get("outcome_recorded_at") is None:
                changes["outcome_recorded_at"] = now
            if data.get("outcome_label") != label:
                changes["outcome_updated_at"] = now
            transaction.update(reference, changes)

        self._call(update, self.client.transaction())
        return self.get_prediction(prediction_id)

    def _iter_query(self, query, chunk_size: int) -> Iterator[WindowChunk]:
        last = None
        while True:
            page = (query.start_after(last) if last is not None else query).limit(chunk_size)
            snapshots = self._call(lambda page=page: list(page.stream(timeout=60)))
            if not snapshots:
                return
            rows, predictions, outcomes = [], [], []
            for snapshot in snapshots:
                data = snapshot.to_dict()
                rows.append([data[name] for name in FEATURES])
                predictions.append(data["prediction"])
                outcomes.append(data.get("outcome_label"))
            yield WindowChunk(np.asarray(rows, dtype=float), predictions, outcomes)
            if len(snapshots) < chunk_size:
                return
            last = snapshots[-1]

    def iter_window(self, start: datetime, end: datetime, chunk_size: int = 5000) -> Iterator[WindowChunk]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = (
            self.collection.where(filter=FieldFilter("created_at", ">=", start))
            .where(filter=FieldFilter("created_at", "<", end))
            .order_by("created_at")
        )
        return self._iter_query(query, chunk_size)

    def iter_labelled(self, chunk_size: int = 5000) -> Iterator[WindowChunk]:
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self.collection.where(filter=FieldFilter("outcome_label", "!=", None)).order_by("outcome_label")
        return self._iter_query(query.order_by("__name__"), chunk_size)

    def count(self) -> int:
        result = self._call(lambda: self.collection.count().get(timeout=self.timeout))
        return int(result[0][0].value)
