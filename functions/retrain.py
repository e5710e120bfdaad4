"""`retrain`: train, gate and promote on a Pub/Sub retrain request."""

import functions_framework

from functions.event_adapter import decode
from shared import wiring
from shared.training.retrain_handler import handle_retrain_message


@functions_framework.cloud_event
def retrain(cloud_event):
    message = decode(cloud_event)
    if message is not None:
        handle_retrain_message(message, **wiring.service_dependencies())
