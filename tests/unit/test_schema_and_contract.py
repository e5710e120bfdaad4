import json
import math

import pytest

from shared.errors import MethodNotAllowed, PayloadTooLarge, UnsupportedMediaType, ValidationError
from shared.schema import LABELS, parse_number, parse_vitals
from shared.serving.http_contract import parse_history_query, parse_outcome_request, parse_predict_request

VALID = {"temperature": "36.6", "heart_rate": "80", "blood_pressure": "120"}


def query(values: dict) -> dict:
    return {name: [value] for name, value in values.items()}


def parse(method="GET", q=None, content_type=None, body=b"", max_batch=1000):
    return parse_predict_request(method, q or {}, content_type, body, max_batch=max_batch, max_body_bytes=10_000)


def test_labels_are_the_public_contract():
    assert LABELS == ("NO ENFERMO", "ENFERMEDAD LEVE", "ENFERMEDAD AGUDA", "ENFERMEDAD CRÓNICA",
                      "ENFERMEDAD TERMINAL")


@pytest.mark.parametrize("value, expected", [("36", 36.0), (" 38.5 ", 38.5), (37, 37.0), (25, 25.0), (45.0, 45.0)])
def test_parse_number_accepts_plausible_values(value, expected):
    assert parse_number(value, "temperature") == expected


@pytest.mark.parametrize("value, code", [
    (None, "missing_field"), ("", "missing_field"), ("abc", "not_a_number"), ("nan", "not_finite"),
    ("inf", "not_finite"), ("-Infinity", "not_finite"), (math.nan, "not_finite"), (True, "not_a_number"),
    ([36], "not_a_number"), ({"v": 1}, "not_a_number"), ("24.9", "out_of_range"), (45.1, "out_of_range"),
    ("1" * 40, "out_of_range"), ("1" * 101, "too_long"), (10**400, "not_finite"),
])
def test_parse_number_refuses_bad_values_naming_the_field(value, code):
    with pytest.raises(ValidationError) as caught:
        parse_number(value, "temperature")
    assert caught.value.code == code
    assert caught.value.field == "temperature"


@pytest.mark.parametrize("field, low, high", [("heart_rate", 20, 250), ("blood_pressure", 40, 300)])
def test_ranges_are_inclusive_and_enforced(field, low, high):
    assert parse_number(low, field) == low and parse_number(high, field) == high
    for outside in (low - 0.1, high + 0.1):
        with pytest.raises(ValidationError):
            parse_number(outside, field)


def test_query_string_gives_one_instance_for_get_and_post():
    for method in ("GET", "POST"):
        request = parse(method, query(VALID))
        assert not request.batch
        assert request.instances[0].as_row() == [36.6, 80.0, 120.0]


def test_missing_query_field_is_named():
    with pytest.raises(ValidationError) as caught:
        parse("GET", query({"temperature": "36", "heart_rate": "80"}))
    assert caught.value.field == "blood_pressure"


def test_duplicated_query_parameter_is_refused():
    with pytest.raises(ValidationError) as caught:
        parse("GET", dict(query(VALID), temperature=["36", "37"]))
    assert caught.value.code == "duplicate_field"


def test_json_single_and_batch():
    single = parse("POST", content_type="application/json", body=json.dumps(VALID).encode())
    assert not single.batch and single.instances[0].temperature == 36.6
    batch = parse("POST", content_type="application/json; charset=utf-8",
                  body=json.dumps({"instances": [VALID, VALID, VALID]}).encode())
    assert batch.batch and len(batch.instances) == 3


def test_batch_errors_name_the_instance():
    body = json.dumps({"instances": [VALID, dict(VALID, heart_rate="999")]}).encode()
    with pytest.raises(ValidationError) as caught:
        parse("POST", content_type="application/json", body=body)
    assert caught.value.field == "instances[1].heart_rate"
    assert caught.value.code == "out_of_range"


def test_batch_over_the_limit_is_413():
    body = json.dumps({"instances": [VALID] * 4}).encode()
    with pytest.raises(PayloadTooLarge):
        parse("POST", content_type="application/json", body=body, max_batch=3)


@pytest.mark.parametrize("body", [b"{", b"[1, 2]", b'"text"', b"\xff\xfe", b"[" * 50_00 + b"]" * 50_00,
                                  b'{"instances": []}', b'{"instances": {"a": 1}}'])
def test_malformed_bodies_are_400(body):
    with pytest.raises(ValidationError) as caught:
        parse_predict_request("POST", {}, "application/json", body, max_batch=10, max_body_bytes=100_000)
    assert not isinstance(caught.value, PayloadTooLarge)


def test_wrong_content_type_and_method_and_size():
    with pytest.raises(UnsupportedMediaType):
        parse("POST", content_type="text/plain", body=json.dumps(VALID).encode())
    with pytest.raises(MethodNotAllowed):
        parse("DELETE", query(VALID))
    with pytest.raises(PayloadTooLarge):
        parse_predict_request("POST", {}, "application/json", b" " * 20 + b"{}", max_batch=1, max_body_bytes=10)


def test_inputs_in_both_query_and_body_are_ambiguous():
    with pytest.raises(ValidationError) as caught:
        parse("POST", query(VALID), "application/json", json.dumps(VALID).encode())
    assert caught.value.code == "ambiguous_input"


def test_parse_vitals_refuses_non_objects():
    with pytest.raises(ValidationError) as caught:
        parse_vitals([1, 2, 3], field_prefix="instances[0].")
    assert caught.value.field == "instances[0]"


def test_history_query_limits():
    assert parse_history_query("GET", {}) == (50, None)
    assert parse_history_query("GET", {"limit": ["500"], "cursor": ["abc"]}) == (500, "abc")
    for bad in ("0", "501", "ten", "1.5"):
        with pytest.raises(ValidationError) as caught:
            parse_history_query("GET", {"limit": [bad]})
        assert caught.value.field == "limit"


def test_outcome_request():
    body = json.dumps({"prediction_id": "abc", "label": "ENFERMEDAD LEVE"}).encode()
    assert parse_outcome_request("POST", "application/json", body, 1000) == ("abc", "ENFERMEDAD LEVE")
    with pytest.raises(ValidationError) as caught:
        body = json.dumps({"prediction_id": "a", "label": "SICK"}).encode()
        parse_outcome_request("POST", "application/json", body, 1000)
    assert caught.value.field == "label"
    with pytest.raises(ValidationError) as caught:
        parse_outcome_request("POST", "application/json", json.dumps({"label": LABELS[0]}).encode(), 1000)
    assert caught.value.field == "prediction_id"
