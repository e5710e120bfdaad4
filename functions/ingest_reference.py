"""`ingest_reference`: the weekly download of a public reference data set."""

import functions_framework

from functions.event_adapter import decode, faults_answered_for_a_retry, log, traced
from shared import wiring

wiring.settings("ingest_reference")  # a bad value fails the start, naming the variable


@functions_framework.cloud_event
@traced
def ingest_reference(cloud_event):
    from shared.errors import ReferenceDataInvalid
    from shared.event_bus.schemas import INGEST_REFERENCE
    from shared.ingestion.public_dataset import ingest_reference as run_ingestion

    if decode(cloud_event, INGEST_REFERENCE) is None:
        return
    settings = wiring.settings("ingest_reference")
    try:
        with faults_answered_for_a_retry():
            run_ingestion(url=settings.reference_data_url, name=settings.reference_data_name,
                          artifacts=wiring.artifact_store(settings), metadata=wiring.metadata_store(settings))
    except ReferenceDataInvalid as error:  # retrying cannot fix a bad payload; the previous copy stays
        log.error("reference data refused", extra={"fields": {"reason": error.message}})
