"""Whether a drift report publishes its retrain request: the rules, in order,
with their state in `retrain_waits` (one document per champion, and one for
the follow-up).

1. Outcomes a retrain already learnt from were left out before judging
   (`learnt_outcomes.py`); a published request moves that cutoff on.
2. After input drift the request waits for labels in the changed region, or
   a bounded number of nights (`retrain_wait.py`).
3. The follow-up. A retrain that went ahead out of patience learnt the
   changed region from too few labels: promoted, it serves the new
   population, but no longer sees it as drift, so nothing would ever retrain
   it on the labels that arrive next. So does the first retrain after input
   drift with enough labels: it learns from a night or two of the new
   population (bench/loop_simulation.py, random_20, seed 1: without a
   follow-up it served 0.011 under the pre-shift F1 on average, 0.025 at
   worst, for 18 nights; with one, from night 16, 0.007 above, 0.005 under
   at worst). A retrain asked again after a refused one gets none (it would
   be a third). Once they are there -- the region's
   labels at the first request plus the new champion's outcomes since (times
   the region's share of outcomes while waiting) reach twice the first
   request's, and at least RETRAIN_MIN_CHANGED_LABELS -- one more retrain is
   requested ("follow-up"). Never more than one: the
   follow-up has its labels. A retrain requested for any other reason
   meanwhile learns from the same labels and settles the follow-up too.
   It keeps the wait's `changed_since` (the report's `retrain_follow_up`
   says it): the retrain handler weighs the labels from before the change
   down as for the first retrain (`change_weighting.weigh_after_change`);
   without it, sick_only's healthy class (reference fill only) weighed next
   to nothing again in the follow-up.
"""

from __future__ import annotations

from shared.config import Settings
from shared.monitoring import retrain_wait
from shared.stores.metadata.port import MetadataStore

FOLLOW_UP = "follow-up"  # the follow-up's document id in `retrain_waits`


def retrain_rule(report: dict, champion: str, metadata: MetadataStore, settings: Settings) -> bool:
    """Whether `report` publishes a retrain request now; says why in the report (a reason and a section)."""
    waits = retrain_wait.RETRAIN_WAITS
    wait = metadata.get(waits, champion)
    offered = [wait["evidence_until"]] if (wait or {}).get("evidence_until") else []
    follow_up = _follow_up(report, champion, metadata.get(waits, FOLLOW_UP))
    publish = bool(follow_up and follow_up["status"] == "published")
    if report["decision"] != "drift":
        if wait and wait.get("status") == "waiting":  # the drift went away: start afresh next time
            wait = dict(wait, status="cleared")
    else:
        own, wait = retrain_wait.decide(report, wait, min_labels=settings.retrain_min_changed_labels,
                                        max_nights=settings.retrain_max_wait_nights)
        report["retrain_wait"] = {key: value for key, value in wait.items() if not key.endswith("_by_report")}
        report["reasons"].append(wait["message"])
        after_input_drift = wait["first_request"] and wait["changed_since"] and not wait["degraded_outcomes"]
        if wait["short_of_labels"] or after_input_drift:
            follow_up = {"status": "pending", "from_champion": champion, "labels": wait["changed_region_labels"],
                         # as for a refused retrain: asked again when the region's labels double
                         "needed": max(wait["needed"], 2 * wait["changed_region_labels"]),
                         "share": wait["changed_region_labels"] / max(wait["outcomes"], 1),
                         "outcomes_by_report": {}, "requested_by": report["report_id"],
                         # the same change: its retrain weighs the labels from before it down too
                         "changed_since": wait.get("changed_since")}
        elif own and follow_up and not publish:
            follow_up = dict(follow_up, status="settled", message=None)  # this retrain learns from the same labels
        publish = publish or own
    if publish or offered:  # what a retrain learnt from is no evidence again for this champion
        wait = wait or {"status": "cleared", "labels_by_report": {}}
        wait["evidence_until"] = max(offered + ([report["window_end"]] if publish else []))
    if wait is not None:
        metadata.put(waits, champion, wait)
    if follow_up is not None:
        metadata.put(waits, FOLLOW_UP, follow_up)
        if follow_up.get("message"):
            report["retrain_follow_up"] = {key: value for key, value in follow_up.items()
                                           if key != "outcomes_by_report"}
            report["reasons"].append(follow_up["message"])
    return publish


def _follow_up(report: dict, champion: str, follow_up: dict | None) -> dict | None:
    """The follow-up document after this report (None when there is none pending)."""
    if follow_up and follow_up.get("status") == "published" and follow_up.get("published_by") == report["report_id"]:
        return follow_up  # a re-run of the report that asked (its request may not have gone out): ask again
    if not follow_up or follow_up.get("status") != "pending":
        return None
    if champion == follow_up["from_champion"]:  # not promoted (yet): the waiting rule still applies to it
        return dict(follow_up, message=None)
    outcomes = dict(follow_up["outcomes_by_report"], **{report["report_id"]: report["performance"]["outcomes"]})
    labels = follow_up["labels"] + round(follow_up["share"] * sum(outcomes.values()))
    due = labels >= follow_up["needed"]
    return dict(follow_up, outcomes_by_report=outcomes, estimated_labels=labels,
                status="published" if due else "pending", published_by=report["report_id"] if due else None,
                message=(f"follow-up retrain requested: about {labels} labels in the changed region now; the "
                         f"retrain after the drift went ahead with {follow_up['labels']} of {follow_up['needed']}")
                if due else f"follow-up retrain waits for labels: about {labels} of {follow_up['needed']} in "
                            f"the changed region")
