"""Metadata store: `port.MetadataStore` and its collections; adapters `sqlite` and `firestore`."""

from shared.stores.metadata.port import MetadataStore

__all__ = ["MetadataStore"]
