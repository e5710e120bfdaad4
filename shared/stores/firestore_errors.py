"""How both Firestore adapters turn a store that does not answer into `StoreUnavailable`."""

from __future__ import annotations

from contextlib import contextmanager

from shared.errors import StoreUnavailable


@contextmanager
def unavailable_on_failure(store: str):
    """Map transport failures (down, too slow, retries exhausted, refused) to a 503-able error."""
    from google.api_core import exceptions

    try:
        yield
    except (exceptions.ServiceUnavailable, exceptions.DeadlineExceeded, exceptions.RetryError,
            exceptions.InternalServerError, exceptions.TooManyRequests) as error:
        raise StoreUnavailable(f"{store} unavailable: {type(error).__name__}") from None
    except OSError as error:  # connection refused / reset before the client could answer
        raise StoreUnavailable(f"{store} unreachable: {type(error).__name__}") from None
