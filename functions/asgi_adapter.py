"""`http_adapter` for the entry points served in functions-framework's ASGI mode
(`functions_framework.aio`, Starlette requests): the same methods, body limits,
JSON answers and error mapping, on an event loop instead of a thread per request.
"""

from __future__ import annotations

import functools
import json
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from functions.http_adapter import (
    INTERNAL_ERROR,
    body_too_large,
    error_status_and_headers,
    log_failure,
    max_body_bytes,
    refuse_before_reading,
    store_fault,
)
from shared import errors, wiring
from shared.serving.http_contract import allowed_methods, require_method
from shared.structured_logging import trace_context


def json_response(body: dict, status: int = 200, headers: dict | None = None) -> Response:
    """The body serialised once, as the Flask entry points answer it."""
    return Response(json.dumps(body, ensure_ascii=False), status_code=status, media_type="application/json",
                    headers={"Cache-Control": "no-store", **(headers or {})})


_BODY = "clinical_risk.body"  # where the body, once read, is kept for the request


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The body, refused before reading when it declares (or turns out) too
    large, or comes compressed. Read once per request: `json_endpoint` reads it first."""
    if _BODY in request.scope:
        return request.scope[_BODY]
    declared = request.headers.get("content-length")
    if declared is None and "transfer-encoding" not in request.headers \
            and request.scope.get("http_version") in ("1.0", "1.1"):
        request.scope[_BODY] = b""  # HTTP/1: no length, not chunked is no body; nothing to wait for
        return b""
    refuse_before_reading(int(declared) if declared and declared.isdigit() else None,
                          request.headers.get("content-encoding"), max_bytes)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise body_too_large(max_bytes)
    request.scope[_BODY] = bytes(body)
    return request.scope[_BODY]


def query_lists(request: Request) -> dict[str, list[str]]:
    """Every value of each parameter, parsed as Starlette's `query_params` does
    (latin-1, blank values kept), without building its multi-dict first."""
    return parse_qs(request.scope["query_string"].decode("latin-1"), keep_blank_values=True)


_SETTINGS = "clinical_risk.settings"  # where the request's settings, once read, are kept


def request_settings(request: Request):
    """The handler's settings, read from the environment once for this request
    by `json_endpoint` (each read parses a dozen variables: ~9 µs)."""
    return request.scope[_SETTINGS]


def json_endpoint(*methods: str):
    """Answer OPTIONS, refuse other methods and oversized bodies, then turn
    domain errors into JSON 4xx/5xx answers; log, never leak, the rest."""

    def decorate(handler):
        @functools.wraps(handler)
        async def wrapper(request: Request) -> Response:
            try:
                settings = wiring.settings(handler.__name__)
            except Exception as error:  # noqa: BLE001 -- answered (a ConfigError names its variable) after OPTIONS
                settings = error
            request.scope[_SETTINGS] = settings
            # Every line of this request carries its trace (X-Cloud-Trace-Context / traceparent).
            with trace_context(request.headers, getattr(settings, "google_cloud_project", "")):
                return await answer(request, settings)

        async def answer(request: Request, settings) -> Response:
            try:
                if request.method.upper() == "OPTIONS":
                    return Response(status_code=204, headers={"Allow": ", ".join(allowed_methods(methods))})
                if isinstance(settings, Exception):
                    raise settings
                await read_body(request, max_body_bytes(settings))
                require_method(request.method, methods)
                return await handler(request)
            except errors.ServiceError as error:
                log_failure(error, handler.__name__)
                status, headers = error_status_and_headers(error)
                if status == 413:  # the rest of an oversized body is never read: close the connection
                    headers = {**(headers or {}), "Connection": "close"}
                return json_response({"error": error.to_dict()}, status, headers)
            except Exception as error:  # noqa: BLE001 -- the last line of defence: no stack trace to the client
                fault = store_fault(error)
                log_failure(fault or error, handler.__name__)
                if fault is not None:
                    return json_response({"error": fault.to_dict()}, *error_status_and_headers(fault))
                return json_response(INTERNAL_ERROR, 500)

        return wrapper

    return decorate
