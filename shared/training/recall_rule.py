"""Rule 3 of the promotion gate (`promotion_gate`), in rows: a class's recall
loss as evidence (`RecallLoss`), and after a detected change the view on the
rows of patients seen since it that may excuse it (`SinceChangeView`). Both
are data the decision records; their sentences are rendered once, here."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from shared.training.promotion_gate import Contender, EvaluationRows, GateRules


@dataclass(frozen=True)
class RecallLoss:
    """Rule 3's evidence for one class on some rows: rows recalled by each,
    the exact McNemar p-value (given per-row predictions), and whether the
    loss counts against the challenger."""

    label: str
    support: int
    champion_rows: int
    challenger_rows: int
    p_value: float | None
    refused: bool

    def describe(self, rules: GateRules) -> str:
        evidence = "" if self.p_value is None else f"McNemar exact p = {self.p_value:.3f}"
        if not self.refused:
            return (f"recall of {self.label!r}: {self.challenger_rows} vs {self.champion_rows} of {self.support} "
                    f"rows, not a significant loss ({evidence})")
        drop = (self.champion_rows - self.challenger_rows) / self.support
        return (f"recall of {self.label!r} drops by {drop:.3f} (more than {rules.max_recall_drop}): the challenger "
                f"recalls {self.challenger_rows} of {self.support} rows, the champion {self.champion_rows}"
                + (f"; {evidence}" if evidence else ""))

    def to_dict(self) -> dict:
        return {"support": self.support, "champion_rows": self.champion_rows,
                "challenger_rows": self.challenger_rows, "p_value": self.p_value, "refused": self.refused}


RARE_CLASS = "the rare class"  # never judged on the rows since (review 20.2): recorded as "not judged"
NO_CHANGE = "no change detected"  # these three: the view since was not asked
NOT_RELABELLED = "class not relabelled"


@dataclass(frozen=True)
class SinceChangeView:
    """A class's recall on the rows of patients seen since a change, or why it
    was not judged there (`why_not`): the rare class (never excused), no change
    detected, a class the change did not relabel, too few rows since. Its
    record then carries no counts: "0 vs 0" would read as "neither recalled any"."""

    support: int
    champion_rows: int = 0
    challenger_rows: int = 0
    p_value: float = 1.0
    loss_upper_bound: float | None = None
    max_drop: float = 0.0  # the gate's PROMOTION_MAX_RECALL_DROP
    evidence: dict | None = None  # rows by source: {"holdout": n, "cross_fitted": m}
    why_not: str | None = None  # set when the class was not judged on the rows since

    @property
    def judged(self) -> bool:
        return self.why_not is None

    @property
    def rare(self) -> bool:
        return self.why_not == RARE_CLASS

    @property
    def excused(self) -> bool:
        return self.judged and self.loss_upper_bound <= self.max_drop

    def describe(self, rules: GateRules) -> str:
        if self.rare:
            return "the rare class is never judged on the rows since a change"
        bound = f"at {rules.confidence:.0%} it loses at most {self.loss_upper_bound:.3f} of their recall"
        if self.excused:
            return (f"on the {self._rows()} the challenger recalls "
                    f"{self.challenger_rows} of {self.support}, the champion {self.champion_rows}: not a significant "
                    f"loss there (McNemar exact p = {self.p_value:.3f}), and {bound}, within the "
                    f"{rules.max_recall_drop} drop; the older labels follow the rule the change replaced")
        return (f"on the {self._rows()}: the challenger recalls {self.challenger_rows}"
                f" of {self.support} rows, the champion {self.champion_rows} (McNemar exact p = {self.p_value:.3f});"
                f" {bound}, more than the {rules.max_recall_drop} drop: no evidence it is not worse there")

    def to_dict(self) -> dict:
        if not self.judged:
            return {"support": self.support, "judged": False, "why": self.why_not,
                    "rows_by_source": dict(self.evidence or {})}
        return {"support": self.support, "judged": True, "champion_rows": self.champion_rows,
                "challenger_rows": self.challenger_rows, "p_value": self.p_value,
                "loss_upper_bound": self.loss_upper_bound, "rows_by_source": dict(self.evidence or {})}

    def _rows(self) -> str:
        crossed = (self.evidence or {}).get("cross_fitted")
        return (f"{self.support} rows labelled since the change"
                + (f" ({self.evidence['holdout']} held out, {crossed} cross-fitted)" if crossed else ""))


@dataclass(frozen=True)
class SinceChangeEvidence:
    """Rows since a change beyond the holdout's, each with both models' labels
    (`cross_fitting`: training rows, the challenger's cross-fitted)."""

    y_true: np.ndarray
    challenger: np.ndarray
    champion: np.ndarray


def since_change_view(champion: Contender, challenger: Contender, label: str, rows: EvaluationRows | None,
                       rules: GateRules, rare: str | None) -> SinceChangeView:
    """The view since a change for a class refused on every row, or why it was
    not judged there (`why_not`: the rare class; no change detected; a class
    the change did not relabel; too few rows since). It counts the holdout's
    rows since and the cross-fitted ones (`rows.cross_fitted`)."""
    if rows is None or rows.since_change is None:
        return SinceChangeView(0, why_not=NO_CHANGE)
    y_true, champion, challenger, sources = _rows_since(champion, challenger, rows)
    of_label = y_true == label
    since = int(np.sum(of_label))
    evidence = {source: int(np.sum(of_label & (sources == source))) for source in ("holdout", "cross_fitted")}
    if label == rare:
        return SinceChangeView(since, evidence=evidence, why_not=RARE_CLASS)
    if since == 0:
        return SinceChangeView(0, evidence=evidence, why_not=NOT_RELABELLED)
    least = min_rows_for_a_significant_loss(rules)
    if since < least:
        return SinceChangeView(since, evidence=evidence, why_not=f"fewer than {least} rows since")
    judged = replace(rows, y_true=y_true, weights=None, since_change=None, cross_fitted=None)
    return SinceChangeView(since, recalled_rows(champion, label, since, judged),
                           recalled_rows(challenger, label, since, judged),
                           recall_loss_p_value(champion, challenger, label, judged),
                           recall_loss_upper_bound(champion, challenger, label, judged, rules.confidence),
                           rules.max_recall_drop, evidence=evidence)


def _rows_since(champion: Contender, challenger: Contender, rows: EvaluationRows):
    """The rows since the change with both contenders' labels, and each row's source."""
    held = np.asarray(rows.since_change, dtype=bool)
    parts = [(np.asarray(rows.y_true, dtype=object)[held], np.asarray(champion.predictions, dtype=object)[held],
              np.asarray(challenger.predictions, dtype=object)[held], np.full(int(held.sum()), "holdout"))]
    extra = rows.cross_fitted
    if extra is not None:
        parts.append((np.asarray(extra.y_true, dtype=object), np.asarray(extra.champion, dtype=object),
                      np.asarray(extra.challenger, dtype=object), np.full(len(extra.y_true), "cross_fitted")))
    y_true, champion_says, challenger_says, sources = (np.concatenate(column) for column in zip(*parts))
    return (y_true, replace(champion, predictions=champion_says), replace(challenger, predictions=challenger_says),
            sources)


def recall_loss(champion: Contender, challenger: Contender, label: str, support: int,
                rows: EvaluationRows | None, rules: GateRules) -> RecallLoss | None:
    """Rule 3 for one class on `rows` (None: from the metrics): None when no
    loss beyond the drop (or of a single row), else its evidence."""
    champion_rows = recalled_rows(champion, label, support, rows)
    challenger_rows = recalled_rows(challenger, label, support, rows)
    rows_lost = champion_rows - challenger_rows
    if rows_lost / support <= rules.max_recall_drop or rows_lost <= 1:
        return None
    p_value = recall_loss_p_value(champion, challenger, label, rows) if rows is not None else None
    refused = p_value is None or p_value < 1 - rules.confidence
    return RecallLoss(label, support, champion_rows, challenger_rows, p_value, refused)


def recall_loss_upper_bound(champion: Contender, challenger: Contender, label: str, rows: EvaluationRows,
                            confidence: float) -> float:
    """One-sided upper bound of the challenger's recall loss on the class's rows
    (champion's recall minus its own): of the d rows where the two disagree,
    the share only the champion recalls is bounded by Clopper-Pearson, so the
    loss is at most d * (2 * upper - 1) / rows. 0 when they never disagree."""
    from scipy.stats import beta

    only_champion, only_challenger, support = _disagreements(champion, challenger, label, rows)
    disagreeing = only_champion + only_challenger
    if disagreeing == 0:
        return 0.0
    upper = 1.0 if only_champion == disagreeing else float(beta.ppf(confidence, only_champion + 1, only_challenger))
    return disagreeing * (2 * upper - 1) / support


def min_rows_for_a_significant_loss(rules: GateRules) -> int:
    """The fewest rows only the champion recalls that the exact McNemar test
    can call a significant loss (5 at 95 %: p = 1/32): the least d with
    0.5 ** d < 1 - confidence."""
    if not 0 < rules.confidence < 1:
        raise ValueError(f"the gate's confidence must be between 0 and 1, not {rules.confidence}")
    return math.floor(math.log2(1 / (1 - rules.confidence))) + 1


def recall_loss_p_value(champion: Contender, challenger: Contender, label: str, rows: EvaluationRows) -> float:
    """One-sided exact McNemar test on the class's rows where the two disagree:
    how likely this many rows only the champion recalls, were both equally good."""
    from scipy.stats import binom

    only_champion, only_challenger, _ = _disagreements(champion, challenger, label, rows)
    if only_champion == 0:
        return 1.0
    return float(binom.sf(only_champion - 1, only_champion + only_challenger, 0.5))


def _disagreements(champion: Contender, challenger: Contender, label: str, rows: EvaluationRows):
    """Rows of `label` only the champion recalls, only the challenger recalls, and all of them."""
    truth = np.asarray(rows.y_true, dtype=object) == label
    champion_hit = truth & (np.asarray(champion.predictions, dtype=object) == label)
    challenger_hit = truth & (np.asarray(challenger.predictions, dtype=object) == label)
    return (int(np.sum(champion_hit & ~challenger_hit)), int(np.sum(challenger_hit & ~champion_hit)),
            int(np.sum(truth)))


def recalled_rows(contender: Contender, label: str, support: int, rows: EvaluationRows | None) -> int:
    """Rows of `label` the contender recalls, counted as rows whatever the metrics' weights."""
    if rows is not None and contender.predictions is not None:
        truth = np.asarray(rows.y_true, dtype=object) == label
        return int(np.sum(truth & (np.asarray(contender.predictions, dtype=object) == label)))
    per_class = contender.metrics["per_class"][label]
    if "recalled_rows" in per_class:
        return int(per_class["recalled_rows"])
    return int(round(per_class["recall"] * support))  # unweighted metrics: recall is a share of rows
