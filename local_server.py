"""`make run`: every function of main.py behind one local server.

HTTP functions are mounted at /<name> (and /predictions-history, /model as in
the public contract); event functions at /<name> accept CloudEvents over HTTP
in binary or structured mode, exactly as functions-framework does -- each
mount *is* functions-framework's own app for that target.

Every answer the apps give is the JSON error contract: Flask's own refusals
(405 on an event endpoint, 404, a crash), and 414 for a URL over 4 KB.

Served as functions-framework serves an ASGI function in production:
gunicorn with uvicorn workers (`WORKERS` processes). `/predict` is a
`functions_framework.aio` function and runs on each worker's event loop; the
Flask functions run in a pool of `THREADS` threads per worker beside it.
OMP_NUM_THREADS=1 is set before any model library loads: OpenMP thread pools
in forked workers hang (XGBoost, HistGradientBoosting).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import asyncio  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import flask  # noqa: E402
from a2wsgi import WSGIMiddleware  # noqa: E402
from functions_framework import create_app  # noqa: E402
from uvicorn_worker import UvicornWorker  # noqa: E402
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
    "/console": ("console", "http"),
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
        if "text/html" in flask.request.headers.get("Accept", ""):
            return flask.redirect("/console/", 302)  # a person with a browser: the console
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


MAX_URL_BYTES = 4094  # the request-line limit gunicorn's own parser enforced


def build_app(threads: int = 4):
    """One ASGI app: `functions_framework.aio` functions as they are, the Flask
    ones behind one WSGI dispatcher run by a pool of `threads` threads."""
    wsgi_mounts, asgi_mounts = {}, {}
    apps_by_target = {}
    for path, (target, signature_type) in ROUTES.items():
        if target not in apps_by_target:
            apps_by_target[target] = create_app(target, SOURCE, signature_type)
        target_app = apps_by_target[target]
        if isinstance(target_app, flask.Flask):
            wsgi_mounts[path] = _root_path(answer_framework_errors_as_json(target_app))
        else:
            asgi_mounts[path] = target_app
    wsgi_app = WSGIMiddleware(DispatcherMiddleware(_index_app(), wsgi_mounts), workers=threads)
    lifespan_app = next(iter(asgi_mounts.values()), None)
    url_too_long = json.dumps({"error": {"code": "request-uri_too_long", "field": None,
                                         "message": f"the URL is longer than {MAX_URL_BYTES} bytes"}}).encode()

    async def application(scope, receive, send):
        if scope["type"] == "lifespan":
            if lifespan_app is not None:
                await lifespan_app(scope, receive, send)
            return
        if len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") > MAX_URL_BYTES:
            await send({"type": "http.response.start", "status": 414,
                        "headers": [(b"content-type", b"application/json"), (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": url_too_long})
            return
        path = scope.get("path", "")
        for mount, asgi_app in asgi_mounts.items():
            if path == mount or path.startswith(mount + "/"):
                await asgi_app(scope, receive, send)
                return
        await wsgi_app(scope, receive, send)

    return application


try:
    validate_all()  # refuse to start on a bad value, naming the variable
except ConfigError as error:
    sys.exit(f"configuration error: {error.message}")
app = build_app(int(os.environ.get("THREADS", "4")))


class CtrlCUvicornWorker(UvicornWorker):
    """uvicorn's gunicorn worker, stopped by Ctrl-C too. On SIGINT gunicorn
    tells its workers to quit with SIGQUIT, which this worker only notes (its
    server keeps running until gunicorn kills it 30 s later); turn it into
    the SIGTERM that uvicorn shuts down on."""

    def _install_sigquit_handler(self) -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGQUIT, os.kill, os.getpid(), signal.SIGTERM)


def serve(host: str, port: int, workers: int) -> None:
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "local_server.CtrlCUvicornWorker")
            self.cfg.set("timeout", 0)  # retrain runs in the background for minutes
            self.cfg.set("accesslog", None)

        def load(self):
            return app

    print(f"Serving on http://{host}:{port}  (Ctrl-C to stop)", file=sys.stderr)
    print(f"  the console: http://{host}:{port}/console/", file=sys.stderr)
    for path in [*ROUTES, "/openapi.yaml"]:
        print(f"  http://{host}:{port}{path}", file=sys.stderr)
    Server().run()


if __name__ == "__main__":
    serve(os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8080")),
          int(os.environ.get("WORKERS", "2")))
