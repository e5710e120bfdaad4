"""The follow-up retrain (`shared/monitoring/retrain_rules.py`): a retrain that
went ahead short of labels is followed by exactly one more once they are there."""

from types import SimpleNamespace

import pytest

from shared.monitoring.retrain_rules import FOLLOW_UP, retrain_rule
from shared.monitoring.retrain_wait import RETRAIN_WAITS
from shared.stores.metadata.sqlite import SqliteMetadataStore
from shared.stores.sqlite_database import SqliteDatabase

SETTINGS = SimpleNamespace(retrain_min_changed_labels=600, retrain_max_wait_nights=1)


@pytest.fixture
def metadata(tmp_path):
    return SqliteMetadataStore(SqliteDatabase(tmp_path / "metadata.sqlite3"))


def night(number: int, *, drift: bool, region_labels: int | None = None, outcomes: int = 400,
          degraded: bool = False) -> dict:
    return {"report_id": f"night-{number}", "created_at": f"2026-01-{number:02d}T00:00:00+00:00",
            "window_end": f"2026-01-{number + 1:02d}T00:00:00Z", "decision": "drift" if drift else "ok",
            "reasons": [], "changed_region": {"feature": "heart_rate", "labels": region_labels} if region_labels
            else None, "performance": {"status": "degraded" if degraded else "ok", "outcomes": outcomes}}


def test_a_retrain_short_of_labels_is_followed_by_one_more_once_they_are_there(metadata):
    assert not retrain_rule(night(11, drift=True, region_labels=100), "A", metadata, SETTINGS)
    # out of patience with 250 of 600: the retrain goes ahead, and a follow-up is noted
    assert retrain_rule(night(12, drift=True, region_labels=150), "A", metadata, SETTINGS)
    follow_up = metadata.get(RETRAIN_WAITS, FOLLOW_UP)
    assert follow_up["status"] == "pending" and follow_up["labels"] == 250 and follow_up["needed"] == 600
    assert follow_up["share"] == pytest.approx(250 / 800)
    # the old champion's later reports do not count (its retrain was not promoted yet)
    assert not retrain_rule(night(13, drift=False, outcomes=4000), "A", metadata, SETTINGS)
    # B, promoted from that retrain, sees no drift; its outcomes bring the region's labels
    waiting = night(14, drift=False, outcomes=800)
    assert not retrain_rule(waiting, "B", metadata, SETTINGS)
    assert waiting["retrain_follow_up"]["estimated_labels"] == 500
    assert waiting["reasons"] == ["follow-up retrain waits for labels: about 500 of 600 in the changed region"]
    due = night(15, drift=False, outcomes=400)
    assert retrain_rule(due, "B", metadata, SETTINGS)
    assert due["reasons"][0].startswith("follow-up retrain requested: about 625 labels in the changed region")
    assert metadata.get(RETRAIN_WAITS, "B")["evidence_until"] == due["window_end"]  # learnt from: not again
    # a redelivery of that night (its request may not have gone out) asks again; another night does not
    assert retrain_rule(night(15, drift=False, outcomes=400), "B", metadata, SETTINGS)
    # one follow-up only
    assert not retrain_rule(night(16, drift=False, outcomes=4000), "B", metadata, SETTINGS)


def test_a_retrain_with_enough_labels_or_another_reason_needs_no_follow_up(metadata):
    assert retrain_rule(night(11, drift=True, region_labels=700), "A", metadata, SETTINGS)
    assert metadata.get(RETRAIN_WAITS, FOLLOW_UP) is None
    assert not retrain_rule(night(12, drift=False, outcomes=4000), "B", metadata, SETTINGS)
    # short of labels, then degraded outcomes ask first: that retrain learns from the same labels
    assert not retrain_rule(night(13, drift=True, region_labels=100), "B", metadata, SETTINGS)
    assert retrain_rule(night(14, drift=True, region_labels=100), "B", metadata, SETTINGS)
    assert retrain_rule(night(15, drift=True, outcomes=100, degraded=True), "C", metadata, SETTINGS)
    assert metadata.get(RETRAIN_WAITS, FOLLOW_UP)["status"] == "settled"
    assert not retrain_rule(night(16, drift=False, outcomes=4000), "D", metadata, SETTINGS)


def test_the_follow_up_waits_until_the_changed_regions_labels_double(metadata):
    """A retrain that went ahead with 450 of 600 labels is followed at 900, not at 600:
    the waiting rule's 'asked again when they double', for the next champion."""
    assert not retrain_rule(night(11, drift=True, region_labels=200), "A", metadata, SETTINGS)
    assert retrain_rule(night(12, drift=True, region_labels=250), "A", metadata, SETTINGS)
    assert metadata.get(RETRAIN_WAITS, FOLLOW_UP)["needed"] == 900
    assert not retrain_rule(night(13, drift=False, outcomes=600), "B", metadata, SETTINGS)  # about 788
    assert retrain_rule(night(14, drift=False, outcomes=200), "B", metadata, SETTINGS)  # about 900


def test_the_follow_up_keeps_where_the_change_began(metadata):
    """Its retrain weighs the labels from before the change down like the first
    one (the report's `retrain_follow_up` says since when; the handler reads it)."""
    first = dict(night(11, drift=True, region_labels=100), window_start="2026-01-11T00:00:00Z")
    assert not retrain_rule(first, "A", metadata, SETTINGS)
    assert retrain_rule(dict(night(12, drift=True, region_labels=150), window_start="2026-01-12T00:00:00Z"),
                        "A", metadata, SETTINGS)
    assert metadata.get(RETRAIN_WAITS, FOLLOW_UP)["changed_since"] == "2026-01-11T00:00:00Z"
    due = night(15, drift=False, outcomes=2000)
    assert retrain_rule(due, "B", metadata, SETTINGS)
    assert due["retrain_follow_up"]["status"] == "published"
    assert due["retrain_follow_up"]["changed_since"] == "2026-01-11T00:00:00Z"


def drifted(number: int, **kwargs) -> dict:
    """A night whose inputs drifted (its window start is where the change began)."""
    return dict(night(number, drift=True, **kwargs), window_start=f"2026-01-{number:02d}T00:00:00Z")


def test_the_first_retrain_after_input_drift_is_followed_even_with_enough_labels(metadata):
    """It learnt from a night or two of the new population; the follow-up comes
    when the region's labels have doubled. One only, and none after a refusal."""
    assert retrain_rule(drifted(11, region_labels=700, outcomes=1000), "A", metadata, SETTINGS)
    follow_up = metadata.get(RETRAIN_WAITS, FOLLOW_UP)
    assert follow_up["status"] == "pending" and follow_up["needed"] == 1400
    assert not retrain_rule(night(12, drift=False, outcomes=900), "B", metadata, SETTINGS)  # about 1330
    assert retrain_rule(night(13, drift=False, outcomes=200), "B", metadata, SETTINGS)  # about 1470
    assert not retrain_rule(night(14, drift=False, outcomes=4000), "B", metadata, SETTINGS)


def test_a_retrain_asked_again_after_a_refusal_gets_no_follow_up(metadata):
    assert retrain_rule(drifted(11, region_labels=700), "A", metadata, SETTINGS)  # refused: A still serves
    assert not retrain_rule(drifted(12, region_labels=300), "A", metadata, SETTINGS)
    assert retrain_rule(drifted(13, region_labels=500), "A", metadata, SETTINGS)  # 1,500: doubled, asked again
    assert metadata.get(RETRAIN_WAITS, FOLLOW_UP)["status"] == "settled"  # it learns from those labels
    assert not retrain_rule(night(14, drift=False, outcomes=4000), "B", metadata, SETTINGS)
    assert not retrain_rule(night(15, drift=False, outcomes=4000), "B", metadata, SETTINGS)


def test_degraded_outcomes_alone_ask_at_once_and_get_no_follow_up(metadata):
    assert not retrain_rule(drifted(10, region_labels=100), "A", metadata, SETTINGS)  # the change began here
    assert retrain_rule(night(11, drift=True, degraded=True), "A", metadata, SETTINGS)  # no changed region
    assert metadata.get(RETRAIN_WAITS, FOLLOW_UP) is None


def test_degraded_outcomes_where_the_inputs_drifted_wait_for_the_changed_regions_labels(metadata):
    """The labels that can mend them are the changed region's: the loop's retrain on
    the first shifted night was refused and used up the one retrain after the first."""
    first = drifted(11, region_labels=100, degraded=True)
    assert not retrain_rule(first, "A", metadata, SETTINGS)
    assert first["retrain_wait"]["message"].startswith("waiting for labels: 100 of 600")
    assert retrain_rule(drifted(12, region_labels=150, degraded=True), "A", metadata, SETTINGS)  # out of patience
    assert metadata.get(RETRAIN_WAITS, FOLLOW_UP)["status"] == "pending"  # a retrain after input drift


def test_degraded_outcomes_with_drift_wait_at_most_the_drift_waits_nights_after_a_refused_retrain(metadata):
    """After a refused retrain a degraded champion with a changed region waited
    until the region's labels doubled: without bound, if they never come (review 3)."""
    settings = SimpleNamespace(retrain_min_changed_labels=600, retrain_max_wait_nights=2)
    assert not retrain_rule(drifted(10, region_labels=100, degraded=True), "A", metadata, settings)
    assert not retrain_rule(drifted(11, region_labels=100, degraded=True), "A", metadata, settings)
    assert retrain_rule(drifted(12, region_labels=100, degraded=True), "A", metadata, settings)  # refused
    waiting = drifted(13, region_labels=10, degraded=True)
    assert not retrain_rule(waiting, "A", metadata, settings)
    assert "night 1 of at most 2" in waiting["retrain_wait"]["message"]
    asked = drifted(14, region_labels=10, degraded=True)
    assert retrain_rule(asked, "A", metadata, settings)  # 320 of 600 labels: asked again, out of patience
    assert "waited 2 of 2 nights since the last request" in asked["retrain_wait"]["message"]
    assert not asked["retrain_wait"]["short_of_labels"]  # asked again: no follow-up of its own
    assert metadata.get(RETRAIN_WAITS, FOLLOW_UP)["status"] == "settled"
    # drift alone keeps waiting for the doubled labels: the same evidence trains the same refused model
    assert not retrain_rule(drifted(15, region_labels=10), "A", metadata, settings)
    assert not retrain_rule(drifted(16, region_labels=10), "A", metadata, settings)
