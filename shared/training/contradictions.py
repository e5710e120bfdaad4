"""Recent labels win -- where the labelling changed (the training-data
policy's step 2, see `training_data`).

Production rows: days are taken newest first; an older row is dropped only
when its neighbourhood's labelling has changed significantly between
periods: among its `NEIGHBOURS` nearest newer rows and its `NEIGHBOURS`
nearest rows of its own period (its day and older), all within `RADIUS` (in
units of `NEIGHBOURHOOD_SCALE`), at least `AGREEMENT` of the newer ones
carry another label, and its own label is rarer among the newer ones than
among its period's by a one-sided Fisher exact test at `CHANGE_SIGNIFICANCE`.
That is how a changed labelling rule replaces the old one without waiting
for the old rows to leave the window; ordinary overlap at a class boundary
(the same mix of labels in both periods) is not a change, so stationary data
keeps its rows (the earlier rule -- 3 newer neighbours, 80 % of them
disagreeing -- dropped 0.8-5.3 % of each class of stationary data, skewing
the class mix calibration is fitted on). What was dropped is recorded per
class in each group's `detail["dropped"]`.

The synthetic reference (`outvoted`) is no evidence of how clinicians label,
so it has no period to compare: it yields wherever its `REFERENCE_NEIGHBOURS`
nearest production rows mostly (`REFERENCE_AGREEMENT`) carry another label.
Its class mix is kept anyway: the fill takes each class's quota from what is
left.
"""

from __future__ import annotations

import numpy as np

from shared.training.labelled_rows import LabelledRows, per_class

NEIGHBOURS = 15
RADIUS = 2.0
AGREEMENT = 0.5  # most newer neighbours carry another label (and the test below says it changed)
CHANGE_SIGNIFICANCE = 0.01
MIN_NEIGHBOURS = 3  # fewer rows on either side: no evidence of a change, nothing dropped
# The synthetic reference is no evidence of how clinicians label: it yields
# to production wherever its 3 nearest production rows mostly disagree.
REFERENCE_NEIGHBOURS, REFERENCE_AGREEMENT = 3, 0.8
# Twice the reference data's measurement noise per feature: closer rows are
# the same patient state, as far as the vitals can tell.
NEIGHBOURHOOD_SCALE = np.array([0.3, 6.0, 8.0])


def _nearest(reference: np.ndarray, query: np.ndarray, neighbours: int, skip_self: bool):
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=neighbours + skip_self).fit(reference / NEIGHBOURHOOD_SCALE)
    distances, nearest = index.kneighbors(query / NEIGHBOURHOOD_SCALE)
    return (distances[:, 1:], nearest[:, 1:]) if skip_self else (distances, nearest)


def without_contradictions(group: LabelledRows, newer: list[LabelledRows], peers: list[LabelledRows] | None = None,
                           neighbours: int = NEIGHBOURS, radius: float = RADIUS, agreement: float = AGREEMENT,
                           significance: float = CHANGE_SIGNIFICANCE) -> LabelledRows:
    """`group` minus the rows whose neighbourhood newer rows relabelled (see the
    module docstring). `peers`: the rows of the group's period (its day and
    older days); the group itself when not given. Its rows must be among them."""
    from scipy.stats import hypergeom

    newer = [g for g in newer if len(g)]
    peers = [g for g in (peers or [group]) if len(g)]
    newer_rows, peer_rows = sum(len(g) for g in newer), sum(len(g) for g in peers)
    k_newer, k_peers = min(neighbours, newer_rows), min(neighbours, peer_rows - 1)
    if not len(group) or min(k_newer, k_peers) < MIN_NEIGHBOURS:
        return group
    newer_y, peer_y = np.concatenate([g.y for g in newer]), np.concatenate([g.y for g in peers])
    new_distance, new_nearest = _nearest(np.vstack([g.X for g in newer]), group.X, k_newer, skip_self=False)
    peer_distance, peer_nearest = _nearest(np.vstack([g.X for g in peers]), group.X, k_peers, skip_self=True)
    covered = (new_distance[:, -1] <= radius) & (peer_distance[:, -1] <= radius)
    same_newer = (newer_y[new_nearest] == group.y[:, None]).sum(axis=1)
    same_peers = (peer_y[peer_nearest] == group.y[:, None]).sum(axis=1)
    disagreeing = same_newer <= (1 - agreement) * k_newer
    # Fisher's exact test, one-sided: this few of the row's label among the
    # newer neighbours, given how many both neighbourhoods hold together.
    p_value = hypergeom.cdf(same_newer, k_newer + k_peers, same_newer + same_peers, k_newer)
    keep = ~(covered & disagreeing & (p_value < significance))
    return LabelledRows(group.source, group.age_days, group.X[keep], group.y[keep],
                        dict(group.detail, dropped=per_class(group.y[~keep])))


def outvoted(group: LabelledRows, newer: list[LabelledRows], neighbours: int = REFERENCE_NEIGHBOURS,
             radius: float = RADIUS, agreement: float = REFERENCE_AGREEMENT) -> LabelledRows:
    """`group` (the synthetic reference) minus the rows newer rows outvote: its
    `neighbours` nearest newer rows lie within `radius` and at least
    `agreement` of them carry another label."""
    newer = [g for g in newer if len(g)]
    if not len(group) or sum(len(g) for g in newer) < neighbours:
        return group
    newer_y = np.concatenate([g.y for g in newer])
    distances, nearest = _nearest(np.vstack([g.X for g in newer]), group.X, neighbours, skip_self=False)
    keep = ~((distances[:, -1] <= radius) & ((newer_y[nearest] != group.y[:, None]).mean(axis=1) >= agreement))
    return LabelledRows(group.source, group.age_days, group.X[keep], group.y[keep],
                        dict(group.detail, dropped=per_class(group.y[~keep])))


def drop_contradicted(groups: list[LabelledRows], age=lambda group: group.age_days) -> list[LabelledRows]:
    """Each group without the rows strictly newer groups relabelled (newest first;
    a day's outcomes and lake rows are equals, and form its period with older days).
    `age` orders them: a group's labelling day unless the caller knows better
    (after a change, late labels of patients seen before it are as old as it)."""
    kept: list[LabelledRows] = []
    for group in sorted(groups, key=age):
        period = [g for g in groups if age(g) >= age(group) and g is not group]
        kept.append(without_contradictions(group, [g for g in kept if age(g) < age(group)], [group] + period))
    return kept
