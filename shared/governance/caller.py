"""Who sent a request: the `email` claim of its bearer ID token.

On Cloud Run the platform verifies the token before the function runs and
forwards it with its signature replaced by `SIGNATURE_REMOVED_BY_GOOGLE`, so
the payload is read here, never re-verified (there is nothing left to verify).
Under `make run` the token is read the same way, unverified: locally anyone
can claim any email, which is acceptable on a developer's machine only.

A caller's email is a staff or service identity, not a patient's: it is
stored with each outcome (see SECURITY.md, "What is stored").
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping

from shared.errors import ValidationError

ANONYMOUS = "anonymous"
# Cloud Run lets a caller put its token here when Authorization carries another one.
HEADERS = ("X-Serverless-Authorization", "Authorization")
MAX_CALLER_LENGTH = 254  # the longest valid email address


def caller_from_headers(headers: Mapping[str, str]) -> str:
    """The caller's email, `anonymous` without a token; a malformed token is a 400 naming its header."""
    for name in HEADERS:
        value = headers.get(name)
        if value:
            return caller_from_authorization(value, name)
    return ANONYMOUS


def caller_from_authorization(value: str, header: str) -> str:
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _malformed(header, "expected 'Bearer <ID token>'")
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise _malformed(header, "an ID token has three dot-separated parts")
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _malformed(header, "the token's payload is not base64url JSON") from None
    if not isinstance(payload, dict):
        raise _malformed(header, "the token's payload is not a JSON object")
    email = payload.get("email")
    if email is None:
        return ANONYMOUS  # a token without an email claim (an identity without one) names no one
    if not isinstance(email, str) or not 3 <= len(email) <= MAX_CALLER_LENGTH or "@" not in email \
            or not email.isprintable():
        raise _malformed(header, "the token's email claim is not an email address")
    return email.lower()


def _malformed(header: str, detail: str) -> ValidationError:
    return ValidationError(f"malformed {header} header: {detail}", field=header.lower(),
                           code="invalid_token")
