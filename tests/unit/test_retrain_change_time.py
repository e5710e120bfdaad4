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


def test_a_follow_up_published_on_a_report_whose_wait_did_not_publish_keeps_its_own_change_time(tmp_path):
    """The report's own wait may be waiting on a later change; the follow-up it
    publishes comes after the first one (review 3: everything since the
    original change was capped as "pre-change")."""
    from shared import wiring
    from shared.event_bus.messages import BusMessage
    from shared.stores.metadata.port import DRIFT_REPORTS, TRAINING_REQUESTS
    from shared.stores.metadata.sqlite import SqliteMetadataStore
    from shared.stores.sqlite_database import SqliteDatabase
    from shared.training.retrain_handler import handle_retrain_message

    class NoLauncher:
        def launch(self, key: str) -> str:
            return "not-started"

    metadata = SqliteMetadataStore(SqliteDatabase(tmp_path / "metadata.sqlite3"))

    def trigger(report_id: str, wait_status: str) -> dict:
        metadata.put(DRIFT_REPORTS, report_id, dict(
            night(20, region_labels=100), report_id=report_id,
            retrain_wait={"status": wait_status, "changed_since": "2026-01-20T00:00:00Z"},
            retrain_follow_up={"status": "published", "changed_since": "2026-01-11T00:00:00Z"}))
        message = BusMessage({"report_id": report_id}, {}, f"m-{report_id}")
        handle_retrain_message(message, metadata=metadata, launcher=NoLauncher(), settings=wiring.settings(),
                               now=message.publish_time)
        return metadata.get(TRAINING_REQUESTS, f"retrain-{report_id}")["request"]["trigger"]

    assert trigger("waiting", "waiting")["changed_since"] == "2026-01-11T00:00:00Z"  # the follow-up's
    assert trigger("published", "published")["changed_since"] == "2026-01-20T00:00:00Z"  # its own retrain's
