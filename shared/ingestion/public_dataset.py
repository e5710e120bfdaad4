"""`ingest_reference`: a public reference data set (WHO Global Health
Observatory OData JSON) into the lake.

The response must be `{"value": [...]}` whose rows carry `IndicatorCode`,
`SpatialDim`, `TimeDim` and a numeric-or-null `NumericValue`. Network
failures are retried with exponential backoff; anything that fails --
network or validation -- leaves the previous copy in place, because the new
one is written only after it validated.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

from shared.errors import ReferenceDataInvalid, ServiceUnavailable
from shared.ingestion import lake
from shared.stores.artifacts.port import ArtifactStore
from shared.stores.metadata.port import MetadataStore
from shared.structured_logging import get_logger

log = get_logger("reference_ingestion")
RUNS_COLLECTION = "ingestion_runs"
REQUIRED = ("IndicatorCode", "SpatialDim", "TimeDim", "NumericValue")
MAX_BYTES = 200 * 1024 * 1024


def fetch_json(url: str, attempts: int = 4, backoff_seconds: float = 1.0, timeout: float = 30.0) -> dict:
    """GET with retries on network errors and 5xx/429; 4xx other than 429 fails at once."""
    last_error = None
    for attempt in range(attempts):
        try:
            request = urllib.request.Request(url, headers={"Accept": "application/json"})
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = response.read(MAX_BYTES + 1)
            if len(body) > MAX_BYTES:
                raise ReferenceDataInvalid(f"response larger than {MAX_BYTES} bytes")
            return json.loads(body)
        except urllib.error.HTTPError as error:
            if error.code < 500 and error.code != 429:
                raise ReferenceDataInvalid(f"{url} answered {error.code}") from None
            last_error = f"HTTP {error.code}"
        except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
            last_error = f"{type(error).__name__}: {getattr(error, 'reason', error)}"
        except ValueError:
            raise ReferenceDataInvalid("the response is not JSON") from None
        if attempt + 1 < attempts:
            time.sleep(backoff_seconds * 2**attempt)
    raise ServiceUnavailable(f"reference data unreachable after {attempts} attempts: {last_error}")


def validate(payload) -> list[dict]:
    if not isinstance(payload, dict) or not isinstance(payload.get("value"), list):
        raise ReferenceDataInvalid("expected an OData object with a 'value' list")
    rows = payload["value"]
    if not rows:
        raise ReferenceDataInvalid("the data set is empty")
    clean = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or any(key not in row for key in REQUIRED):
            raise ReferenceDataInvalid(f"row {index} lacks one of {', '.join(REQUIRED)}")
        value = row["NumericValue"]
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ReferenceDataInvalid(f"row {index}: NumericValue is not a number")
        clean.append({
            "indicator": str(row["IndicatorCode"]), "spatial_dim": str(row["SpatialDim"]),
            "spatial_dim_type": str(row.get("SpatialDimType") or ""), "time_dim": int(row["TimeDim"]),
            "dim1": str(row.get("Dim1") or ""), "numeric_value": None if value is None else float(value),
        })
    return clean


def ingest_reference(*, url: str, name: str, artifacts: ArtifactStore, metadata: MetadataStore,
                     backoff_seconds: float = 1.0, now: datetime | None = None) -> dict:
    import polars as pl

    now = now or datetime.now(timezone.utc)
    rows = validate(fetch_json(url, backoff_seconds=backoff_seconds))
    frame = pl.DataFrame(rows)
    path = f"{lake.REFERENCE}/{name}/data.parquet"
    lake.write_frame(artifacts, path, frame)
    summary = {"run_id": f"reference-{now.strftime('%Y%m%dT%H%M%S%f')}", "created_at": now.isoformat(),
               "source": url, "path": path, "rows": frame.height,
               "indicators": sorted(set(frame.get_column("indicator").to_list()))}
    metadata.put(RUNS_COLLECTION, summary["run_id"], summary)
    log.info("reference data stored", extra={"fields": {"path": path, "rows": frame.height}})
    return summary
