"""Where a detected change began (`retrain_wait.decide`'s `changed_since`): the
first drifted window's start, kept while the wait lasts, and only for input
drift -- the retrain it requests weighs older labels down (`training_data`)."""

from shared.monitoring.retrain_wait import decide


def night(number: int, *, region_labels: int | None, degraded: bool = False) -> dict:
    return {"report_id": f"night-{number}", "created_at": f"2026-01-{number + 1:02d}T00:00:00+00:00",
            "window_start": f"2026-01-{number:02d}T00:00:00Z", "window_end": f"2026-01-{number + 1:02d}T00:00:00Z",
            "changed_region": {"feature": "heart_rate", "labels": region_labels} if region_labels else None,
            "performance": {"status": "degraded" if degraded else "ok", "outcomes": 800}}


def test_the_change_began_at_the_first_drifted_window_and_stays_there():
    publish, wait = decide(night(11, region_labels=250), None, min_labels=600, max_nights=1)
    assert not publish and wait["changed_since"] == "2026-01-11T00:00:00Z"
    publish, wait = decide(night(12, region_labels=200), wait, min_labels=600, max_nights=1)
    assert publish and wait["changed_since"] == "2026-01-11T00:00:00Z"  # not night 12's start
    # a refused retrain's champion asked again later: still the same change
    _, wait = decide(night(14, region_labels=900), wait, min_labels=600, max_nights=1)
    assert wait["changed_since"] == "2026-01-11T00:00:00Z"
    # an earlier window checked late (a backfill) that drifted too: the change began there
    _, wait = decide(night(9, region_labels=50), wait, min_labels=600, max_nights=1)
    assert wait["changed_since"] == "2026-01-09T00:00:00Z"


def test_degraded_outcomes_alone_name_no_change_time():
    publish, wait = decide(night(14, region_labels=None, degraded=True), None, min_labels=600, max_nights=1)
    assert publish and wait["changed_since"] is None
    # a wait that was cleared starts afresh
    _, wait = decide(night(20, region_labels=100), dict(wait, status="cleared"), min_labels=600, max_nights=1)
    assert wait["changed_since"] == "2026-01-20T00:00:00Z"
