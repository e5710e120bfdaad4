"""`retrain`: validate and deduplicate a Pub/Sub retrain request, then launch
the training job that trains, gates and promotes."""

import functions_framework

from functions.event_adapter import handle_event, traced
from shared import wiring

wiring.settings("retrain")  # a bad value fails the start, naming the variable


@functions_framework.cloud_event
@traced
def retrain(cloud_event):
    handle_event(cloud_event, wiring.retrain)
