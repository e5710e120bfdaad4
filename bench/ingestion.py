"""Issue 6's ingestion benchmark: extraction + cleaning + de-identification +
Parquet write of 1,000,000 rows from a local PostgreSQL 15, in a fresh
process per run (peak RSS is that run's), at two chunk sizes and two table
sizes -- memory should follow the chunk, not the table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone

from bench.serving import ROOT

CHILD = """
import json, sys, time
from bench.memory import peak_rss_mb
from shared.stores.artifacts.local import LocalArtifactStore
from shared.ingestion.clinical import SourceMapping, ingest_clinical
from shared.stores.metadata.sqlite import SqliteMetadataStore
from shared.stores.sqlite_database import SqliteDatabase
url, folder, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3])
started = time.perf_counter()
summary = ingest_clinical(database_url=url, mapping=SourceMapping(), key=b"bench-key",
                          artifacts=LocalArtifactStore(folder + "/artifacts"),
                          metadata=SqliteMetadataStore(SqliteDatabase(folder + "/m.db")), chunk_rows=chunk)
print(json.dumps({"seconds": round(time.perf_counter() - started, 1), "rows_read": summary["rows_read"],
                  "rows_written": summary["rows_written"], "rows_quarantined": summary["rows_quarantined"],
                  "chunk_rows": chunk,
                  "peak_rss_mb": peak_rss_mb()}))
"""


def fill(url: str, rows: int) -> float:
    import time

    import numpy as np
    import psycopg

    from shared.training.synthetic_data import generate_reference_data

    X, y = generate_reference_data(min(rows, 200_000), seed=3)
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    started = time.perf_counter()
    with psycopg.connect(url) as connection:
        connection.execute(
            "CREATE TABLE clinical_records (id BIGSERIAL PRIMARY KEY, patient_id TEXT, patient_name TEXT,"
            " recorded_at TIMESTAMPTZ, temperature TEXT, temperature_unit TEXT, heart_rate TEXT,"
            " blood_pressure TEXT, diagnosis TEXT)")
        with connection.cursor().copy(
                "COPY clinical_records (patient_id, patient_name, recorded_at, temperature, temperature_unit,"
                " heart_rate, blood_pressure, diagnosis) FROM STDIN") as copy:
            for i in range(rows):
                row = X[i % len(X)]
                copy.write_row((f"P{i % 50_000}", f"Nombre {i}", base + timedelta(seconds=i), str(row[0]), "C",
                                str(row[1]), str(row[2]), y[i % len(y)]))
        connection.execute("ANALYZE clinical_records")
    del np
    return time.perf_counter() - started


def run(url: str, chunk: int) -> dict:
    folder = tempfile.mkdtemp(prefix="bench-ingest-")
    output = subprocess.run([sys.executable, "-c", CHILD, url, folder, str(chunk)], cwd=ROOT, capture_output=True,
                            text=True, check=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    return json.loads(output.stdout.strip().splitlines()[-1])


def main(quick: bool = False) -> dict:
    from tests.postgres import start_postgres

    results = {}
    for rows in ([20_000] if quick else [200_000, 1_000_000]):
        server = start_postgres()
        try:
            fill_seconds = fill(server.url, rows)
            results[str(rows)] = {"fill_seconds": round(fill_seconds, 1),
                                  "runs": [run(server.url, chunk) for chunk in (10_000, 50_000)]}
        finally:
            server.stop()
        print(rows, json.dumps(results[str(rows)]), file=sys.stderr)
    return results


if __name__ == "__main__":
    print(json.dumps(main(quick="--quick" in sys.argv), indent=2))
