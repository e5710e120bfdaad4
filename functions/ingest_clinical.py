"""`ingest_clinical`: the daily extraction from PostgreSQL into the lake."""

from datetime import date

import functions_framework

from functions.event_adapter import decode, faults_answered_for_a_retry, traced
from shared import wiring

wiring.settings("ingest_clinical")  # a bad value fails the start, naming the variable


@functions_framework.cloud_event
@traced
def ingest_clinical(cloud_event):
    # Imported here: Polars and psycopg load only in this function, not in
    # every function's cold start (they all share main.py).
    from shared.event_bus.schemas import INGEST_CLINICAL
    from shared.ingestion.clinical import ingest_clinical_configured

    message = decode(cloud_event, INGEST_CLINICAL)
    if message is None:
        return
    settings = wiring.settings("ingest_clinical")
    day = date.fromisoformat(message.data["date"]) if message.data.get("date") else None
    with faults_answered_for_a_retry():
        ingest_clinical_configured(settings, artifacts=wiring.artifact_store(settings),
                                   metadata=wiring.metadata_store(settings), ingestion_date=day)
