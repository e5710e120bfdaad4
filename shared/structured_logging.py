"""JSON log lines with a `severity`, the shape Cloud Logging parses.

Only what is passed explicitly in `extra={"fields": {...}}` is added to a line:
request bodies and inputs are never logged by this project.

Every line written while a trace is bound (`trace_context`) carries
`logging.googleapis.com/trace`, so Cloud Logging groups one prediction's or one
retrain's lines across functions and the training job. The trace comes from the
request's `X-Cloud-Trace-Context` or W3C `traceparent` header, travels on as a
`traceparent` attribute of every message published meanwhile, and is started
afresh when a request carries none.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import secrets
import sys
from collections.abc import Iterator, Mapping

TRACE_FIELD = "logging.googleapis.com/trace"
TRACE_ATTRIBUTE = "traceparent"
_CLOUD_TRACE = re.compile(r"^([0-9a-fA-F]{32})(?:/|;|$)")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_current_trace: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("trace", default=None)
_configured = False


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "severity": record.levelname if record.levelname != "WARNING" else "WARNING",
            "message": record.getMessage(),
            "logger": record.name,
        }
        trace = _current_trace.get()
        if trace is not None:
            project, trace_id = trace
            entry[TRACE_FIELD] = f"projects/{project}/traces/{trace_id}"
        entry.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def get_logger(name: str) -> logging.Logger:
    """A logger whose lines are JSON on stderr; configured once per process."""
    global _configured
    if not _configured:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root = logging.getLogger("mlops")
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        root.propagate = False
        _configured = True
    return logging.getLogger(f"mlops.{name}")


def trace_id_from(headers: Mapping[str, str] | None) -> str | None:
    """The 32-hex trace id of a `traceparent` or `X-Cloud-Trace-Context` header
    (or message attribute), None when neither is there or well formed."""
    headers = {str(name).lower(): str(value) for name, value in (headers or {}).items()}
    parent = _TRACEPARENT.match(headers.get(TRACE_ATTRIBUTE, "").strip().lower())
    if parent and parent.group(1) != "0" * 32:
        return parent.group(1)
    cloud = _CLOUD_TRACE.match(headers.get("x-cloud-trace-context", "").strip())
    if cloud and cloud.group(1) != "0" * 32:
        return cloud.group(1).lower()
    return None


def current_trace_id() -> str | None:
    trace = _current_trace.get()
    return trace[1] if trace else None


def traceparent() -> dict[str, str]:
    """The attribute that carries the bound trace into a published message."""
    trace_id = current_trace_id()
    return {TRACE_ATTRIBUTE: f"00-{trace_id}-{secrets.token_hex(8)}-01"} if trace_id else {}


@contextlib.contextmanager
def trace_context(headers: Mapping[str, str] | None, project: str) -> Iterator[str]:
    """Bind the trace of `headers` (or a new one) to every line logged inside."""
    trace_id = trace_id_from(headers) or secrets.token_hex(16)
    token = _current_trace.set((project or "local", trace_id))
    try:
        yield trace_id
    finally:
        _current_trace.reset(token)
