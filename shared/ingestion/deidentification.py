"""De-identification applied before anything leaves the ingestion function.

- Only an allowlist of columns is ever written: the model's features, the
  label, a pseudonym and the day. Direct identifiers (names, document
  numbers, phone, email, address, free text) are never selected from the
  source in the first place, and would be dropped here if they were.
- The patient id becomes HMAC-SHA256(key, id): the same patient links across
  days and runs, yet cannot be recovered or recomputed without the key
  (a plain hash of a document number could be brute-forced).
- Timestamps are reduced to the day.
"""

from __future__ import annotations

import hashlib
import hmac

import polars as pl

OUTPUT_COLUMNS = ["patient_pseudonym", "recorded_date", "temperature", "heart_rate", "blood_pressure", "label"]
QUARANTINE_COLUMNS = [*OUTPUT_COLUMNS, "reason"]


def pseudonymize(patient_id: str | None, key: bytes) -> str | None:
    if patient_id is None:
        return None
    return hmac.new(key, str(patient_id).encode(), hashlib.sha256).hexdigest()


def deidentify(frame: pl.DataFrame, key: bytes, columns: list[str] = OUTPUT_COLUMNS) -> pl.DataFrame:
    """Pseudonymise `patient_id`, reduce `recorded_at` to a date, keep only `columns`."""
    if not key:
        raise ValueError("a pseudonymisation key is required (PSEUDONYM_KEY)")
    frame = frame.with_columns(
        pl.col("patient_id").cast(pl.Utf8).map_elements(lambda value: pseudonymize(value, key),
                                                         return_dtype=pl.Utf8).alias("patient_pseudonym"),
        pl.col("recorded_at").dt.date().alias("recorded_date"),
    )
    return frame.select([name for name in columns if name in frame.columns])
