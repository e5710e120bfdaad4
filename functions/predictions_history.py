"""`predictions_history`: logged predictions, newest first, paged by cursor."""

import functions_framework

from functions.http_adapter import json_endpoint, json_response, query_lists
from shared import backends
from shared.http_contract import parse_history_query
from shared.prediction_service import prediction_history


@functions_framework.http
@json_endpoint
def predictions_history(request):
    limit, cursor = parse_history_query(request.method, query_lists(request))
    return json_response(prediction_history(backends.prediction_store(), limit, cursor))
