"""What every HTTP entry point shares: body limits, JSON answers, error mapping.

Every error is answered as {"error": {"code", "message", "field"}}; an
unexpected exception is logged and answered 500 without a stack trace.
"""

from __future__ import annotations

import functools
import json

import flask

from shared import errors
from shared.structured_logging import get_logger

log = get_logger("http")


def json_response(body: dict, status: int = 200, headers: dict | None = None) -> flask.Response:
    response = flask.Response(json.dumps(body, ensure_ascii=False), status=status,
                              mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_response(error: errors.ServiceError) -> flask.Response:
    status = error.status
    headers = {"Retry-After": "5"} if status == 503 else None
    if isinstance(error, errors.MethodNotAllowed):
        headers = {"Allow": ", ".join(error.allowed)}
    response = json_response({"error": error.to_dict()}, status, headers)
    if status == 413:
        # functions-framework drains (reads into memory) every request body
        # after a non-streamed response; an oversized one must not be read at
        # all, so answer as a stream and close the connection instead.
        body = response.get_data()
        response.set_data(b"")
        response.response = iter([body])
        response.headers["Content-Length"] = str(len(body))
        response.headers["Connection"] = "close"
    return response


def read_body(request: flask.Request, max_bytes: int) -> bytes:
    """The body, refused before reading when it declares (or turns out) too large."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise errors.PayloadTooLarge(f"the body is larger than {max_bytes} bytes", field="body")
    body = request.stream.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise errors.PayloadTooLarge(f"the body is larger than {max_bytes} bytes", field="body")
    return body


def query_lists(request: flask.Request) -> dict[str, list[str]]:
    return {name: request.args.getlist(name) for name in request.args.keys()}


def json_endpoint(handler):
    """Turn domain errors into JSON 4xx/5xx answers; log, never leak, the rest."""

    @functools.wraps(handler)
    def wrapper(request: flask.Request):
        try:
            return handler(request)
        except errors.ServiceError as error:
            if isinstance(error, errors.ServiceUnavailable):
                log.warning("dependency unavailable", extra={"fields": {"reason": error.message,
                                                                        "endpoint": handler.__name__}})
            return error_response(error)
        except Exception:  # noqa: BLE001 -- the last line of defence: no stack trace to the client
            log.exception("unexpected error", extra={"fields": {"endpoint": handler.__name__}})
            return json_response({"error": {"code": "internal", "message": "internal error", "field": None}}, 500)

    return wrapper
