"""The Parquet data lake, kept in the artifact store (Cloud Storage or a folder).

    lake/clinical/date=YYYY-MM-DD/_commit.json                           what the partition is
    lake/clinical/date=YYYY-MM-DD/run=<id>/part-NNNNN.parquet            clean, de-identified rows
    lake/quarantine/clinical/date=YYYY-MM-DD/run=<id>/part-NNNNN.parquet refused rows and why
    lake/reference/<name>/data.parquet                                   public reference data

A clinical partition holds the records *recorded* on its date. An ingestion
run stages its parts under its own `run=<id>/` folder, then commits by
writing `_commit.json` -- one object write, atomic in Cloud Storage and in the
local store -- naming the parts, their row counts, a digest of their content
and the day's watermark (the highest source id read). Readers see only the
committed parts, so a run that dies before its commit leaves the previous
state, and one that dies after it the complete new state; the parts of other
runs are deleted after the commit (or by the next run, if that delete died).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterator
from datetime import date

import numpy as np

from shared.schema import FEATURES
from shared.stores.artifacts.port import ArtifactStore

CLINICAL = "lake/clinical"
QUARANTINE = "lake/quarantine/clinical"
REFERENCE = "lake/reference"
COMMIT = "_commit.json"
_DATE = re.compile(r"date=(\d{4}-\d{2}-\d{2})/" + re.escape(COMMIT) + "$")


def partition_prefix(root: str, day: date) -> str:
    return f"{root}/date={day.isoformat()}/"


def staged_part_path(root: str, day: date, run_id: str, index: int) -> str:
    return f"{partition_prefix(root, day)}run={run_id}/part-{index:05d}.parquet"


def commit_path(day: date) -> str:
    return partition_prefix(CLINICAL, day) + COMMIT


def frame_bytes(frame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd")
    return buffer.getvalue()


def write_frame(store: ArtifactStore, path: str, frame) -> bytes:
    data = frame_bytes(frame)
    store.write_bytes(path, data, "application/vnd.apache.parquet")
    return data


def read_frame(store: ArtifactStore, path: str):
    import polars as pl

    return pl.read_parquet(io.BytesIO(store.read_bytes(path)))


def read_commit(store: ArtifactStore, day: date) -> dict | None:
    if not store.exists(commit_path(day)):
        return None
    return json.loads(store.read_bytes(commit_path(day)))


def commit_partition(store: ArtifactStore, day: date, commit: dict) -> int:
    """Make `commit` (run_id, parts, quarantine_parts, ...) the day's partition,
    then delete every other run's objects. Returns how many were deleted."""
    store.write_bytes(commit_path(day), json.dumps(commit, indent=2).encode(), "application/json")
    return remove_uncommitted(store, day, commit)


def remove_uncommitted(store: ArtifactStore, day: date, commit: dict) -> int:
    keep = set(commit["parts"]) | set(commit["quarantine_parts"]) | {commit_path(day)}
    removed = 0
    for root in (CLINICAL, QUARANTINE):
        for path in list(store.list_paths(partition_prefix(root, day))):
            if path not in keep:
                store.delete(path)
                removed += 1
    return removed


def content_digest(parts: list[bytes]) -> str:
    digest = hashlib.sha256()
    for data in parts:
        digest.update(hashlib.sha256(data).digest())
    return digest.hexdigest()


def partition_dates(store: ArtifactStore) -> list[date]:
    """Days with a committed partition (staged, uncommitted runs do not count)."""
    found = {match.group(1) for path in store.list_paths(f"{CLINICAL}/") if (match := _DATE.search(path))}
    return sorted(date.fromisoformat(text) for text in found)


def partition_parts(store: ArtifactStore, day: date, root: str = CLINICAL) -> list[str]:
    commit = read_commit(store, day)
    if commit is None:
        return []
    return list(commit["parts"] if root == CLINICAL else commit["quarantine_parts"])


def iter_partition_frames(store: ArtifactStore, day: date, root: str = CLINICAL) -> Iterator:
    for path in partition_parts(store, day, root):
        yield read_frame(store, path)


def read_clinical_training_data(store: ArtifactStore, days: list[date]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Features and labels of the given clinical partitions, and the paths read."""
    features, labels, paths = [], [], []
    for day in days:
        for path in partition_parts(store, day):
            frame = read_frame(store, path)
            features.append(frame.select(list(FEATURES)).to_numpy().astype(float))
            labels.extend(frame.get_column("label").to_list())
            paths.append(path)
    if not features:
        return np.empty((0, len(FEATURES))), np.empty(0, dtype=object), paths
    return np.vstack(features), np.asarray(labels, dtype=object), paths
