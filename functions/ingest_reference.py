"""`ingest_reference`: the weekly download of a public reference data set."""

import functions_framework

from functions.event_adapter import decode, log
from shared import backends


@functions_framework.cloud_event
def ingest_reference(cloud_event):
    from shared.reference_ingestion import ReferenceDataInvalid  # Polars loads only here
    from shared.reference_ingestion import ingest_reference as run_ingestion

    if decode(cloud_event) is None:
        return
    settings = backends.settings()
    try:
        run_ingestion(url=settings.reference_data_url, name=settings.reference_data_name,
                      artifacts=backends.artifact_store(settings), metadata=backends.metadata_store(settings))
    except ReferenceDataInvalid as error:  # retrying cannot fix a bad payload; the previous copy stays
        log.error("reference data refused", extra={"fields": {"reason": error.message}})
