"""Entry points loaded by path through functions-framework, as Cloud Functions does."""

import flask
from a2wsgi import ASGIMiddleware
from functions_framework import create_app
from werkzeug.test import Client

from tests.conftest import ROOT

SOURCE = str(ROOT / "main.py")


class BufferedClient(Client):
    """Reads every answer to its end, as a server does: a2wsgi resumes the ASGI
    app only when its body is iterated past the last chunk, and a request left
    unread stays a pending task until the process exits."""

    def open(self, *args, buffered: bool = True, **kwargs):
        return super().open(*args, buffered=buffered, **kwargs)


def client(target: str, signature_type: str = "http"):
    """A werkzeug test client for the target, whether functions-framework serves
    it with Flask or, for `functions_framework.aio` functions, with Starlette."""
    app = create_app(target, SOURCE, signature_type)
    if isinstance(app, flask.Flask):
        return app.test_client()
    return BufferedClient(ASGIMiddleware(app))
