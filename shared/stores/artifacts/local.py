"""Artifact store on a local folder; compare-and-swap under a file lock."""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.errors import NotFound, PreconditionFailed


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

    def location(self, path: str) -> str:
        return str(self._path(path))

    def exists(self, path: str) -> bool:
        return self._path(path).is_file()

    def delete(self, path: str) -> None:
        full = self._path(path)
        with self._locked(full):
            full.unlink(missing_ok=True)
            self._generation_path(full).unlink(missing_ok=True)

    def list_paths(self, prefix: str) -> Iterator[str]:
        # A string prefix, as on Cloud Storage: "r/a" lists r/a/1 and r/ab/2.
        if not prefix:
            search_root = self.root.resolve()
        else:
            search_root = self._path(prefix) if prefix.endswith("/") else self._path(prefix).parent
        if not search_root.exists():
            return
        for full in sorted(search_root.rglob("*")):
            relative = full.relative_to(self.root.resolve()).as_posix()
            if full.is_file() and not full.name.startswith(".") and relative.startswith(prefix):
                yield relative
