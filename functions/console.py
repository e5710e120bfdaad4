"""`console`: the operations console, read-only HTML pages over the stores.

GET /, /models, /experiments, /drift-reports, /predictions (each also as JSON
with ?format=json) and /drift-reports/ID/report.html (the stored report page,
read from the artifact store: the same locally, on the emulators and deployed).
Links are relative to where the function is mounted (`/console` under `make run`).
"""

import flask
import functions_framework

from functions.http_adapter import json_endpoint
from shared import errors, wiring
from shared.console.pages import render_page

wiring.settings("console")  # a bad value fails the start, naming the variable

# The pages embed only their own inline SVG and the report's data: PNGs; nothing else loads.
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                               "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@functions_framework.http
@json_endpoint("GET")
def console(request):
    settings = wiring.settings("console")
    root = request.script_root.rstrip("/")
    query = {name: request.args.get(name, "") for name in ("format", "limit", "cursor", "label", "version")}
    try:
        status, content_type, body = render_page(
            request.path, query, root=root, artifacts=wiring.artifact_store(settings),
            metadata=wiring.metadata_store(settings), predictions=wiring.prediction_store(settings))
    except errors.NotFound as error:
        if query["format"] == "json" or "text/html" not in request.headers.get("Accept", ""):
            raise
        return _html_error(404, error.message, root)
    return flask.Response(body, status=status, content_type=content_type, headers=_SECURITY_HEADERS)


def _html_error(status: int, message: str, root: str) -> flask.Response:
    from shared.console.pages import render_error

    return flask.Response(render_error(status, message, root=root), status=status,
                          content_type="text/html; charset=utf-8", headers=_SECURITY_HEADERS)
