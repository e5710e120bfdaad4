"""What every HTTP entry point shares: methods, body limits, JSON answers, error mapping.

Every error is answered as {"error": {"code", "message", "field"}}; an
unexpected exception is logged and answered 500 without a stack trace.
HEAD is answered wherever GET is, OPTIONS everywhere, and the body limit
holds on every method.
"""

from __future__ import annotations

import functools
import json

import flask
from werkzeug.exceptions import HTTPException

from shared import errors, wiring
from shared.config import Settings
from shared.serving.http_contract import allowed_methods, require_method
from shared.structured_logging import get_logger, trace_context

log = get_logger("http")


def json_response(body: dict, status: int = 200, headers: dict | None = None) -> flask.Response:
    response = flask.Response(json.dumps(body, ensure_ascii=False), status=status,
                              mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


INTERNAL_ERROR = {"error": {"code": "internal", "message": "internal error", "field": None}}


def error_status_and_headers(error: errors.ServiceError) -> tuple[int, dict | None]:
    """The status and extra headers of a domain error's JSON answer (WSGI and ASGI alike)."""
    status = error.status
    headers = {"Retry-After": "5"} if status == 503 else None
    if isinstance(error, errors.MethodNotAllowed):
        headers = {"Allow": ", ".join(error.allowed)}
    return status, headers


def log_failure(error: Exception, endpoint: str) -> None:
    """Warn about an unavailable dependency; log anything unexpected with its stack trace (never sent)."""
    if isinstance(error, errors.ServiceUnavailable):
        log.warning("dependency unavailable", extra={"fields": {"reason": error.message, "endpoint": endpoint}})
    elif not isinstance(error, errors.ServiceError):
        log.error("unexpected error", exc_info=error, extra={"fields": {"endpoint": endpoint}})


def store_fault(error: Exception) -> errors.StoreUnavailable | None:
    """A store that cannot be written now -- a read-only or full disk, a lock
    file it cannot open, SQLite's "readonly database" or "disk is full" -- as
    the 503 a retry later may get past, never a 500 (WSGI and ASGI alike)."""
    import sqlite3

    if isinstance(error, OSError):
        return errors.StoreUnavailable(f"the data store cannot be used: {error.strerror or type(error).__name__}")
    if isinstance(error, sqlite3.OperationalError) and any(
            text in str(error).lower() for text in ("readonly", "read-only", "disk is full", "unable to open",
                                                    "disk i/o")):
        return errors.StoreUnavailable("the data store cannot be used: it is read-only, full or unreachable")
    return None


def error_response(error: errors.ServiceError) -> flask.Response:
    status, headers = error_status_and_headers(error)
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


_BODY = "clinical_risk.body"  # where the body, once read, is kept for the request


def read_body(request: flask.Request, max_bytes: int) -> bytes:
    """The body, refused before reading when it declares (or turns out) too
    large, or comes compressed (we would otherwise parse the compressed bytes).
    Read once per request: `json_endpoint` reads it first, on every method."""
    if _BODY in request.environ:
        return request.environ[_BODY]
    refuse_before_reading(request.content_length, request.headers.get("Content-Encoding"), max_bytes)
    body = request.stream.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise body_too_large(max_bytes)
    request.environ[_BODY] = body
    return body


def refuse_before_reading(content_length: int | None, content_encoding: str | None, max_bytes: int) -> None:
    """A body declared too large, or compressed, is refused unread (WSGI and ASGI alike)."""
    if content_length is not None and content_length > max_bytes:
        raise body_too_large(max_bytes)
    if (content_encoding or "identity").strip().lower() != "identity":
        raise errors.UnsupportedMediaType("send the body uncompressed (no Content-Encoding)",
                                          field="content-encoding")


def body_too_large(max_bytes: int) -> errors.PayloadTooLarge:
    return errors.PayloadTooLarge(f"the body is larger than {max_bytes} bytes", field="body")


def query_lists(request: flask.Request) -> dict[str, list[str]]:
    return {name: request.args.getlist(name) for name in request.args.keys()}


def json_endpoint(*methods: str):
    """Answer OPTIONS, refuse other methods and oversized bodies, then turn
    domain errors into JSON 4xx/5xx answers; log, never leak, the rest."""

    def decorate(handler):
        @functools.wraps(handler)
        def wrapper(request: flask.Request):
            # Every line of this request carries its trace (X-Cloud-Trace-Context / traceparent).
            with trace_context(request.headers, wiring.trace_project(handler.__name__)):
                return answer(handler, request)

        def answer(handler, request: flask.Request) -> flask.Response:
            try:
                if request.method.upper() == "OPTIONS":
                    return flask.Response(status=204, headers={"Allow": ", ".join(allowed_methods(methods))})
                # Before the method check: functions-framework drains any body left unread.
                read_body(request, max_body_bytes(wiring.settings(handler.__name__)))
                require_method(request.method, methods)
                return handler(request)
            except errors.ServiceError as error:
                log_failure(error, handler.__name__)
                return error_response(error)
            except Exception as error:  # noqa: BLE001 -- the last line of defence: no stack trace to the client
                fault = store_fault(error)
                log_failure(fault or error, handler.__name__)
                return error_response(fault) if fault else internal_error_response()

        return wrapper

    return decorate


def max_body_bytes(settings) -> int:
    """MAX_BODY_BYTES for the functions that read a body; the others read none,
    so they hold any body to the default bound instead of a setting of their own."""
    return getattr(settings, "max_body_bytes", Settings.max_body_bytes)


def internal_error_response() -> flask.Response:
    return json_response(INTERNAL_ERROR, 500)


def answer_framework_errors_as_json(app: flask.Flask) -> flask.Flask:
    """Flask's own refusals (405 on an event endpoint, 404, a crash) as the
    JSON error contract instead of HTML pages."""

    def http_error(error: HTTPException):
        code = (error.name or "error").lower().replace(" ", "_").replace("'", "")
        # First line only: functions-framework's 400 for a bad event quotes the whole request.
        message = (error.description or error.name or "").splitlines()[0][:200]
        response = json_response({"error": {"code": code, "message": message,
                                            "field": "method" if error.code == 405 else None}}, error.code or 500)
        for name, value in error.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    def crash(error):
        original = getattr(error, "original_exception", error)
        log.error("unexpected error", extra={"fields": {"error": repr(original)[:500]}})
        response = internal_error_response()
        response.headers["X-Google-Status"] = "crash"  # as functions-framework's own crash handler
        return response

    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(500, crash)
    return app
