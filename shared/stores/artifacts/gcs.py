"""Artifact store on a Cloud Storage bucket; compare-and-swap with
generation-match preconditions (works against fake-gcs-server too)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

from shared.errors import NotFound, PreconditionFailed, StoreUnavailable


class GcsArtifactStore:
    """A Cloud Storage bucket. The client is built lazily, once, unless given."""

    def __init__(self, bucket_name: str, project: str | None = None, client=None, timeout: float = 30.0):
        self.bucket_name = bucket_name
        self.project = project or None
        if client is not None:
            self.client = client
        self.timeout = timeout

    @property
    def retry(self):
        """The library's retry, bounded by our timeout: a dead store must turn
        into a clear 503 in seconds, not after the default two minutes."""
        from google.cloud.storage.retry import DEFAULT_RETRY

        return DEFAULT_RETRY.with_timeout(self.timeout)

    @functools.cached_property
    def client(self):
        from google.cloud import storage

        return storage.Client(project=self.project)

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

    def location(self, path: str) -> str:
        return f"gs://{self.bucket_name}/{path}"

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
