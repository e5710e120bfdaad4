"""`drift_check`: the nightly check, triggered by Cloud Scheduler through Pub/Sub."""

import functions_framework

from functions.event_adapter import handle_event, traced
from shared import wiring

wiring.settings("drift_check")  # a bad value fails the start, naming the variable


@functions_framework.cloud_event
@traced
def drift_check(cloud_event):
    handle_event(cloud_event, wiring.check_drift)
