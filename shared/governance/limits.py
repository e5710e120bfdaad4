"""Per-caller limits on labelling: how many outcomes one caller may send per hour.

Counted in the prediction store (`count_outcome_request`: an atomic
increment per caller and UTC hour), so every instance of `record_outcome`
shares the count. A refused request counts too: a caller that keeps
hammering stays refused until the hour turns. The default
(OUTCOMES_PER_CALLER_PER_HOUR = 2000) is far above a clinic's pace; the
issue-26 attack sent 300 in 0.4 s.
"""

from __future__ import annotations

from datetime import datetime, timezone

from shared.errors import TooManyRequests


def admit_outcome(store, caller: str, now: datetime, max_per_hour: int) -> int:
    """Count this request; raise TooManyRequests (429) past the limit. Returns the count."""
    count = store.count_outcome_request(now.astimezone(timezone.utc).strftime("%Y%m%d%H"), caller)
    if count > max_per_hour:
        raise TooManyRequests(f"{caller} has sent more than {max_per_hour} outcomes this hour "
                              "(OUTCOMES_PER_CALLER_PER_HOUR); try again next hour", field="authorization")
    return count
