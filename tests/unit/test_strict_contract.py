"""One strict contract: ASCII decimal numbers, no duplicated or unknown
fields, ids and labels refused with their own reason, HEAD as GET."""

import json

import pytest

from shared.errors import MethodNotAllowed, ValidationError
from shared.schema import LABELS, parse_number
from shared.serving.http_contract import (
    allowed_methods,
    parse_history_query,
    parse_outcome_request,
    parse_predict_request,
    require_method,
)

VALID = {"temperature": 36.6, "heart_rate": 80, "blood_pressure": 120}
PREDICTION_ID = "b34425dd0877488abdf708512a5fb32a"


def predict_body(body: bytes):
    return parse_predict_request("POST", {}, "application/json", body, max_batch=10, max_body_bytes=100_000)


def refusal(call, *args):
    with pytest.raises(ValidationError) as caught:
        call(*args)
    return caught.value


@pytest.mark.parametrize("text", ["3_6", "٣٦", "３６", "36\u00a0", "\u200336", "0x24", "36,6", "+-36", "3 6", "36e",
                                  "1_0e1"])
def test_only_ascii_decimal_numbers_are_numbers(text):
    error = refusal(parse_number, text, "temperature")
    assert (error.code, error.field) == ("not_a_number", "temperature")


@pytest.mark.parametrize("text, expected", [("36." + "0" * 30, 36.0), ("3.66e1", 36.6), ("+36", 36.0), (" 36\t", 36.0),
                                            ("36.", 36.0), ("036.50", 36.5)])
def test_long_or_exponent_decimals_are_numbers(text, expected):
    assert parse_number(text, "temperature") == expected


def test_a_number_longer_than_the_limit_says_so():
    error = refusal(parse_number, "36." + "0" * 200, "temperature")
    assert error.code == "too_long" and "100" in error.message


@pytest.mark.parametrize("body, field", [
    (b'{"temperature": 36, "temperature": 37, "heart_rate": 80, "blood_pressure": 120}', "temperature"),
    (b'{"instances": [{"temperature": 36, "heart_rate": 80, "heart_rate": 81, "blood_pressure": 120}]}',
     "heart_rate"),
    (b'{"instances": [], "instances": [{"temperature": 36, "heart_rate": 80, "blood_pressure": 120}]}',
     "instances"),
])
def test_duplicated_json_keys_are_refused_as_in_the_query(body, field):
    error = refusal(predict_body, body)
    assert (error.code, error.field) == ("duplicate_field", field)


@pytest.mark.parametrize("document, field", [
    (dict(VALID, patient="x"), "patient"),
    ({"instances": [VALID], "model": "v2"}, "model"),
    ({"instances": [dict(VALID, unit="F")]}, "instances[0].unit"),
])
def test_unknown_fields_are_refused_by_name(document, field):
    error = refusal(predict_body, json.dumps(document).encode())
    assert (error.code, error.field) == ("unknown_field", field)


def test_unknown_query_parameters_are_refused_by_name():
    query = {name: [str(value)] for name, value in VALID.items()} | {"callback": ["x"]}
    with pytest.raises(ValidationError) as caught:
        parse_predict_request("GET", query, None, b"", max_batch=10, max_body_bytes=1000)
    assert (caught.value.code, caught.value.field) == ("unknown_field", "callback")
    with pytest.raises(ValidationError) as caught:
        parse_history_query("GET", {"limit": ["5"], "page": ["2"]})
    assert (caught.value.code, caught.value.field) == ("unknown_field", "page")


@pytest.mark.parametrize("document, field, code", [
    ({"prediction_id": PREDICTION_ID}, "label", "missing_field"),
    ({"prediction_id": PREDICTION_ID, "label": None}, "label", "missing_field"),
    ({"prediction_id": PREDICTION_ID, "label": 3}, "label", "not_a_string"),
    ({"prediction_id": PREDICTION_ID, "label": "SICK"}, "label", "unknown_label"),
    ({"label": LABELS[0]}, "prediction_id", "missing_field"),
    ({"prediction_id": "", "label": LABELS[0]}, "prediction_id", "missing_field"),
    ({"prediction_id": 12345, "label": LABELS[0]}, "prediction_id", "not_a_string"),
    ({"prediction_id": "a" * 5000, "label": LABELS[0]}, "prediction_id", "invalid_id"),
    ({"prediction_id": "a/b", "label": LABELS[0]}, "prediction_id", "invalid_id"),
    ({"prediction_id": "__x__", "label": LABELS[0]}, "prediction_id", "invalid_id"),
    ({"prediction_id": PREDICTION_ID, "label": LABELS[0], "note": "x"}, "note", "unknown_field"),
])
def test_outcome_fields_are_refused_with_their_own_reason(document, field, code):
    error = refusal(parse_outcome_request, "POST", "application/json", json.dumps(document).encode(), 10_000)
    assert (error.field, error.code) == (field, code)


def test_a_valid_outcome_passes():
    body = json.dumps({"prediction_id": PREDICTION_ID, "label": LABELS[3]}).encode()
    assert parse_outcome_request("POST", "application/json", body, 10_000) == (PREDICTION_ID, LABELS[3])


def test_head_is_served_where_get_is_and_options_lists_the_methods():
    require_method("HEAD", ("GET",))
    with pytest.raises(MethodNotAllowed):
        require_method("HEAD", ("POST",))
    assert allowed_methods(("GET", "POST")) == ("GET", "HEAD", "POST", "OPTIONS")
    assert allowed_methods(("POST",)) == ("POST", "OPTIONS")
    assert parse_history_query("HEAD", {"limit": ["5"]}) == (5, None)
    query = {name: [str(value)] for name, value in VALID.items()}
    assert parse_predict_request("HEAD", query, None, b"", max_batch=1, max_body_bytes=10).instances[0].temperature \
        == 36.6
