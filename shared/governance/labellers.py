"""Whose labels are behind a change, and how each labeller agrees with the
champion and with its peers: attribution questions over the outcome store."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime

import numpy as np


def labels_behind_change(predictions, champion, challenger, start: datetime, end: datetime) -> list[dict]:
    """Per caller, over the outcomes recorded in [start, end): how many labels it
    sent, and how many of them say what the challenger would answer and the
    champion does not (the labels that pull the model towards the change);
    most such labels first."""
    sent, behind = Counter(), Counter()
    for chunk in predictions.iter_outcomes_recorded(start, end):
        callers = chunk.outcome_callers or [None] * len(chunk)
        before, after = champion.predict_labels(chunk.features), challenger.predict_labels(chunk.features)
        for caller, label, old, new in zip(callers, chunk.outcomes, before, after):
            caller = caller or "unattributed"
            sent[caller] += 1
            behind[caller] += int(label == new and label != old)
    return sorted(({"caller": caller, "labels": sent[caller], "labels_behind_change": behind[caller]}
                   for caller in sent), key=lambda item: (-item["labels_behind_change"], item["caller"]))


def labeller_agreement(chunks, champion_answers_of=None, *, min_labels: int = 20, max_gap: float = 0.3) -> dict:
    """Per caller: agreement of its labels with the champion, and with the other
    callers' majority label in the same region (the champion's answer; without
    `champion_answers_of`, the answer logged with the prediction, so the drift
    check needs no model).

    A caller is flagged when its peer agreement falls more than `max_gap` below
    the median of the callers who have at least `min_labels` comparable labels.
    """
    rows = []
    for chunk in chunks:
        callers = chunk.outcome_callers or [None] * len(chunk)
        labelled = [i for i, label in enumerate(chunk.outcomes) if label is not None]
        if not labelled:
            continue
        answers = (champion_answers_of(chunk.features[labelled]) if champion_answers_of is not None
                   else [chunk.predictions[i] for i in labelled])
        for position, i in enumerate(labelled):
            rows.append((callers[i] or "unattributed", str(answers[position]), chunk.outcomes[i]))
    by_region: dict[str, Counter] = defaultdict(Counter)
    for caller, region, label in rows:
        by_region[region][(caller, label)] += 1
    callers: dict[str, dict] = defaultdict(lambda: {"labels": 0, "agree_champion": 0, "peer_labels": 0,
                                                    "agree_peers": 0})
    for caller, region, label in rows:
        stats = callers[caller]
        stats["labels"] += 1
        stats["agree_champion"] += int(label == region)
        peers = Counter()
        for (other, other_label), count in by_region[region].items():
            if other != caller:
                peers[other_label] += count
        if peers:
            stats["peer_labels"] += 1
            stats["agree_peers"] += int(label == peers.most_common(1)[0][0])
    result = {}
    for caller, stats in callers.items():
        result[caller] = {
            "labels": stats["labels"],
            "agreement_with_champion": round(stats["agree_champion"] / stats["labels"], 4),
            "agreement_with_peers": (round(stats["agree_peers"] / stats["peer_labels"], 4)
                                     if stats["peer_labels"] else None),
            "flagged": False,
        }
    comparable = [v["agreement_with_peers"] for v in result.values()
                  if v["agreement_with_peers"] is not None and v["labels"] >= min_labels]
    if len(comparable) >= 2:
        median = float(np.median(comparable))
        for value in result.values():
            if value["agreement_with_peers"] is not None and value["labels"] >= min_labels \
                    and value["agreement_with_peers"] < median - max_gap:
                value["flagged"] = True
    return {"callers": dict(sorted(result.items())), "region": "the champion's answer for the row",
            "min_labels": min_labels, "max_gap_below_median": max_gap}
