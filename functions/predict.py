"""`predict`: vitals in (query string or JSON), a logged prediction out.

Served in functions-framework's ASGI mode (`functions_framework.aio`): the
model runs on the event loop, and the requests in flight share one commit of
their records (`shared/serving/group_commit.py`) instead of a thread and a
transaction each.
"""

import asyncio

import functions_framework.aio

from functions.asgi_adapter import json_endpoint, json_response, query_lists, read_body, request_settings
from shared import wiring
from shared.serving.http_contract import parse_predict_request
from shared.serving.prediction_service import predict_and_log_grouped

wiring.settings("predict")  # a bad value fails the start, naming the variable


@functions_framework.aio.http
@json_endpoint("GET", "POST")
async def predict(request):
    settings = request_settings(request)
    body = await read_body(request, settings.max_body_bytes) if request.method == "POST" else b""
    parsed = parse_predict_request(
        request.method, query_lists(request), request.headers.get("content-type"), body,
        max_batch=settings.max_batch_size, max_body_bytes=settings.max_body_bytes,
    )
    loader = wiring.model_loader(settings)
    # Only before the first model is loaded does this wait, and then in a thread.
    model = loader.get_nowait() or await asyncio.to_thread(loader.get)
    if request.method == "HEAD":  # GET's status and headers: no prediction is answered, so none is made
        return json_response({})
    response = await predict_and_log_grouped(
        parsed.instances, model=model, committer=wiring.prediction_committer(settings),
        require_log=settings.require_prediction_log, batch=parsed.batch,
    )
    return json_response(response)
