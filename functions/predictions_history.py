"""`predictions_history`: logged predictions, newest first, paged by cursor."""

import functions_framework

from functions.http_adapter import json_endpoint, json_response, query_lists
from shared import wiring
from shared.serving.http_contract import parse_history_query
from shared.serving.prediction_service import prediction_history

wiring.settings("predictions_history")  # a bad value fails the start, naming the variable


@functions_framework.http
@json_endpoint("GET")
def predictions_history(request):
    limit, cursor = parse_history_query(request.method, query_lists(request))
    store = wiring.prediction_store(wiring.settings("predictions_history"))
    return json_response(prediction_history(store, limit, cursor))
