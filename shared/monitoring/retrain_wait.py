"""When a retrain can change the model: the waiting rule after input drift.

A retrain requested the night the inputs drift trains on the few labels the
changed region has by then (outcomes arrive hours or days late): the new
model has not learnt the region, the region still drifts, and the loop
retrains again night after night. So after input drift the request waits
until the changed region has `RETRAIN_MIN_CHANGED_LABELS` labels, counted
over the nights it waits, or until it has waited `RETRAIN_MAX_WAIT_NIGHTS`
drift checks; each drift report says where it stands ("waiting for labels:
225 of 600 in the changed region"). Degraded outcomes are labels already, so
they request a retrain at once -- unless the same window's inputs drifted:
then they wait for the changed region's labels with it, also after a refused
retrain at most `RETRAIN_MAX_WAIT_NIGHTS` more nights.

The changed region: for each drifting feature, the baseline bins the window
over-represents; its labels are the outcomes recorded in the window whose
inputs fall in those bins (the feature with the most of them counts).
State lives in one small document per champion (`retrain_waits`), keyed by
report, so a re-run of a window counts its labels once. It also keeps
`changed_since`, the start of the first window of this wait where the
inputs drifted: the retrain it requests weighs labels from before then down
(`change_weighting.pre_change_factor`), so it learns the new population faster.
"""

from __future__ import annotations

import numpy as np

from shared.event_bus.messages import parse_timestamp
from shared.schema import FEATURES

RETRAIN_WAITS = "retrain_waits"


def changed_region(features: dict, labelled_coarse: dict) -> dict | None:
    """The drifting feature whose over-represented bins hold the most labels; None without feature drift."""
    best = None
    for name in FEATURES:
        feature = features[name]
        if feature["status"] != "drift":
            continue
        window = np.asarray(feature["window_counts"], dtype=float)
        reference = np.asarray(feature["reference_counts"], dtype=float)
        over = window / max(window.sum(), 1) > reference / max(reference.sum(), 1)
        labels = int(np.asarray(labelled_coarse[name])[over].sum())
        if best is None or labels > best["labels"]:
            best = {"feature": name, "bins": np.flatnonzero(over).tolist(), "labels": labels}
    return best


def decide(report: dict, wait: dict | None, *, min_labels: int, max_nights: int) -> tuple[bool, dict]:
    """(publish now?, the champion's wait document after this report). Pure.

    A champion whose retrain was already requested (and that still serves:
    the candidate was not promoted) is asked again only when the changed
    region's labels have doubled since: the same evidence would train the same
    refused candidate."""
    if wait is None or wait.get("status") not in ("waiting", "published"):
        wait = {"status": "waiting", "labels_by_report": {}}
    region = report.get("changed_region")
    # Degraded outcomes ask at once -- unless the inputs drifted too: then the
    # labels that can mend them are the changed region's, and they wait like the
    # drift (loop, repeated_3: a retrain on the first shifted night, refused, then
    # no follow-up was left within "at most one more").
    degraded_outcomes = report["performance"]["status"] == "degraded"
    degraded = degraded_outcomes and not region
    labels_now = region["labels"] if region else report["performance"]["outcomes"]
    labels_by_report = dict(wait["labels_by_report"], **{report["report_id"]: labels_now})
    outcomes_by_report = dict(wait.get("outcomes_by_report", {}), **{report["report_id"]:
                                                                     report["performance"]["outcomes"]})
    labels = sum(labels_by_report.values())
    nights = len(labels_by_report)
    requested_at = wait.get("requested_at_labels")
    needed = min_labels if requested_at is None else max(min_labels, 2 * requested_at)
    # After a refused retrain, degraded outcomes with drift wait for the doubled
    # labels at most `max_nights` too: a degraded champion must not serve on
    # without bound if they never come (drift alone still waits for them).
    since_request = nights - wait.get("requested_at_night", 0) if requested_at is not None else None
    out_of_patience = (requested_at is None and nights > max_nights) or (
        degraded_outcomes and since_request is not None and since_request >= max_nights)
    publish = degraded or labels >= needed or out_of_patience
    reason = ("degraded outcomes" if degraded else f"{labels} labels in the changed region" if labels >= needed
              else f"waited {nights - 1} of {max_nights} nights" if publish and requested_at is None
              else f"degraded outcomes: waited {since_request} of {max_nights} nights since the last request"
              if publish else None)
    # where the change began: the earliest drifted window's start (windows may be checked out of order)
    starts = [start for start in (wait.get("changed_since"), report.get("window_start") if region else None)
              if start]
    changed_since = min(starts, key=parse_timestamp) if starts else None
    summary = {"status": "published" if publish else "waiting", "labels_by_report": labels_by_report,
               "changed_since": changed_since,
               "outcomes_by_report": outcomes_by_report, "outcomes": sum(outcomes_by_report.values()),
               # went ahead out of patience: `retrain_rules.py` asks once more when the labels are there
               "short_of_labels": publish and not degraded and labels < needed and requested_at is None,
               "first_request": publish and requested_at is None,  # not asked again after a refusal
               "degraded_outcomes": degraded,  # asked at once, for outcomes alone
               "changed_region_labels": labels, "needed": needed, "nights": nights, "max_nights": max_nights,
               "requested_at_labels": labels if publish else requested_at,
               "requested_at_night": nights if publish else wait.get("requested_at_night", 0),
               "feature": region["feature"] if region else None, "created_at": report["created_at"],
               "message": f"retrain requested: {reason}" if publish else
               f"waiting for labels: {labels} of {needed} in the changed region" + (
                   f" (night {nights} of at most {max_nights + 1})" if requested_at is None else
                   f" (degraded outcomes: night {since_request} of at most {max_nights} since the last request)"
                   if degraded_outcomes else
                   f" (a retrain was requested at {requested_at}; asked again when they double)")}
    return publish, summary
