"""Artifact store port: model versions, pointers, reports, plots and the lake.

A *generation* is an opaque token naming one version of an object; `None`
means "the object must not exist yet".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class ArtifactStore(Protocol):
    def read_bytes(self, path: str) -> bytes: ...

    def read_with_generation(self, path: str) -> tuple[bytes, object]: ...

    def write_bytes(self, path: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...

    def write_if_generation_matches(
        self, path: str, data: bytes, generation: object | None, content_type: str = "application/json"
    ) -> None: ...

    def exists(self, path: str) -> bool: ...

    def list_paths(self, prefix: str) -> Iterator[str]: ...

    def delete(self, path: str) -> None: ...

    def location(self, path: str) -> str:
        """Where a person opens `path`: a file path locally, a gs:// URL on Cloud Storage."""
        ...
