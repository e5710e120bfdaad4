"""Trace ids in log lines: parsed from either header format, bound per request."""

import io
import json
import logging

import pytest

from shared.structured_logging import (
    TRACE_FIELD,
    JsonFormatter,
    current_trace_id,
    get_logger,
    trace_context,
    trace_id_from,
    traceparent,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize("headers, expected", [
    ({"X-Cloud-Trace-Context": f"{TRACE}/1;o=1"}, TRACE),
    ({"x-cloud-trace-context": TRACE.upper()}, TRACE),
    ({"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"}, TRACE),
    ({"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01", "X-Cloud-Trace-Context": "a" * 32}, TRACE),
    ({"traceparent": "garbage", "X-Cloud-Trace-Context": f"{TRACE}/7"}, TRACE),
    ({"traceparent": f"00-{'0' * 32}-00f067aa0ba902b7-01"}, None),
    ({"X-Cloud-Trace-Context": "not-hex"}, None),
    ({}, None),
    (None, None),
])
def test_trace_ids_are_read_from_either_header(headers, expected):
    assert trace_id_from(headers) == expected


@pytest.fixture
def log_lines():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = get_logger("trace-test")
    logging.getLogger("mlops").addHandler(handler)
    yield logger, lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logging.getLogger("mlops").removeHandler(handler)


def test_lines_inside_a_trace_carry_it_and_lines_outside_do_not(log_lines):
    logger, lines = log_lines
    with trace_context({"X-Cloud-Trace-Context": f"{TRACE}/1"}, "my-project") as trace_id:
        logger.info("inside")
        assert trace_id == current_trace_id() == TRACE
        assert traceparent()["traceparent"].startswith(f"00-{TRACE}-")
    logger.info("outside")
    inside, outside = lines()
    assert inside[TRACE_FIELD] == f"projects/my-project/traces/{TRACE}"
    assert TRACE_FIELD not in outside and traceparent() == {}


def test_a_request_without_a_trace_header_gets_a_fresh_trace(log_lines):
    logger, lines = log_lines
    with trace_context({}, "") as first:
        logger.info("one")
    with trace_context({}, "") as second:
        logger.info("two")
    assert first != second and len(first) == 32
    assert [line[TRACE_FIELD] for line in lines()] == [f"projects/local/traces/{first}",
                                                       f"projects/local/traces/{second}"]
