"""Metadata store on Firestore: one collection per metadata collection."""

from __future__ import annotations

import functools
import json
from datetime import datetime, timedelta

from shared.stores.firestore_errors import unavailable_on_failure
from shared.stores.metadata.port import LEASES


class FirestoreMetadataStore:
    def __init__(self, project: str, database: str = "(default)", client=None, timeout: float = 10.0):
        self.project = project
        self.database = database
        if client is not None:
            self.client = client
        self.timeout = timeout

    @functools.cached_property
    def client(self):
        from google.cloud import firestore

        return firestore.Client(project=self.project, database=self.database)

    def _errors(self):
        return unavailable_on_failure("metadata store")

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
