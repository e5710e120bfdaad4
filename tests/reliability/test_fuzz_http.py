"""Property-based fuzz of every HTTP function: whatever arrives -- random
query strings, bodies, content types, methods, huge numbers, unicode,
duplicated parameters, deeply nested JSON, bodies over the limit -- the
answer is never a 5xx, every 4xx carries the JSON error shape, and nothing is
logged for a refused request."""

import json
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import wiring
from tests.conftest import register_model
from tests.integration.functions_client import client

TARGETS = ["predict", "predictions_history", "model_metadata", "record_outcome"]
FIELDS = ["temperature", "heart_rate", "blood_pressure", "limit", "cursor", "instances", "label", "prediction_id"]

numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["36.6", "1e308", "1e999", "-0", "NaN", "inf", "0x10", "٣٦", "36,6", " 37 ", "", "null"]),
    st.text(max_size=40),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=20)),
    lambda children: st.one_of(st.lists(children, max_size=5),
                               st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=10), children, max_size=5)),
    max_leaves=30,
)
query_pairs = st.lists(st.tuples(st.sampled_from(FIELDS) | st.text(max_size=10), numbers.map(str)), max_size=8)
bodies = st.one_of(
    json_values.map(lambda value: json.dumps(value).encode()),
    st.builds(lambda items: json.dumps({"instances": items}).encode(),
              st.lists(st.dictionaries(st.sampled_from(FIELDS), numbers, max_size=4), max_size=20)),
    st.binary(max_size=300),
    st.integers(min_value=1, max_value=3000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.just(b'{"temperature": ' + b"9" * 5000 + b"}"),
    st.just(b" " * 300_000),
)
content_types = st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain",
                                 "application/x-www-form-urlencoded", "multipart/form-data", "", "application/JSON"])
methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])


@pytest.fixture
def fuzz_environment(trained_candidate):
    """Set up once per test function; hypothesis runs every example inside it."""
    register_model(wiring.artifact_store(), trained_candidate, metadata=wiring.metadata_store())
    return {target: client(target) for target in TARGETS}


def check_response(response, method: str) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if response.status_code >= 400 and method != "HEAD":
        error = response.get_json()["error"]
        assert set(error) == {"code", "message", "field"} and error["code"] and error["message"]


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(target=st.sampled_from(TARGETS), method=methods, pairs=query_pairs, body=bodies, content_type=content_types)
def test_no_input_makes_a_5xx(fuzz_environment, target, method, pairs, body, content_type):
    test_client = fuzz_environment[target]
    before = wiring.prediction_store().count()
    response = test_client.open("/?" + urlencode(pairs), method=method, data=body,
                                headers={"Content-Type": content_type} if content_type else {})
    check_response(response, method)
    after = wiring.prediction_store().count()
    if response.status_code != 200 or target != "predict" or method == "HEAD":
        assert after == before  # refused requests, and HEAD (no prediction answered), leave no record
    else:
        answered = response.get_json()
        assert after - before == len(answered.get("predictions", [answered]))
