"""The one place that builds the adapters from configuration.

Each builder is lazy and cached per Settings: nothing is built at import time,
and a cloud client is built once per instance and reused across invocations.
Building twice under a race is harmless (the loser's object is dropped).
Tests pass their own adapters to the service functions instead of patching.
"""

from __future__ import annotations

import threading

from shared.config import Settings, load_settings

_cache: dict[tuple[str, Settings], object] = {}
_lock = threading.Lock()


def settings() -> Settings:
    return load_settings()


def _cached(name: str, current: Settings, build):
    key = (name, current)
    value = _cache.get(key)
    if value is None:
        value = build()
        with _lock:
            value = _cache.setdefault(key, value)
    return value


def override(name: str, value, current: Settings | None = None) -> None:
    """Use `value` as the `name` adapter (e.g. "event_bus") for these settings: a test seam."""
    with _lock:
        _cache[(name, current or settings())] = value


def reset() -> None:
    """Forget every built adapter (tests change the environment between cases)."""
    with _lock:
        _cache.clear()


def _firestore_client(current: Settings):
    def build():
        from google.cloud import firestore

        return firestore.Client(project=current.google_cloud_project, database=current.firestore_database)

    return _cached("firestore", current, build)


def _sqlite_database(current: Settings):
    from shared.stores.sqlite_database import SqliteDatabase

    return _cached("sqlite", current, lambda: SqliteDatabase(
        current.local_path / "mlops.sqlite3", timeout_seconds=current.store_timeout_seconds))


def artifact_store(current: Settings | None = None):
    current = current or settings()

    def build():
        if current.artifact_store == "gcs":
            from shared.stores.artifacts.gcs import GcsArtifactStore

            return GcsArtifactStore(current.artifact_bucket, project=current.google_cloud_project or None,
                                    timeout=current.store_timeout_seconds)
        from shared.stores.artifacts.local import LocalArtifactStore

        return LocalArtifactStore(current.local_path / "artifacts")

    return _cached("artifact_store", current, build)


def prediction_store(current: Settings | None = None):
    current = current or settings()

    def build():
        if current.prediction_store == "firestore":
            from shared.stores.predictions.firestore import FirestorePredictionStore

            return FirestorePredictionStore(
                current.google_cloud_project, current.firestore_database, client=_firestore_client(current),
                timeout=current.store_timeout_seconds, retention_days=current.prediction_retention_days)
        from shared.stores.predictions.sqlite import SqlitePredictionStore

        return SqlitePredictionStore(_sqlite_database(current))

    return _cached("prediction_store", current, build)


def metadata_store(current: Settings | None = None):
    current = current or settings()

    def build():
        if current.prediction_store == "firestore":
            from shared.stores.metadata.firestore import FirestoreMetadataStore

            return FirestoreMetadataStore(current.google_cloud_project, current.firestore_database,
                                          client=_firestore_client(current))
        from shared.stores.metadata.sqlite import SqliteMetadataStore

        return SqliteMetadataStore(_sqlite_database(current))

    return _cached("metadata_store", current, build)


def event_bus(current: Settings | None = None):
    current = current or settings()

    def build():
        if current.event_bus == "pubsub":
            from shared.event_bus.pubsub import PubSubEventBus

            return PubSubEventBus(current.google_cloud_project)
        from shared.event_bus.local import LocalEventBus

        return LocalEventBus(subscribers=_local_subscribers(current))

    return _cached("event_bus", current, build)


def _local_subscribers(current: Settings) -> dict:
    """Locally, the bus hands drift-check and retrain requests straight to the
    same handlers the Pub/Sub-triggered functions call."""

    def drift_check(message):
        from shared.monitoring.drift_check import handle_drift_check_message

        return handle_drift_check_message(message, **service_dependencies(current))

    def retrain(message):
        from shared.training.retrain_handler import handle_retrain_message

        return handle_retrain_message(message, **service_dependencies(current))

    return {current.drift_check_topic: drift_check, current.retrain_topic: retrain}


def service_dependencies(current: Settings | None = None) -> dict:
    """The keyword arguments every event handler takes."""
    current = current or settings()
    return {"predictions": prediction_store(current), "artifacts": artifact_store(current),
            "metadata": metadata_store(current), "bus": event_bus(current), "settings": current}


def model_loader(current: Settings | None = None):
    current = current or settings()

    def build():
        from shared.models.loading import ModelLoader

        return ModelLoader(artifact_store(current), refresh_seconds=current.model_refresh_seconds)

    return _cached("model_loader", current, build)
