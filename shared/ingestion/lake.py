"""The Parquet data lake, kept in the artifact store (Cloud Storage or a folder).

    lake/clinical/date=YYYY-MM-DD/part-NNNNN.parquet              clean, de-identified rows
    lake/quarantine/clinical/date=YYYY-MM-DD/part-NNNNN.parquet   refused rows and why
    lake/reference/<name>/data.parquet                           public reference data

Partitions are by ingestion date; re-running a day replaces its partition.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import date

import numpy as np

from shared.schema import FEATURES
from shared.stores.artifacts.port import ArtifactStore

CLINICAL = "lake/clinical"
QUARANTINE = "lake/quarantine/clinical"
REFERENCE = "lake/reference"
_DATE = re.compile(r"date=(\d{4}-\d{2}-\d{2})/")


def partition_prefix(root: str, day: date) -> str:
    return f"{root}/date={day.isoformat()}/"


def part_path(root: str, day: date, index: int) -> str:
    return f"{partition_prefix(root, day)}part-{index:05d}.parquet"


def write_frame(store: ArtifactStore, path: str, frame) -> None:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd")
    store.write_bytes(path, buffer.getvalue(), "application/vnd.apache.parquet")


def read_frame(store: ArtifactStore, path: str):
    import polars as pl

    return pl.read_parquet(io.BytesIO(store.read_bytes(path)))


def clear_partition(store: ArtifactStore, root: str, day: date) -> int:
    paths = list(store.list_paths(partition_prefix(root, day)))
    for path in paths:
        store.delete(path)
    return len(paths)


def partition_dates(store: ArtifactStore, root: str = CLINICAL) -> list[date]:
    found = {_DATE.search(path).group(1) for path in store.list_paths(f"{root}/") if _DATE.search(path)}
    return sorted(date.fromisoformat(text) for text in found)


def partition_parts(store: ArtifactStore, day: date, root: str = CLINICAL) -> list[str]:
    return sorted(path for path in store.list_paths(partition_prefix(root, day)) if path.endswith(".parquet"))


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
