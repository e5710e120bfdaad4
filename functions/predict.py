"""`predict`: vitals in (query string or JSON), a logged prediction out."""

import functions_framework

from functions.http_adapter import json_endpoint, json_response, query_lists, read_body
from shared import wiring
from shared.serving.http_contract import parse_predict_request
from shared.serving.prediction_service import predict_and_log

wiring.settings("predict")  # a bad value fails the start, naming the variable


@functions_framework.http
@json_endpoint("GET", "POST")
def predict(request):
    settings = wiring.settings("predict")
    body = read_body(request, settings.max_body_bytes) if request.method == "POST" else b""
    parsed = parse_predict_request(
        request.method, query_lists(request), request.content_type, body,
        max_batch=settings.max_batch_size, max_body_bytes=settings.max_body_bytes,
    )
    if request.method == "HEAD":  # GET's status and headers: no prediction is answered, so none is made
        wiring.model_loader(settings).get()
        return json_response({})
    response = predict_and_log(
        parsed.instances, loader=wiring.model_loader(settings), store=wiring.prediction_store(settings),
        require_log=settings.require_prediction_log, batch=parsed.batch,
    )
    return json_response(response)
