"""WSGI app for the bare function, served by the same gunicorn settings."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

from functions_framework import create_app  # noqa: E402

app = create_app("bare_predict", str(Path(__file__).with_name("bare_function.py")), "http")
