"""Challengers held for approval, and the people who approve or reject them.

A training run whose challenger passes the gate but changes behaviour beyond
the bounds (`governance.change_control`) is registered, not promoted: it
waits in `pending_approvals` (one document per version) with the change it
would make. `approve` promotes it through the same exactly-once path as an
automatic promotion (`training.promotion`: the outbox intent under the run's
promotion key, the compare-and-swap, the audit entry, the notice); `reject`
closes it. Both record who, when and why in the document, and an approval
also in `champion_history` (actor `approval:<name>`). A champion that moved
in between supersedes the approval: the decision was about another change.
"""

from __future__ import annotations

from datetime import datetime, timezone

from shared.errors import NotFound, PreconditionFailed, ValidationError
from shared.governance.change_control import ChangeBounds, breaches, measure_change
from shared.structured_logging import get_logger

PENDING_APPROVALS = "pending_approvals"
log = get_logger("approvals")


def review_change(champion, challenger, *, trusted, recent_inputs, bounds: ChangeBounds) -> dict:
    """The measured change and whether it must wait (`held`), for the experiment record.

    Args:
        champion, challenger: loaded models (`predict_labels(rows)`, `labels`).
        trusted: (X, y, description) from `governance.trusted_set.load`.
        recent_inputs: the last day's inputs, or None.
    """
    X, y, description = trusted
    change = measure_change(champion.predict_labels, challenger.predict_labels, challenger.labels,
                            trusted=(X, y), recent_inputs=recent_inputs)
    reasons = breaches(change, bounds)
    return {"held": bool(reasons), "reasons": reasons, "change": change, "trusted_set": description,
            "bounds": bounds.__dict__.copy(), "champion_version": champion.version}


def hold(metadata, record: dict, *, promotion_key: str, now: datetime | None = None) -> dict:
    """Put the run's challenger in `pending_approvals` (safe to repeat)."""
    review = record["promotion"]["change_control"]
    version = record["winner"]["version"]
    metadata.create(PENDING_APPROVALS, version, {
        "version": version, "created_at": (now or datetime.now(timezone.utc)).isoformat(), "status": "pending",
        "run_id": record["run_id"], "promotion_key": promotion_key, "expected_version": record["champion_before"],
        "gate_reasons": record["promotion"].get("reasons", []), "actor": record.get("actor"),
        "held_because": review["reasons"], "change": review["change"], "trusted_set": review["trusted_set"],
        "training_window": (record.get("data_sources") or {}).get("window"),
    })
    log.warning("challenger held for approval", extra={"fields": {"version": version, "reasons": review["reasons"]}})
    return metadata.get(PENDING_APPROVALS, version)


def list_pending(metadata, limit: int = 50) -> list[dict]:
    return [document for document in metadata.list(PENDING_APPROVALS, limit) if document["status"] == "pending"]


def _pending(metadata, version: str) -> dict:
    document = metadata.get(PENDING_APPROVALS, version)
    if document is None:
        raise NotFound(f"no challenger {version} waits for approval (see `models pending`)", field="version")
    if document["status"] != "pending":
        raise PreconditionFailed(f"{version} was already {document['status']} by {document.get('decided_by')}",
                                 field="version", code="already_decided")
    return document


def _check_name(by: str) -> str:
    if not isinstance(by, str) or not by.strip():
        raise ValidationError("say who decides: --by NAME", field="by", code="missing_field")
    return by.strip()


def approve(version: str, *, by: str, store, metadata, publish=None, now: datetime | None = None) -> dict:
    """Promote a held challenger through the exactly-once path; returns the approval document."""
    from shared.training.promotion import complete_promotion, open_intent
    from shared.training.runs import settle_experiment

    by = _check_name(by)
    document = _pending(metadata, version)
    now = now or datetime.now(timezone.utc)
    intent = open_intent(metadata, document["promotion_key"], version=version,
                         expected_version=document["expected_version"],
                         reason=f"approved by {by} after change control: " + "; ".join(document["held_because"]),
                         actor=f"approval:{by}", run_id=document["run_id"], now=now)
    closed = complete_promotion(intent, store=store, metadata=metadata, publish=publish)
    settle_experiment(store, metadata, closed)
    decided = dict(document, status="approved" if closed["status"] == "done" else "superseded",
                   decided_by=by, decided_at=now.isoformat(), promotion_status=closed["status"])
    if closed.get("closing_reason"):
        decided["closing_reason"] = closed["closing_reason"]
    metadata.put(PENDING_APPROVALS, version, decided)
    log.info("held challenger decided", extra={"fields": {"version": version, "status": decided["status"],
                                                          "by": by}})
    return decided


def reject(version: str, *, by: str, reason: str, metadata, now: datetime | None = None) -> dict:
    by = _check_name(by)
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError("say why: --reason TEXT", field="reason", code="missing_field")
    document = _pending(metadata, version)
    decided = dict(document, status="rejected", decided_by=by, reason=reason.strip(),
                   decided_at=(now or datetime.now(timezone.utc)).isoformat())
    metadata.put(PENDING_APPROVALS, version, decided)
    log.info("held challenger rejected", extra={"fields": {"version": version, "by": by}})
    return decided
