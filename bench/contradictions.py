""""Recent labels win" on stationary data and on a changed labelling rule (issue 21).

- stationary: `days` days x `rows_per_day` rows from the reference generator,
  one seed a day; nothing changed, so every dropped row is a false drop
  (target: < 0.5 % of rows). Dropped share per class.
- changed: the same, but on the newest `changed_days` days rows labelled
  NO ENFERMO with heart rate in [88, 95) are labelled ENFERMEDAD LEVE (a
  lowered threshold). Share of the older rows of that region dropped (should
  be most of them) and of the older rows elsewhere (should stay ~0).
Runs against whichever `shared/` is importable (before/after a change).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from shared.schema import LABELS


def days_of_data(days: int, rows_per_day: int, changed_days: int = 0):
    from shared.training.synthetic_data import generate_reference_data
    from shared.training.training_data import LabelledRows

    groups = []
    for age in range(days):
        X, y = generate_reference_data(rows_per_day, seed=1000 + age)
        region = (y == LABELS[0]) & (X[:, 1] >= 88) & (X[:, 1] < 95)
        if age < changed_days:
            y = y.copy()
            y[region] = LABELS[1]
        groups.append((LabelledRows("lake", age, X, y), region))
    return groups


def dropped_shares(days: int, rows_per_day: int, changed_days: int) -> dict:
    from shared.training.training_data import drop_contradicted

    made = days_of_data(days, rows_per_day, changed_days)
    kept = {g.age_days: g for g in drop_contradicted([g for g, _ in made])}
    totals, dropped = dict.fromkeys(LABELS, 0), dict.fromkeys(LABELS, 0)
    region_rows = region_dropped = other_old_rows = other_old_dropped = 0
    for group, region in made:
        survivors = {row.tobytes() for row in kept[group.age_days].X}
        gone = np.array([row.tobytes() not in survivors for row in group.X])
        for label in LABELS:
            totals[label] += int(np.sum(group.y == label))
            dropped[label] += int(np.sum(gone & (group.y == label)))
        if group.age_days >= changed_days:
            region_rows += int(region.sum())
            region_dropped += int((gone & region).sum())
            other_old_rows += int((~region).sum())
            other_old_dropped += int((gone & ~region).sum())
    result = {"rows": sum(totals.values()), "dropped": sum(dropped.values()),
              "dropped_share": round(sum(dropped.values()) / sum(totals.values()), 5),
              "dropped_share_per_class": {label: round(dropped[label] / totals[label], 5) if totals[label] else None
                                          for label in LABELS}}
    if changed_days:
        result["older_rows_in_the_changed_region_dropped"] = round(region_dropped / max(region_rows, 1), 4)
        result["older_rows_elsewhere_dropped"] = round(other_old_dropped / max(other_old_rows, 1), 5)
    return result


def main(quick: bool = False) -> dict:
    started = time.perf_counter()
    days, rows_per_day = (10, 500) if quick else (28, 1000)
    table = {"days": days, "rows_per_day": rows_per_day,
             "stationary": dropped_shares(days, rows_per_day, 0),
             "changed_on_the_newest_7_days": dropped_shares(days, rows_per_day, 7)}
    table["target_stationary_below_0.005"] = table["stationary"]["dropped_share"] < 0.005
    table["seconds"] = round(time.perf_counter() - started, 1)
    return table


if __name__ == "__main__":
    print(json.dumps(main(quick="--quick" in sys.argv), indent=2))
