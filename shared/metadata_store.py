"""Metadata store port: small JSON documents the loop keeps about itself.

Collections: `experiments` (training runs), `drift_reports`, `champion_history`
(the audit trail of every champion switch), `processed_events` (idempotency
keys for at-least-once delivery) and `leases` (so two trainings never run
over each other).

Adapters: `SqliteMetadataStore` (local) and `FirestoreMetadataStore`.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Protocol

from shared.errors import StoreUnavailable
from shared.sqlite_database import SqliteDatabase

EXPERIMENTS = "experiments"
DRIFT_REPORTS = "drift_reports"
CHAMPION_HISTORY = "champion_history"
PROCESSED_EVENTS = "processed_events"
LEASES = "leases"


class MetadataStore(Protocol):
    def put(self, collection: str, document_id: str, document: dict) -> None: ...

    def get(self, collection: str, document_id: str) -> dict | None: ...

    def create(self, collection: str, document_id: str, document: dict) -> bool:
        """Write only if absent; True when this call created it."""

    def list(self, collection: str, limit: int = 50) -> list[dict]:
        """Newest first, by the document's `created_at`."""

    def acquire_lease(self, name: str, holder: str, ttl_seconds: float, now: datetime) -> bool: ...

    def release_lease(self, name: str, holder: str) -> None: ...


def _created_micros(document: dict) -> int:
    created = document.get("created_at")
    if isinstance(created, str):
        created = datetime.fromisoformat(created.replace("Z", "+00:00"))
    if not isinstance(created, datetime):
        created = datetime.now(timezone.utc)
    return int(created.timestamp() * 1_000_000)


class SqliteMetadataStore:
    def __init__(self, database: SqliteDatabase):
        self.database = database

    @contextmanager
    def _transaction(self):
        connection = self.database.connection()
        try:
            with connection:
                connection.execute("BEGIN IMMEDIATE")
                yield connection
        except sqlite3.OperationalError as error:
            raise StoreUnavailable(f"metadata store unavailable: {error}") from None

    def put(self, collection: str, document_id: str, document: dict) -> None:
        with self._transaction() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO documents (collection, id, created_us, body) VALUES (?, ?, ?, ?)",
                (collection, document_id, _created_micros(document), json.dumps(document, default=str)),
            )

    def get(self, collection: str, document_id: str) -> dict | None:
        row = self.database.connection().execute(
            "SELECT body FROM documents WHERE collection = ? AND id = ?", (collection, document_id)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def create(self, collection: str, document_id: str, document: dict) -> bool:
        with self._transaction() as connection:
            cursor = connection.execute(
                "INSERT OR IGNORE INTO documents (collection, id, created_us, body) VALUES (?, ?, ?, ?)",
                (collection, document_id, _created_micros(document), json.dumps(document, default=str)),
            )
            return cursor.rowcount == 1

    def list(self, collection: str, limit: int = 50) -> list[dict]:
        rows = self.database.connection().execute(
            "SELECT body FROM documents WHERE collection = ? ORDER BY created_us DESC, id DESC LIMIT ?",
            (collection, limit),
        ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def acquire_lease(self, name: str, holder: str, ttl_seconds: float, now: datetime) -> bool:
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT body FROM documents WHERE collection = ? AND id = ?", (LEASES, name)
            ).fetchone()
            if row:
                lease = json.loads(row[0])
                expires = datetime.fromisoformat(lease["expires_at"])
                if lease["holder"] != holder and expires > now:
                    return False
            lease = {"holder": holder, "expires_at": (now + timedelta(seconds=ttl_seconds)).isoformat(),
                     "created_at": now.isoformat()}
            connection.execute(
                "INSERT OR REPLACE INTO documents (collection, id, created_us, body) VALUES (?, ?, ?, ?)",
                (LEASES, name, _created_micros(lease), json.dumps(lease)),
            )
            return True

    def release_lease(self, name: str, holder: str) -> None:
        with self._transaction() as connection:
            connection.execute(
                "DELETE FROM documents WHERE collection = ? AND id = ? AND json_extract(body, '$.holder') = ?",
                (LEASES, name, holder),
            )


class FirestoreMetadataStore:
    def __init__(self, project: str, database: str = "(default)", client=None, timeout: float = 10.0):
        self.project = project
        self.database = database
        self._client = client
        self.timeout = timeout

    @property
    def client(self):
        if self._client is None:
            from google.cloud import firestore

            self._client = firestore.Client(project=self.project, database=self.database)
        return self._client

    @contextmanager
    def _errors(self):
        from google.api_core import exceptions

        try:
            yield
        except (exceptions.ServiceUnavailable, exceptions.DeadlineExceeded, exceptions.RetryError) as error:
            raise StoreUnavailable(f"metadata store unavailable: {type(error).__name__}") from None

    def put(self, collection: str, document_id: str, document: dict) -> None:
        with self._errors():
            reference = self.client.collection(collection).document(document_id)
            reference.set(_firestore_safe(document), timeout=self.timeout)

    def get(self, collection: str, document_id: str) -> dict | None:
        with self._errors():
            snapshot = self.client.collection(collection).document(document_id).get(timeout=self.timeout)
        return _from_firestore(snapshot.to_dict()) if snapshot.exists else None

    def create(self, collection: str, document_id: str, document: dict) -> bool:
        from google.api_core.exceptions import AlreadyExists, Conflict

        try:
            with self._errors():
                self.client.collection(collection).document(document_id).create(
                    _firestore_safe(document), timeout=self.timeout
                )
            return True
        except (AlreadyExists, Conflict):
            return False

    def list(self, collection: str, limit: int = 50) -> list[dict]:
        from google.cloud import firestore

        query = self.client.collection(collection).order_by("created_at", direction=firestore.Query.DESCENDING)
        with self._errors():
            return [_from_firestore(s.to_dict()) for s in query.limit(limit).stream(timeout=self.timeout)]

    def acquire_lease(self, name: str, holder: str, ttl_seconds: float, now: datetime) -> bool:
        from google.cloud import firestore

        reference = self.client.collection(LEASES).document(name)

        @firestore.transactional
        def acquire(transaction) -> bool:
            snapshot = reference.get(transaction=transaction)
            if snapshot.exists:
                lease = snapshot.to_dict()
                if lease["holder"] != holder and lease["expires_at"] > now:
                    return False
            transaction.set(reference, {"holder": holder, "expires_at": now + timedelta(seconds=ttl_seconds),
                                        "created_at": now})
            return True

        with self._errors():
            return acquire(self.client.transaction())

    def release_lease(self, name: str, holder: str) -> None:
        from google.cloud import firestore

        reference = self.client.collection(LEASES).document(name)

        @firestore.transactional
        def release(transaction) -> None:
            snapshot = reference.get(transaction=transaction)
            if snapshot.exists and snapshot.to_dict().get("holder") == holder:
                transaction.delete(reference)

        with self._errors():
            release(self.client.transaction())


def _firestore_safe(document: dict) -> dict:
    """Round-trip through JSON: Firestore rejects nested arrays (confusion matrices)."""
    encoded = json.loads(json.dumps(document, default=str))
    return {key: json.dumps(value) if _has_nested_list(value) else value for key, value in encoded.items()} | {
        "_json_fields": [key for key, value in encoded.items() if _has_nested_list(value)]
    }


def _from_firestore(document: dict) -> dict:
    json_fields = document.pop("_json_fields", [])
    for key in json_fields:
        document[key] = json.loads(document[key])
    return document


def _has_nested_list(value) -> bool:
    if isinstance(value, list):
        return any(isinstance(item, list) or _has_nested_list(item) for item in value)
    if isinstance(value, dict):
        return any(_has_nested_list(item) for item in value.values())
    return False
