"""Artifact store port: model versions, pointers, reports and plots.

Two adapters with one contract:
- `LocalArtifactStore`: a folder; compare-and-swap under a file lock.
- `GcsArtifactStore`: a Cloud Storage bucket; compare-and-swap with
  generation-match preconditions (works against fake-gcs-server too).

A *generation* is an opaque token naming one version of an object; `None`
means "the object must not exist yet".
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from shared.errors import NotFound, PreconditionFailed, StoreUnavailable


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


class LocalArtifactStore:
    """A folder on disk; generations are counters kept beside each object."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def _path(self, path: str) -> Path:
        full = (self.root / path).resolve()
        if not full.is_relative_to(self.root.resolve()):
            raise ValueError(f"path escapes the store: {path}")
        return full

    def _generation_path(self, full: Path) -> Path:
        return full.with_name(f".{full.name}.generation")

    @contextmanager
    def _locked(self, full: Path):
        full.parent.mkdir(parents=True, exist_ok=True)
        with open(full.with_name(f".{full.name}.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read_bytes(self, path: str) -> bytes:
        try:
            return self._path(path).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"artifact not found: {path}") from None

    def read_with_generation(self, path: str) -> tuple[bytes, object]:
        full = self._path(path)
        with self._locked(full):
            data = self.read_bytes(path)
            return data, self._current_generation(full)

    def _current_generation(self, full: Path) -> int:
        try:
            return int(self._generation_path(full).read_text())
        except FileNotFoundError:
            return 1 if full.exists() else 0

    def _replace(self, full: Path, data: bytes) -> None:
        full.parent.mkdir(parents=True, exist_ok=True)
        generation = self._current_generation(full) + 1
        with tempfile.NamedTemporaryFile(dir=full.parent, delete=False, prefix=".tmp-") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, full)
        self._generation_path(full).write_text(str(generation))

    def write_bytes(self, path: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        full = self._path(path)
        with self._locked(full):
            self._replace(full, data)

    def write_if_generation_matches(
        self, path: str, data: bytes, generation: object | None, content_type: str = "application/json"
    ) -> None:
        full = self._path(path)
        with self._locked(full):
            current = self._current_generation(full) if full.exists() else None
            if current != generation:
                raise PreconditionFailed(f"{path} changed (generation {current}, expected {generation})")
            self._replace(full, data)

    def exists(self, path: str) -> bool:
        return self._path(path).is_file()

    def delete(self, path: str) -> None:
        full = self._path(path)
        with self._locked(full):
            full.unlink(missing_ok=True)
            self._generation_path(full).unlink(missing_ok=True)

    def list_paths(self, prefix: str) -> Iterator[str]:
        base = self._path(prefix) if prefix else self.root
        search_root = base if base.is_dir() else base.parent
        if not search_root.exists():
            return
        for full in sorted(search_root.rglob("*")):
            relative = full.relative_to(self.root.resolve()).as_posix()
            if full.is_file() and not full.name.startswith(".") and relative.startswith(prefix):
                yield relative


class GcsArtifactStore:
    """A Cloud Storage bucket. The client is built lazily, once, unless given."""

    def __init__(self, bucket_name: str, project: str | None = None, client=None, timeout: float = 30.0):
        self.bucket_name = bucket_name
        self.project = project or None
        self._client = client
        self.timeout = timeout

    @property
    def retry(self):
        """The library's retry, bounded by our timeout: a dead store must turn
        into a clear 503 in seconds, not after the default two minutes."""
        from google.cloud.storage.retry import DEFAULT_RETRY

        return DEFAULT_RETRY.with_timeout(self.timeout)

    @property
    def client(self):
        if self._client is None:
            from google.cloud import storage

            self._client = storage.Client(project=self.project)
        return self._client

    @property
    def bucket(self):
        return self.client.bucket(self.bucket_name)

    @contextmanager
    def _translate_errors(self, path: str):
        from google.api_core import exceptions

        try:
            yield
        except exceptions.NotFound:
            raise NotFound(f"artifact not found: {path}") from None
        except exceptions.PreconditionFailed:
            raise PreconditionFailed(f"{path} changed since it was read") from None
        except (exceptions.ServiceUnavailable, exceptions.RetryError, exceptions.DeadlineExceeded) as error:
            raise StoreUnavailable(f"Cloud Storage unavailable: {error}") from None
        except OSError as error:  # connection refused / reset
            raise StoreUnavailable(f"Cloud Storage unreachable: {error}") from None

    def read_bytes(self, path: str) -> bytes:
        with self._translate_errors(path):
            return self.bucket.blob(path).download_as_bytes(timeout=self.timeout, retry=self.retry)

    def read_with_generation(self, path: str) -> tuple[bytes, object]:
        with self._translate_errors(path):
            blob = self.bucket.get_blob(path, timeout=self.timeout, retry=self.retry)
            if blob is None:
                raise NotFound(f"artifact not found: {path}")
            data = blob.download_as_bytes(if_generation_match=blob.generation, timeout=self.timeout,
                                          retry=self.retry)
            return data, blob.generation

    def write_bytes(self, path: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        with self._translate_errors(path):
            self.bucket.blob(path).upload_from_string(data, content_type=content_type, timeout=self.timeout,
                                                      retry=self.retry)

    def write_if_generation_matches(
        self, path: str, data: bytes, generation: object | None, content_type: str = "application/json"
    ) -> None:
        with self._translate_errors(path):
            self.bucket.blob(path).upload_from_string(
                data,
                content_type=content_type,
                if_generation_match=0 if generation is None else generation,
                timeout=self.timeout,
                retry=self.retry,
            )

    def exists(self, path: str) -> bool:
        with self._translate_errors(path):
            return self.bucket.blob(path).exists(timeout=self.timeout, retry=self.retry)

    def delete(self, path: str) -> None:
        from google.api_core.exceptions import NotFound as GoogleNotFound

        try:
            with self._translate_errors(path):
                self.bucket.blob(path).delete(timeout=self.timeout, retry=self.retry)
        except (GoogleNotFound, NotFound):
            pass

    def list_paths(self, prefix: str) -> Iterator[str]:
        with self._translate_errors(prefix):
            names = [blob.name for blob in self.client.list_blobs(
                self.bucket_name, prefix=prefix, timeout=self.timeout, retry=self.retry)]
        yield from sorted(names)
