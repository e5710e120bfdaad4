"""Outcomes a retrain has already learnt from: left out of the decay judgement.

A retrain trains on every label recorded before it reads its data. Outcomes
recorded before then are no new evidence about the champion: either the
champion itself was trained on them (its baseline's `labels_until`), or a
retrain already requested for this champion was offered them (the
`evidence_until` of its `retrain_waits` document: the end of the window that
asked). Judged again -- a re-run over an overlapping window, a lake
partition the champion trained on, a rollback to an older version -- they
would call the same outcomes "degraded" and request the same retrain again,
which would learn nothing it had not. So the decay judgement counts only
outcomes recorded after the later of the two cutoffs, and the report says
how many it left out and why.

Hourly units are judged whole: a unit whose hour ends by the cutoff is left
out; one the cutoff falls inside is kept (new evidence is never dropped).
"""

from __future__ import annotations

from datetime import datetime

from shared.event_bus.messages import parse_timestamp
from shared.records import isoformat


def evidence_cutoff(baseline: dict, wait: dict | None) -> dict | None:
    """The moment before which outcomes were already learnt from, and why; None when nothing was."""
    candidates = []
    trained = parse_timestamp(baseline.get("labels_until"))
    if trained is not None:
        candidates.append((trained, "the champion was trained on them"))
    offered = parse_timestamp((wait or {}).get("evidence_until"))
    if offered is not None:
        candidates.append((offered, "a retrain already requested for this champion trained on them"))
    if not candidates:
        return None
    until, basis = max(candidates, key=lambda candidate: candidate[0])
    return {"until": until, "basis": basis}


def learnt_outcomes_section(cutoff: dict | None, left_out: int) -> dict | None:
    """The report's record of the rule: the cutoff, its basis and how many outcomes it left out."""
    if cutoff is None:
        return None
    until = isoformat(cutoff["until"])
    return {"until": until, "basis": cutoff["basis"], "left_out": int(left_out),
            "message": f"{left_out} outcomes recorded before {until} left out of the decay judgement: "
                       f"{cutoff['basis']}"}


def learnt(recorded_at: datetime | None, until: datetime | None) -> bool:
    """Whether an outcome recorded at `recorded_at` was already learnt from (unknown times count as new)."""
    return until is not None and recorded_at is not None and recorded_at < until
