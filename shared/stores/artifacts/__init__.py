"""Artifact store: `port.ArtifactStore`; adapters `local` (a folder) and `gcs` (Cloud Storage)."""

from shared.stores.artifacts.port import ArtifactStore

__all__ = ["ArtifactStore"]
