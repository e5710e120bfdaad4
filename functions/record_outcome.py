"""`record_outcome`: a clinician-confirmed label for a logged prediction."""

import functions_framework

from functions.http_adapter import json_endpoint, json_response, read_body
from shared import backends, prediction_service
from shared.http_contract import parse_outcome_request


@functions_framework.http
@json_endpoint
def record_outcome(request):
    settings = backends.settings()
    body = read_body(request, settings.max_body_bytes) if request.method == "POST" else b""
    prediction_id, label = parse_outcome_request(request.method, request.content_type, body, settings.max_body_bytes)
    return json_response(prediction_service.record_outcome(backends.prediction_store(settings), prediction_id, label))
