"""`record_outcome`: a clinician-confirmed label for a logged prediction,
attributed to the caller named by the request's ID token (`shared.governance.caller`)."""

from datetime import datetime, timezone

import functions_framework

from functions.http_adapter import json_endpoint, json_response, read_body
from shared import wiring
from shared.governance.caller import caller_from_headers
from shared.governance.limits import admit_outcome
from shared.serving import prediction_service
from shared.serving.http_contract import parse_outcome_request

wiring.settings("record_outcome")  # a bad value fails the start, naming the variable


@functions_framework.http
@json_endpoint("POST")
def record_outcome(request):
    settings = wiring.settings("record_outcome")
    body = read_body(request, settings.max_body_bytes) if request.method == "POST" else b""
    prediction_id, label = parse_outcome_request(request.method, request.content_type, body, settings.max_body_bytes)
    caller = caller_from_headers(request.headers)
    store = wiring.prediction_store(settings)
    admit_outcome(store, caller, datetime.now(timezone.utc), settings.outcomes_per_caller_per_hour)
    return json_response(prediction_service.record_outcome(store, prediction_id, label,
                                                           caller=caller))
