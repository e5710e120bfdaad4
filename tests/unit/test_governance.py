"""Change control's measure and bounds, the quarantine's effective label, the
labeller signal: pure functions on tiny hand-made inputs."""

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from shared.governance.change_control import ChangeBounds, answer_change, breaches, measure_change
from shared.governance.labellers import labeller_agreement
from shared.governance.quarantine import effective_label, filter_chunk
from shared.records import WindowChunk

LABELS = ["A", "B"]
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_answer_change_counts_each_region_that_changed():
    change = answer_change(["A", "A", "B", "B"], ["A", "B", "B", "A"])
    assert change == {"rows": 4, "changed": 2, "share": 0.5, "regions": {"A → B": 1, "B → A": 1}}


def test_measure_change_reports_recall_change_on_trusted_rows_and_answer_change_on_recent_inputs():
    X = np.arange(8).reshape(-1, 1)
    y = np.array(["A"] * 4 + ["B"] * 4, dtype=object)
    champion = lambda rows: np.where(rows[:, 0] < 4, "A", "B")  # noqa: E731 -- right on every row
    challenger = lambda rows: np.where(rows[:, 0] < 2, "A", "B")  # noqa: E731 -- half of A is now B
    change = measure_change(champion, challenger, LABELS, trusted=(X, y), recent_inputs=X[:4])
    assert change["trusted"]["recall_change"] == {"A": -0.5, "B": 0.0}
    assert change["trusted"]["share"] == pytest.approx(0.25) and change["recent_inputs"]["share"] == 0.5


@pytest.mark.parametrize("share, drop, held", [(0.1, 0.2, False), (0.1001, 0.0, True), (0.0, 0.2001, True)])
def test_bounds_are_inclusive_and_each_one_holds_on_its_own(share, drop, held):
    change = {"recent_inputs": {"share": share}, "trusted": {"share": 0.0, "recall_change": {"A": -drop, "B": 0.3}}}
    assert bool(breaches(change, ChangeBounds(max_answer_change=0.1, max_trusted_recall_drop=0.2))) is held


def test_the_effective_label_skips_quarantined_entries_by_time():
    history = [{"label": "A", "caller": "clinician", "at": T0},
               {"label": "B", "caller": "attacker", "at": T0 + timedelta(hours=1)}]
    since = {"attacker": T0 + timedelta(minutes=30)}
    assert effective_label("B", "attacker", T0 + timedelta(hours=2), history, since) == "A"
    assert effective_label("B", "attacker", T0 + timedelta(hours=2), history, {}) == "B"
    # labels sent before the quarantine's start still count
    assert effective_label("B", "attacker", T0 + timedelta(minutes=10), [], since) == "B"
    assert effective_label("B", "attacker", T0 + timedelta(hours=1), [], since) is None


def test_filter_chunk_drops_rows_left_unlabelled_only_when_asked():
    chunk = WindowChunk(np.zeros((2, 3)), ["A", "A"], ["B", "A"], outcome_callers=["attacker", "clinician"],
                        outcome_times=[T0, T0], outcome_histories=[[], []])
    since = {"attacker": T0 - timedelta(days=1)}
    assert filter_chunk(chunk, since, keep_unlabelled=False).outcomes == ["A"]
    assert filter_chunk(chunk, since, keep_unlabelled=True).outcomes == [None, "A"]


def test_filter_chunk_keeps_each_rows_version_probabilities_and_time_with_it():
    chunk = WindowChunk(np.zeros((2, 3)), ["A", "A"], ["B", "A"], model_versions=["v1", "v2"],
                        probabilities=np.array([[0.1, 0.9], [0.8, 0.2]]), outcome_callers=["attacker", "clinician"],
                        outcome_times=[T0, T0], outcome_histories=[[], []],
                        predicted_times=[T0 - timedelta(hours=2), T0 - timedelta(hours=1)])
    filtered = filter_chunk(chunk, {"attacker": T0 - timedelta(days=1)}, keep_unlabelled=False)
    assert filtered.model_versions == ["v2"]
    assert filtered.probabilities.tolist() == [[0.8, 0.2]]
    assert filtered.predicted_times == [T0 - timedelta(hours=1)]


def test_a_labeller_far_below_its_peers_is_flagged_and_honest_peers_are_not():
    answers = ["A"] * 60
    labels = ["A"] * 40 + ["B"] * 20
    callers = ["ana", "ben"] * 20 + ["mallory"] * 20
    chunk = WindowChunk(np.zeros((60, 3)), answers, labels, outcome_callers=callers)
    result = labeller_agreement([chunk])["callers"]
    assert [name for name, value in result.items() if value["flagged"]] == ["mallory"]
    assert result["mallory"]["agreement_with_champion"] == 0.0 and result["ana"]["agreement_with_peers"] == 1.0
