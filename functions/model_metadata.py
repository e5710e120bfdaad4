"""`model_metadata` (served at /model): what the serving model is and how good."""

import functions_framework

from functions.http_adapter import json_endpoint, json_response
from shared import wiring
from shared.serving.http_contract import require_method
from shared.serving.prediction_service import describe_model

wiring.settings("model_metadata")  # a bad value fails the start, naming the variable


@functions_framework.http
@json_endpoint("GET")
def model_metadata(request):
    require_method(request.method, ("GET",))
    return json_response(describe_model(wiring.model_loader(wiring.settings("model_metadata")).get()))
