"""`ingest_clinical`: the health service's OLTP records (PostgreSQL) into the lake.

One run ingests one day: the records *recorded* that day (UTC), by default
yesterday's, the last complete day. Re-running any day, in any order, yields
exactly that day's records once, and picks up records that arrived late.
1. extracts the day's records with a server-side cursor, `chunk_rows` at a
   time (memory is bounded by the chunk, not the table); duplicates are
   ranked in SQL over the whole table (same patient, time and vitals), so
   they are found across chunks and days too;
2. cleans each chunk with Polars (`cleaning`), de-identifies it
   (`deidentification`) and stages it as one Parquet part of the run, the
   refused rows as a quarantine part with their reason;
3. commits: one write of the partition's `_commit.json` names the parts, the
   digest of their content and the day's watermark (the highest source id
   read) together (see `lake`). A crash before it leaves the previous state;
4. records a run summary (read, written, quarantined by reason).

The column mapping is configuration (INGEST_TABLE, INGEST_COLUMN_MAP): the
query names only the mapped columns, so identifiers are never even read.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from shared.errors import IngestionConfigError
from shared.ingestion import lake
from shared.ingestion.cleaning import clean_chunk
from shared.ingestion.deidentification import OUTPUT_COLUMNS, QUARANTINE_COLUMNS, deidentify
from shared.stores.artifacts.port import ArtifactStore
from shared.stores.metadata.port import MetadataStore
from shared.structured_logging import get_logger

log = get_logger("clinical_ingestion")

RUNS_COLLECTION = "ingestion_runs"
CANONICAL_COLUMNS = ("id", "patient_id", "recorded_at", "temperature", "temperature_unit", "heart_rate",
                     "blood_pressure", "diagnosis")


@dataclass(frozen=True)
class SourceMapping:
    table: str = "clinical_records"
    columns: tuple[tuple[str, str | None], ...] = tuple((name, name) for name in CANONICAL_COLUMNS)

    @classmethod
    def from_settings(cls, table: str, column_map_json: str) -> SourceMapping:
        columns = dict(cls.columns)
        if column_map_json:
            try:
                overrides = json.loads(column_map_json)
            except ValueError:
                overrides = None
            if not isinstance(overrides, dict):
                raise IngestionConfigError("INGEST_COLUMN_MAP must be a JSON object", field="INGEST_COLUMN_MAP")
            unknown = set(overrides) - set(CANONICAL_COLUMNS)
            if unknown:
                raise IngestionConfigError(f"INGEST_COLUMN_MAP has unknown keys: {sorted(unknown)}",
                                           field="INGEST_COLUMN_MAP")
            columns.update(overrides)
        for required in ("id", "patient_id", "recorded_at", "temperature", "heart_rate", "blood_pressure",
                         "diagnosis"):
            if not columns.get(required):
                raise IngestionConfigError(f"INGEST_COLUMN_MAP must map {required!r}", field="INGEST_COLUMN_MAP")
        return cls(table=table, columns=tuple(columns.items()))

    def query(self):
        """The extraction SQL, with every identifier quoted by psycopg."""
        from psycopg import sql

        mapped = dict(self.columns)

        def column(name):
            return sql.Identifier(mapped[name])

        unit = (sql.SQL("{}::text").format(column("temperature_unit")) if mapped.get("temperature_unit")
                else sql.Literal("C"))
        key = sql.SQL(", ").join(column(name) for name in
                                 ("patient_id", "recorded_at", "temperature", "heart_rate", "blood_pressure"))
        return sql.SQL(
            "SELECT source_id, patient_id, recorded_at, temperature, temperature_unit, heart_rate, blood_pressure,"
            " diagnosis, duplicate_rank FROM ("
            " SELECT {id} AS source_id, {patient}::text AS patient_id, {recorded} AS recorded_at,"
            " {temperature}::text AS temperature, {unit} AS temperature_unit, {heart}::text AS heart_rate,"
            " {pressure}::text AS blood_pressure, {diagnosis}::text AS diagnosis,"
            " row_number() OVER (PARTITION BY {key} ORDER BY {id}) AS duplicate_rank"
            " FROM {table}) AS source WHERE recorded_at >= %(day_start)s AND recorded_at < %(day_end)s"
            " ORDER BY source_id"
        ).format(id=column("id"), patient=column("patient_id"), recorded=column("recorded_at"),
                 temperature=column("temperature"), unit=unit, heart=column("heart_rate"),
                 pressure=column("blood_pressure"), diagnosis=column("diagnosis"), key=key,
                 table=sql.Identifier(*self.table.split(".")))


RESULT_COLUMNS = ["source_id", "patient_id", "recorded_at", "temperature", "temperature_unit", "heart_rate",
                  "blood_pressure", "diagnosis", "duplicate_rank"]


def _frame(rows: list[tuple]):
    import polars as pl

    schema = {"source_id": pl.Int64, "patient_id": pl.Utf8, "recorded_at": pl.Datetime(time_zone="UTC"),
              "temperature": pl.Utf8, "temperature_unit": pl.Utf8, "heart_rate": pl.Utf8,
              "blood_pressure": pl.Utf8, "diagnosis": pl.Utf8, "duplicate_rank": pl.Int64}
    return pl.DataFrame(rows, schema=schema, orient="row")


def ingest_clinical(
    *,
    database_url: str,
    mapping: SourceMapping,
    key: bytes,
    artifacts: ArtifactStore,
    metadata: MetadataStore,
    ingestion_date: date | None = None,
    chunk_rows: int = 50_000,
    now: datetime | None = None,
) -> dict:
    """Run one ingestion; returns the run summary."""
    import psycopg

    if not database_url:
        raise IngestionConfigError("CLINICAL_DATABASE_URL is not set", field="CLINICAL_DATABASE_URL")
    if not key:
        raise IngestionConfigError("PSEUDONYM_KEY is not set", field="PSEUDONYM_KEY")
    now = now or datetime.now(timezone.utc)
    day = ingestion_date or (now - timedelta(days=1)).date()
    day_start = datetime.combine(day, time.min, tzinfo=timezone.utc)
    previous = lake.read_commit(artifacts, day)
    run_id = uuid.uuid4().hex
    read = written = 0
    reasons: Counter = Counter()
    watermark = None
    parts, quarantine_parts, contents = [], [], []
    with psycopg.connect(database_url, connect_timeout=10) as connection:
        with connection.cursor(name=f"ingest-{run_id[:8]}") as cursor:  # server-side cursor
            cursor.itersize = chunk_rows
            cursor.execute(mapping.query(), {"day_start": day_start, "day_end": day_start + timedelta(days=1)})
            while rows := cursor.fetchmany(chunk_rows):
                frame = _frame(rows)
                read += frame.height
                watermark = max(watermark or 0, int(frame.get_column("source_id").max()))
                clean, quarantine = clean_chunk(frame)
                index = len(parts) + len(quarantine_parts)
                if clean.height:
                    path = lake.staged_part_path(lake.CLINICAL, day, run_id, index)
                    contents.append(lake.write_frame(artifacts, path, deidentify(clean, key, OUTPUT_COLUMNS)))
                    parts.append(path)
                if quarantine.height:
                    path = lake.staged_part_path(lake.QUARANTINE, day, run_id, index)
                    lake.write_frame(artifacts, path, deidentify(quarantine, key, QUARANTINE_COLUMNS))
                    quarantine_parts.append(path)
                    reasons.update(quarantine.get_column("reason").to_list())
                written += clean.height
    commit = {"run_id": run_id, "date": day.isoformat(), "committed_at": now.isoformat(), "parts": parts,
              "quarantine_parts": quarantine_parts, "rows": written, "rows_quarantined": sum(reasons.values()),
              "content_sha256": lake.content_digest(contents), "watermark": watermark}
    removed = lake.commit_partition(artifacts, day, commit)
    summary = {
        "run_id": run_id, "created_at": now.isoformat(), "date": day.isoformat(), "rerun": previous is not None,
        "watermark": watermark, "rows_read": read, "rows_written": written,
        "rows_quarantined": sum(reasons.values()), "quarantined_by_reason": dict(sorted(reasons.items())),
        "parts": len(parts), "content_sha256": commit["content_sha256"],
        "replaced_rows": previous["rows"] if previous else 0, "objects_removed": removed,
    }
    metadata.put(RUNS_COLLECTION, summary["run_id"], summary)
    log.info("clinical ingestion finished", extra={"fields": {k: summary[k] for k in (
        "date", "rows_read", "rows_written", "rows_quarantined", "watermark")}})
    return summary


def ingest_clinical_configured(settings, *, artifacts: ArtifactStore, metadata: MetadataStore,
                               ingestion_date: date | None = None) -> dict:
    """`ingest_clinical` with everything taken from configuration (function and CLI)."""
    return ingest_clinical(
        database_url=settings.clinical_database_url,
        mapping=SourceMapping.from_settings(settings.ingest_table, settings.ingest_column_map),
        key=settings.pseudonym_key.encode(), artifacts=artifacts, metadata=metadata,
        ingestion_date=ingestion_date, chunk_rows=settings.ingest_chunk_rows,
    )
