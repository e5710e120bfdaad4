"""The caller of a request is the `email` claim of its (already verified) ID token."""

import base64
import json

import pytest

from shared.errors import ValidationError
from shared.governance.caller import ANONYMOUS, caller_from_headers


def token(payload, signature: str = "SIGNATURE_REMOVED_BY_GOOGLE") -> str:
    def part(document) -> str:
        raw = document if isinstance(document, bytes) else json.dumps(document).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(payload)}.{signature}"


def test_the_email_claim_names_the_caller_whatever_the_signature():
    bearer = "Bearer " + token({"email": "Nurse@Clinic.example", "sub": "1"})
    assert caller_from_headers({"Authorization": bearer}) == "nurse@clinic.example"


def test_x_serverless_authorization_wins_over_authorization():
    headers = {"X-Serverless-Authorization": "Bearer " + token({"email": "app@clinic.example"}),
               "Authorization": "Bearer " + token({"email": "other@clinic.example"})}
    assert caller_from_headers(headers) == "app@clinic.example"


def test_no_token_is_anonymous():
    assert caller_from_headers({}) == ANONYMOUS
    assert caller_from_headers({"Authorization": "Bearer " + token({"sub": "1"})}) == ANONYMOUS


@pytest.mark.parametrize("value", [
    "Basic dXNlcjpwYXNz", "Bearer", "Bearer a.b", "Bearer !!!.***.x", "Bearer " + token([1, 2]),
    "Bearer " + token({"email": 5}), "Bearer " + token({"email": "no-at-sign"}),
    "Bearer " + token(b"\xff\xfe"), "Bearer " + token({"email": "a@b" + "x" * 300}),
])
def test_a_malformed_token_is_a_400_naming_its_header(value):
    with pytest.raises(ValidationError) as raised:
        caller_from_headers({"Authorization": value})
    assert raised.value.field == "authorization" and raised.value.status == 400
