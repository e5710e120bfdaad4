"""`make run`: every function of main.py behind one local server.

HTTP functions are mounted at /<name> (and /predictions-history, /model as in
the public contract); event functions at /<name> accept CloudEvents over HTTP
in binary or structured mode, exactly as functions-framework does -- each
mount *is* functions-framework's own app for that target.

Every answer, whoever gives it, is the JSON error contract: Flask's own
refusals (405 on an event endpoint, 404, a crash) and gunicorn's (414 for a
URL over 4 KB, 400 for a malformed request line, 431 for oversized headers).

Served by gunicorn (what functions-framework uses in production) with
several workers. OMP_NUM_THREADS=1 is set before any model library loads:
OpenMP thread pools in forked workers hang (XGBoost, HistGradientBoosting).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import flask  # noqa: E402
from functions_framework import create_app  # noqa: E402
from werkzeug.middleware.dispatcher import DispatcherMiddleware  # noqa: E402

from functions.http_adapter import answer_framework_errors_as_json, json_response  # noqa: E402
from shared.config import validate_all  # noqa: E402
from shared.errors import ConfigError  # noqa: E402

SOURCE = str(Path(__file__).with_name("main.py"))

# path -> (entry point, signature type)
ROUTES: dict[str, tuple[str, str]] = {
    "/predict": ("predict", "http"),
    "/predictions-history": ("predictions_history", "http"),
    "/predictions_history": ("predictions_history", "http"),
    "/model": ("model_metadata", "http"),
    "/record_outcome": ("record_outcome", "http"),
    "/drift_check": ("drift_check", "cloudevent"),
    "/retrain": ("retrain", "cloudevent"),
    "/ingest_clinical": ("ingest_clinical", "cloudevent"),
    "/ingest_reference": ("ingest_reference", "cloudevent"),
}


def _index_app() -> flask.Flask:
    index = answer_framework_errors_as_json(flask.Flask("index"))

    @index.route("/openapi.yaml")
    def openapi():
        return flask.Response(Path(__file__).with_name("openapi.yaml").read_bytes(), mimetype="application/yaml")

    @index.route("/", defaults={"path": ""})
    @index.route("/<path:path>")
    def listing(path):
        if path:
            return json_response({"error": {"code": "not_found", "message": f"no function at /{path[:200]}",
                                            "field": None}}, 404)
        return json_response({"endpoints": sorted([*ROUTES, "/openapi.yaml"])})

    return index


def _root_path(wsgi_app):
    """Mounted at /predict, a request for exactly /predict reaches the inner
    app with an empty path, which Flask would redirect; serve it as '/'."""

    def application(environ, start_response):
        if not environ.get("PATH_INFO"):
            environ["PATH_INFO"] = "/"
        return wsgi_app(environ, start_response)

    return application


def build_app():
    mounts = {}
    apps_by_target = {}
    for path, (target, signature_type) in ROUTES.items():
        if target not in apps_by_target:
            apps_by_target[target] = _root_path(answer_framework_errors_as_json(
                create_app(target, SOURCE, signature_type)))
        mounts[path] = apps_by_target[target]
    return DispatcherMiddleware(_index_app(), mounts)


try:
    validate_all()  # refuse to start on a bad value, naming the variable
except ConfigError as error:
    sys.exit(f"configuration error: {error.message}")
app = build_app()


def write_json_error(sock, status_int: int, reason: str, message: str) -> None:
    """gunicorn's `util.write_error` (the errors it answers itself, before any
    app runs) with the JSON error contract instead of an HTML page."""
    from gunicorn import util

    code = reason.lower().replace(" ", "_")
    body = json.dumps({"error": {"code": code, "message": message[:200] or reason, "field": None}}).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("latin1")
    util.write_nonblock(sock, head + body)


def serve(host: str, port: int, workers: int, threads: int) -> None:
    from gunicorn import util
    from gunicorn.app.base import BaseApplication

    # gunicorn offers no hook for the errors it writes itself; its workers call
    # `util.write_error` by module attribute, so this one function is replaced.
    util.write_error = write_json_error

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("timeout", 0)  # retrain runs in the background for minutes
            self.cfg.set("accesslog", None)

        def load(self):
            return app

    print(f"Serving on http://{host}:{port}  (Ctrl-C to stop)", file=sys.stderr)
    for path in [*ROUTES, "/openapi.yaml"]:
        print(f"  http://{host}:{port}{path}", file=sys.stderr)
    Server().run()


if __name__ == "__main__":
    serve(os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8080")),
          int(os.environ.get("WORKERS", "2")), int(os.environ.get("THREADS", "4")))
