"""`retrain`: train, gate and promote on a Pub/Sub retrain request."""

import functions_framework

from functions.event_adapter import decode
from shared import wiring

wiring.settings("retrain")  # a bad value fails the start, naming the variable


@functions_framework.cloud_event
def retrain(cloud_event):
    message = decode(cloud_event)
    if message is not None:
        wiring.retrain(message)
