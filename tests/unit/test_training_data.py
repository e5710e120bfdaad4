"""The retrain's training data policy: the window, recent labels winning,
recency weights, the bootstrap fill, and the baseline's population."""

import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from shared.records import PredictionRecord
from shared.schema import LABELS
from shared.stores.predictions.sqlite import SqlitePredictionStore
from shared.stores.sqlite_database import SqliteDatabase
from shared.training.synthetic_data import generate_reference_data
from shared.training.training_data import (
    PRE_CHANGE_MAX_SHARE,
    LabelledRows,
    assemble_training_data,
    baseline_population,
    class_quotas,
    drop_contradicted,
    pre_change_factor,
    recency_weight,
)

NOW = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
HEALTHY, MILD, ACUTE = LABELS[0], LABELS[1], LABELS[2]


@pytest.fixture
def store(tmp_path):
    return SqlitePredictionStore(SqliteDatabase(tmp_path / "db.sqlite3"))


def labelled(store, rows, label: str, made: datetime, recorded: datetime, predicted: str = HEALTHY) -> None:
    records = [PredictionRecord(uuid.uuid4().hex, made, *map(float, row), predicted, {predicted: 1.0}, "v1")
               for row in rows]
    store.save_predictions(records)
    for record in records:
        store.record_outcome(record.prediction_id, label, recorded)


def assemble(store, min_rows=0, window_days=28, half_life_days=2.0):
    return assemble_training_data(predictions=store, artifacts=None, window_days=window_days, min_rows=min_rows,
                                  half_life_days=half_life_days, reference_rows=5000, seed=3, now=NOW)


def vitals(n, temperature=37.0, heart_rate=80.0, pressure=120.0, seed=0):
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.normal(temperature, 0.1, n), rng.normal(heart_rate, 2, n),
                            rng.normal(pressure, 3, n)]).round(1)


def test_the_window_counts_outcomes_by_when_they_were_recorded(store):
    labelled(store, vitals(5, seed=1), HEALTHY, made=NOW - timedelta(days=40), recorded=NOW - timedelta(days=2.5))
    labelled(store, vitals(7, seed=2), HEALTHY, made=NOW - timedelta(days=3), recorded=NOW - timedelta(days=1.5))
    labelled(store, vitals(9, seed=3), HEALTHY, made=NOW - timedelta(days=31), recorded=NOW - timedelta(days=28.5))
    data = assemble(store)
    assert len(data.y) == data.record["outcomes"]["rows"] == 12  # the 28.5-day-old outcomes are out
    assert data.record["outcomes"]["days"] == [1, 2]
    assert data.record["window"] == {"start": "2026-02-01T12:00:00Z", "end": "2026-03-01T12:00:00Z"}


def test_recent_labels_win_where_they_disagree_and_only_there(store):
    region = vitals(40, heart_rate=115, seed=4)
    elsewhere = vitals(40, heart_rate=60, seed=5)
    labelled(store, region, MILD, made=NOW - timedelta(days=9), recorded=NOW - timedelta(days=9))
    labelled(store, elsewhere, MILD, made=NOW - timedelta(days=9), recorded=NOW - timedelta(days=9))
    labelled(store, vitals(40, heart_rate=115, seed=6), ACUTE, made=NOW - timedelta(hours=5),
             recorded=NOW - timedelta(hours=1))
    data = assemble(store)
    kept_old = data.X[data.y == MILD]
    assert len(kept_old) == 40 and (kept_old[:, 1] < 90).all()  # the contradicted rows went, the rest stayed
    assert data.record["outcomes"]["dropped_as_contradicted"][MILD] == 40
    assert (data.y == ACUTE).sum() == 40


def test_older_rows_never_overrule_newer_ones_and_equals_keep_both():
    newer = LabelledRows("outcomes", 0, vitals(20, seed=7), np.array([ACUTE] * 20, dtype=object))
    older = LabelledRows("outcomes", 3, vitals(20, seed=8), np.array([MILD] * 20, dtype=object))
    kept = {(g.source, g.age_days): len(g) for g in drop_contradicted([older, newer])}
    assert kept == {("outcomes", 0): 20, ("outcomes", 3): 0}
    same_day = LabelledRows("lake", 0, vitals(20, seed=9), np.array([MILD] * 20, dtype=object))
    kept = {(g.source, g.age_days): len(g) for g in drop_contradicted([same_day, newer])}
    assert kept == {("outcomes", 0): 20, ("lake", 0): 20}


def test_weights_halve_every_half_life_and_reference_rows_weigh_least(store):
    assert recency_weight([0, 2, 4], 2.0).tolist() == [1.0, 0.5, 0.25]
    labelled(store, vitals(10, seed=10), HEALTHY, made=NOW - timedelta(days=5), recorded=NOW - timedelta(days=4.5))
    data = assemble(store, min_rows=500)
    production = data.weights[:data.production_rows]
    assert production.tolist() == [0.25] * 10
    assert np.allclose(data.weights[data.production_rows:], 0.5 ** 14)  # 28 days old
    assert data.record["weights"]["by_age_days"] == {"4": 0.25, "28": round(0.5 ** 14, 6)}


def test_reference_fills_each_class_up_to_its_quota_then_stops(store):
    quotas = class_quotas(1000, generate_reference_data(5000, seed=3)[1])
    labelled(store, vitals(100, seed=11), HEALTHY, made=NOW - timedelta(days=1), recorded=NOW - timedelta(days=1))
    data = assemble(store, min_rows=1000)
    fill = data.record["reference"]["rows_per_class"]
    for label in LABELS:
        expected = quotas[label] - (100 if label == HEALTHY else 0)
        assert fill[label] == pytest.approx(expected, abs=2), label  # a few may yield to production rows
    assert data.record["rows_per_class"][HEALTHY] == 100 + fill[HEALTHY]
    assert assemble(store, min_rows=0).record["reference"]["rows"] == 0


def test_no_reference_rows_once_production_labels_reach_the_quotas(store):
    X, y = generate_reference_data(3000, seed=12)
    for label in LABELS:
        labelled(store, X[y == label], label, made=NOW - timedelta(days=2), recorded=NOW - timedelta(days=2))
    data = assemble(store, min_rows=1000)
    assert data.record["reference"]["rows"] == 0 and data.production_rows == len(data.y) == 3000


def test_the_baseline_population_is_every_input_of_the_triggering_window(store):
    labelled(store, vitals(30, seed=13), HEALTHY, made=NOW - timedelta(hours=3), recorded=NOW)
    unlabelled = [PredictionRecord(uuid.uuid4().hex, NOW - timedelta(hours=2), 39.0, 120.0, 110.0, ACUTE, {},
                                   "v1") for _ in range(50)]
    store.save_predictions(unlabelled)
    before = [PredictionRecord(uuid.uuid4().hex, NOW - timedelta(days=2), 36.0, 60.0, 100.0, HEALTHY, {}, "v1")]
    store.save_predictions(before)
    request = {"window_start": (NOW - timedelta(hours=6)).isoformat(), "window_end": NOW.isoformat()}
    X, described = baseline_population(request, predictions=store, artifacts=None, default_hours=24, now=NOW)
    assert len(X) == 80 and described["rows"] == 80 and described["source"] == "predictions"
    assert described["labelled_share_by_prediction"] == {HEALTHY: 1.0, ACUTE: 0.0}  # how clinicians choose
    X, described = baseline_population({}, predictions=store, artifacts=None, default_hours=72, now=NOW)
    assert len(X) == 81  # no window in the request: the last DRIFT_WINDOW_HOURS



def labelled_by(store, rows, label: str, recorded: datetime, caller: str) -> None:
    records = [PredictionRecord(uuid.uuid4().hex, recorded - timedelta(hours=1), *map(float, row), HEALTHY,
                                {HEALTHY: 1.0}, "v1") for row in rows]
    store.save_predictions(records)
    for record in records:
        store.record_outcome(record.prediction_id, label, recorded, caller=caller)


def test_one_caller_trains_on_at_most_its_share_of_the_window_newest_labels_first(store):
    labelled_by(store, vitals(10, seed=1), HEALTHY, NOW - timedelta(days=1.5), "ana@clinic.example")
    labelled_by(store, vitals(10, seed=2), HEALTHY, NOW - timedelta(days=1.5), "ben@clinic.example")
    labelled_by(store, vitals(20, temperature=39.0, seed=3), MILD, NOW - timedelta(days=2.5), "flood@attacker.example")
    labelled_by(store, vitals(20, temperature=39.0, seed=4), MILD, NOW - timedelta(days=0.5), "flood@attacker.example")
    data = assemble_training_data(predictions=store, artifacts=None, window_days=28, min_rows=0, half_life_days=2.0,
                                  reference_rows=5000, seed=3, now=NOW, max_caller_share=0.25)
    callers = data.record["outcomes"]["callers"]
    assert callers["labels_per_caller"]["flood@attacker.example"] == 40
    assert callers["left_out_per_caller"] == {"flood@attacker.example": 25}  # 0.25 x 60 = 15 kept
    assert len(data.y) == 35 and list(data.y).count(MILD) == 15
    assert data.record["outcomes"]["days"] == [0, 1]  # the flood's older day is the one left out


def test_a_window_labelled_by_one_caller_only_is_trained_on_whole(store):
    labelled_by(store, vitals(30, seed=5), HEALTHY, NOW - timedelta(days=1.5), "clinical-app@clinic.example")
    data = assemble_training_data(predictions=store, artifacts=None, window_days=28, min_rows=0, half_life_days=2.0,
                                  reference_rows=5000, seed=3, now=NOW, max_caller_share=0.25)
    assert len(data.y) == 30 and data.record["outcomes"]["callers"]["left_out_per_caller"] == {}


def test_stationary_days_lose_almost_no_rows_to_recent_labels_win():
    """Nothing changed between days: ordinary overlap at class boundaries is not
    a contradiction (the 3-neighbour, 80 % rule dropped ~2 % of such rows)."""
    groups = [LabelledRows("lake", age, *generate_reference_data(600, seed=500 + age)) for age in range(12)]
    kept = drop_contradicted(groups)
    dropped = sum(sum(g.detail.get("dropped", {}).values()) for g in kept)
    assert sum(len(g) for g in kept) + dropped == 7200
    assert dropped / 7200 < 0.005


def test_a_changed_labelling_is_still_replaced_and_recorded_per_class():
    """The newest 3 days label heart rate 88-95 (NO ENFERMO before) as LEVE: the
    older rows of that band go, the rest of the older rows stay."""
    groups, bands = [], []
    for age in range(8):
        X, y = generate_reference_data(800, seed=600 + age)
        band = (y == HEALTHY) & (X[:, 1] >= 88) & (X[:, 1] < 95)
        if age < 3:
            y[band] = MILD
        groups.append(LabelledRows("lake", age, X, y))
        bands.append(band)
    kept = drop_contradicted(groups)
    older = [(group, band, kept_group) for group, band, kept_group in zip(groups, bands, kept) if group.age_days >= 3]
    band_rows = sum(int(band.sum()) for _, band, _ in older)
    dropped = sum(kept_group.detail["dropped"][HEALTHY] for _, _, kept_group in older)
    assert dropped >= 0.3 * band_rows
    assert sum(len(g) for g, _, _ in older) - sum(len(k) for _, _, k in older) == \
        sum(sum(k.detail["dropped"].values()) for _, _, k in older)


def test_after_a_detected_change_older_labels_carry_at_most_their_share(store):
    """The night after a shift the half-life alone leaves the old population most
    of the weight; a drift retrain's change time caps it (PRE_CHANGE_MAX_SHARE)."""
    changed_since = NOW - timedelta(days=1.5)
    for age in range(2, 20):  # the old population: one day's labels each day
        labelled(store, vitals(50, seed=100 + age), HEALTHY, made=NOW - timedelta(days=age + 0.7),
                 recorded=NOW - timedelta(days=age + 0.5))
    labelled(store, vitals(50, heart_rate=115, seed=99), ACUTE, made=NOW - timedelta(days=1.2),
             recorded=NOW - timedelta(hours=3))
    plain = assemble(store)
    before = np.where(plain.y == HEALTHY)[0]
    assert plain.weights[before].sum() / plain.weights.sum() > 0.5  # why the rule exists
    data = assemble_training_data(predictions=store, artifacts=None, window_days=28, min_rows=0,
                                  half_life_days=2.0, reference_rows=5000, seed=3, now=NOW,
                                  changed_since=changed_since)
    share = data.weights[data.y == HEALTHY].sum() / data.weights.sum()
    assert share == pytest.approx(PRE_CHANGE_MAX_SHARE)
    assert np.array_equal(data.weights[data.y == ACUTE], plain.weights[plain.y == ACUTE])  # new rows unchanged
    recorded = data.record["weights"]["pre_change"]
    assert recorded["changed_since"] == "2026-02-28T00:00:00Z" and recorded["rows_before"] == 18 * 50
    assert recorded["share_before"] == pytest.approx(PRE_CHANGE_MAX_SHARE)
    assert 0 < recorded["factor"] < 1
    assert plain.record["weights"]["pre_change"] is None


def test_after_a_detected_change_a_patient_seen_before_it_is_old_evidence_whenever_labelled(store):
    """The change time is where the inputs changed: a label given after it to a
    patient seen before it describes the old population (outcomes come up to
    48 h late). Counted as new by its recording day, such rows were 721 of the
    1,605 "new" labels of bench/loop_simulation.py's night-12 retrain."""
    changed_since = NOW - timedelta(days=1.5)
    for age in range(2, 20):
        labelled(store, vitals(50, seed=100 + age), HEALTHY, made=NOW - timedelta(days=age + 0.7),
                 recorded=NOW - timedelta(days=age + 0.5))
    labelled(store, vitals(60, seed=90), HEALTHY, made=NOW - timedelta(days=1.8),  # seen before, labelled after
             recorded=NOW - timedelta(hours=5))
    labelled(store, vitals(50, heart_rate=115, seed=99), ACUTE, made=NOW - timedelta(days=1.2),
             recorded=NOW - timedelta(hours=3))
    plain = assemble(store)
    data = assemble_training_data(predictions=store, artifacts=None, window_days=28, min_rows=0,
                                  half_life_days=2.0, reference_rows=5000, seed=3, now=NOW,
                                  changed_since=changed_since)
    assert data.weights[data.y == HEALTHY].sum() / data.weights.sum() == pytest.approx(PRE_CHANGE_MAX_SHARE)
    assert np.array_equal(np.sort(data.weights[data.y == ACUTE]), np.sort(plain.weights[plain.y == ACUTE]))
    late = data.weights[(data.y == HEALTHY) & (data.weights > recency_weight(1.5, 2.0))]
    assert len(late) == 0  # the late labels were scaled down with the other old ones
    recorded = data.record["weights"]["pre_change"]
    assert recorded["rows_before"] == 18 * 50 + 60
    assert recorded["seen_before_labelled_after"] == 60
    assert not data.since_change.any() and plain.since_change is None  # no class relabelled: the gate sees all


def test_after_a_detected_change_a_relabelled_class_is_judged_on_labels_given_since(store):
    """Recent labels win: old MILD labels where ACUTE is now given are dropped,
    the late ones of patients seen before the change too (as old as the change:
    among the new labels they hid it). MILD's labelling moved, so the gate
    judges its recall on MILD labels of patients seen since (promotion_gate)."""
    changed_since = NOW - timedelta(days=1.5)
    for age in range(2, 7):
        labelled(store, vitals(40, heart_rate=115, seed=400 + age), MILD, made=NOW - timedelta(days=age + 0.7),
                 recorded=NOW - timedelta(days=age + 0.5))
        labelled(store, vitals(40, seed=410 + age), HEALTHY, made=NOW - timedelta(days=age + 0.7),
                 recorded=NOW - timedelta(days=age + 0.5))
    labelled(store, vitals(30, heart_rate=115, seed=420), MILD, made=NOW - timedelta(days=1.8),  # late, old rule
             recorded=NOW - timedelta(hours=6))
    labelled(store, vitals(60, heart_rate=115, seed=421), ACUTE, made=NOW - timedelta(days=1.2),
             recorded=NOW - timedelta(hours=3))
    labelled(store, vitals(40, heart_rate=95, seed=422), MILD, made=NOW - timedelta(days=1.2),
             recorded=NOW - timedelta(hours=3))
    labelled(store, vitals(30, seed=423), HEALTHY, made=NOW - timedelta(days=1.2), recorded=NOW - timedelta(hours=3))
    data = assemble_training_data(predictions=store, artifacts=None, window_days=28, min_rows=2000,
                                  half_life_days=2.0, reference_rows=5000, seed=3, now=NOW,
                                  changed_since=changed_since)
    assert data.record["outcomes"]["dropped_as_contradicted"][MILD] == 5 * 40 + 30
    assert data.record["weights"]["pre_change"]["recall_judged_since_for"] == [MILD]
    assert data.since_change.sum() == 40 and (data.y[data.since_change] == MILD).all()
    assert (data.X[data.since_change][:, 1] < 105).all()  # the new MILD rows, not the late old ones
    assert (data.y[data.production_rows:] == MILD).any() and not data.since_change[data.production_rows:].any()
    long_ago = assemble_training_data(predictions=store, artifacts=None, window_days=28, min_rows=2000,
                                      half_life_days=2.0, reference_rows=5000, seed=3, now=NOW,
                                      changed_since=NOW - timedelta(days=40))  # older than the window
    assert not long_ago.since_change[long_ago.production_rows:].any()  # the fill is never a label since


def test_the_change_cap_never_weighs_older_labels_up_or_leaves_nothing_to_learn():
    weights = np.array([1.0, 1.0, 0.01, 0.01])
    assert pre_change_factor(weights, np.array([False, False, True, True])) == 1.0  # already a small share
    assert pre_change_factor(weights, np.ones(4, dtype=bool)) == 1.0  # no row after the change
    assert pre_change_factor(weights, np.zeros(4, dtype=bool)) == 1.0


def test_after_a_detected_change_the_fill_weighs_like_a_new_label_not_an_old_one(store):
    """The fill stands in for labels clinicians do not give (only patients
    predicted ill: never the healthy ones); capped with the old labels it
    weighed next to nothing and the class was learned from a few odd labels."""
    changed_since = NOW - timedelta(days=1.5)
    for age in range(2, 10):
        labelled(store, vitals(50, seed=200 + age), MILD, made=NOW - timedelta(days=age + 0.7),
                 recorded=NOW - timedelta(days=age + 0.5))
    labelled(store, vitals(40, heart_rate=115, seed=98), ACUTE, made=NOW - timedelta(days=1.2),
             recorded=NOW - timedelta(hours=3), predicted=ACUTE)
    labelled(store, vitals(20, heart_rate=118, seed=97), ACUTE, made=NOW - timedelta(days=1.4),
             recorded=NOW - timedelta(days=1.2), predicted=ACUTE)

    def with_fill(changed):
        return assemble_training_data(predictions=store, artifacts=None, window_days=28, min_rows=2000,
                                      half_life_days=2.0, reference_rows=5000, seed=3, now=NOW,
                                      changed_since=changed)

    plain, data = with_fill(None), with_fill(changed_since)
    fill = slice(data.production_rows, None)
    assert len(data.y[fill]) > 500 and (data.y[fill] == HEALTHY).any()  # the healthy class comes from the fill
    assert plain.weights[fill] == pytest.approx(recency_weight(28, 2.0))  # without a change: the oldest day
    since = data.y[:data.production_rows] == ACUTE
    no_new_label = data.y[fill] != ACUTE  # healthy: no label at all; mild: only before the change
    assert data.weights[fill][no_new_label] == pytest.approx(data.weights[:data.production_rows][since].mean())
    assert data.weights[fill][~no_new_label] == pytest.approx(recency_weight(28, 2.0))
    production = data.weights[:data.production_rows]
    assert production[~since].sum() / production.sum() == pytest.approx(PRE_CHANGE_MAX_SHARE)
    recorded = data.record["weights"]["pre_change"]
    assert recorded["rows_before"] == int((~since).sum()) == 8 * 50  # the fill is not counted among them
    assert recorded["fill_rows"] == int(no_new_label.sum()) and recorded["fill_weight"] == pytest.approx(
        data.weights[fill][0], abs=1e-6)


def test_after_a_detected_change_only_a_class_clinicians_do_not_label_gets_its_fill_weighed_up(store):
    """A class with labels since the change, given to patients predicted in it,
    learns from them: its fill keeps the oldest day's weight. Weighed up, 327
    fill rows outweighed its 20 new labels and 100 old ones (review: 3.5 / 20 /
    280). A class labelled only where another was predicted (sick_only's
    healthy: false alarms) is not: its fill stands in for the rest."""
    changed_since = NOW - timedelta(days=1.5)
    for age in range(2, 7):  # 100 old labels of the partly labelled class
        labelled(store, vitals(20, heart_rate=95, seed=300 + age), MILD, made=NOW - timedelta(days=age + 0.7),
                 recorded=NOW - timedelta(days=age + 0.5), predicted=MILD)
    labelled(store, vitals(20, heart_rate=97, seed=96), MILD, made=NOW - timedelta(days=1.2),
             recorded=NOW - timedelta(hours=3), predicted=MILD)  # 20 new ones
    labelled(store, vitals(5, temperature=36.5, heart_rate=60, seed=95), HEALTHY, made=NOW - timedelta(days=1.2),
             recorded=NOW - timedelta(hours=3), predicted=MILD)  # healthy: false alarms only
    data = assemble_training_data(predictions=store, artifacts=None, window_days=28, min_rows=2000,
                                  half_life_days=2.0, reference_rows=5000, seed=3, now=NOW,
                                  changed_since=changed_since)
    production_y, production_w = data.y[:data.production_rows], data.weights[:data.production_rows]
    fill_y, fill_w = data.y[data.production_rows:], data.weights[data.production_rows:]
    new = production_w == production_w.max()
    assert new.sum() == 25 and (production_y[new] == MILD).sum() == 20
    assert (fill_y == MILD).sum() > 200 and (fill_y == HEALTHY).sum() > 500
    assert fill_w[fill_y == MILD] == pytest.approx(recency_weight(28, 2.0))  # the old weight
    assert fill_w[fill_y == MILD].sum() < production_w[new & (production_y == MILD)].sum()
    assert fill_w[fill_y == HEALTHY] == pytest.approx(production_w[new].mean())  # weighed up
    recorded = data.record["weights"]["pre_change"]
    assert recorded["fill_rows"] == int((fill_w == production_w[new].mean()).sum())
    assert MILD not in recorded["fill_classes"] and HEALTHY in recorded["fill_classes"]


def test_after_a_detected_change_the_rare_class_is_never_marked_relabelled():
    """Review 20.2: even when recent labels win drops enough of its older rows,
    the rare class keeps every row for the gate; the record says it was left out."""
    from shared.training.change_weighting import weigh_since_change

    changed_since = NOW - timedelta(days=1.5)
    terminal = LABELS[-1]

    def group(age, labels, dropped=None):
        return LabelledRows("outcomes", age, vitals(len(labels), seed=age), np.array(labels, dtype=object),
                            {"dropped": dropped or {}, "predicted": set(labels)})

    old = group(5, [HEALTHY] * 40 + [MILD] * 30 + [terminal] * 3, {MILD: 6, terminal: 7})
    new = group(0, [HEALTHY] * 40 + [MILD] * 20 + [terminal] * 4)
    y = np.concatenate([old.y, new.y])
    _, record, since = weigh_since_change(np.ones(len(y)), [old, new], [old, new], y, 0, NOW, changed_since)
    assert record["recall_judged_since_for"] == [MILD]
    assert record["rare_class_left_out"] == terminal
    assert since.sum() == 20 and (y[since] == MILD).all()


def flagged_relabelled(dropped: dict, kept_before: dict) -> list[str]:
    """Which classes weigh_since_change marks relabelled, given per class the
    rows recent labels win dropped and the pre-change rows it kept."""
    from shared.training.change_weighting import weigh_since_change

    old = LabelledRows("outcomes", 5, np.zeros((0, 3)), np.empty(0, dtype=object), {"dropped": dropped})
    rows = [LabelledRows("outcomes", 5, vitals(n, seed=i), np.array([label] * n, dtype=object), {})
            for i, (label, n) in enumerate(kept_before.items())]
    new = LabelledRows("outcomes", 0, vitals(3), np.array([LABELS[-1]] * 3, dtype=object), {})
    groups = [old, *rows, new]
    y = np.concatenate([g.y for g in groups])
    _, record, _ = weigh_since_change(np.ones(len(y)), groups, groups, y, 0, NOW, NOW - timedelta(days=1.5))
    assert record["dropped_as_relabelled"] == {label: dropped.get(label, 0) for label in LABELS}
    return record["recall_judged_since_for"]


def test_relabelled_means_a_share_of_the_class_and_at_least_5_rows():
    """Review 20.4: at least 5 dropped rows and 2 % of the class's older rows
    (the loop's relabelled LEVE: 58-157 drops, 3-8 %; stationary classes at
    most 6 of 549, 1.1 %), so a busier hospital's noise is not a relabelling."""
    assert flagged_relabelled({MILD: 4}, {MILD: 100}) == []
    assert flagged_relabelled({MILD: 5}, {MILD: 100}) == [MILD]
    assert flagged_relabelled({MILD: 19}, {MILD: 981}) == []
    assert flagged_relabelled({MILD: 20}, {MILD: 980}) == [MILD]


def test_a_stationary_class_at_ten_times_the_loops_volume_is_not_relabelled():
    """The loop's stationary drops (CRÓNICA 6 of 549, NO ENFERMO 4 of 5,810) at 10x the outcomes."""
    assert flagged_relabelled({LABELS[3]: 60, HEALTHY: 40}, {LABELS[3]: 5490, HEALTHY: 58100, MILD: 18000}) == []
