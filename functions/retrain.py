"""`retrain`: train, gate and promote on a Pub/Sub retrain request."""

import functions_framework

from functions.event_adapter import handle_event
from shared import wiring

wiring.settings("retrain")  # a bad value fails the start, naming the variable


@functions_framework.cloud_event
def retrain(cloud_event):
    handle_event(cloud_event, wiring.retrain)
