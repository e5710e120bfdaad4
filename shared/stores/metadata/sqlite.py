"""Metadata store on SQLite: the local default."""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

from shared.errors import StoreUnavailable
from shared.stores.metadata.port import LEASES
from shared.stores.sqlite_database import SqliteDatabase


def created_micros(document: dict) -> int:
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
                (collection, document_id, created_micros(document), json.dumps(document, default=str)),
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
                (collection, document_id, created_micros(document), json.dumps(document, default=str)),
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
                (LEASES, name, created_micros(lease), json.dumps(lease)),
            )
            return True

    def release_lease(self, name: str, holder: str) -> None:
        with self._transaction() as connection:
            connection.execute(
                "DELETE FROM documents WHERE collection = ? AND id = ? AND json_extract(body, '$.holder') = ?",
                (LEASES, name, holder),
            )
