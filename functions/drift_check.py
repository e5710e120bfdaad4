"""`drift_check`: the nightly check, triggered by Cloud Scheduler through Pub/Sub."""

import functions_framework

from functions.event_adapter import decode, log
from shared import wiring

wiring.settings("drift_check")  # a bad value fails the start, naming the variable


@functions_framework.cloud_event
def drift_check(cloud_event):
    message = decode(cloud_event)
    if message is None:
        return
    try:
        wiring.check_drift(message)
    except ValueError as error:  # a window that makes no sense: retrying cannot fix it
        log.error("drift check request dropped", extra={"fields": {"reason": str(error)}})
