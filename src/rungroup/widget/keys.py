"""Which columns the group-by controls offer first, and which key "+" proposes.

A column is a *key* (offered first), an *identifier* (``name``, ``id``, or text that is
different for every run: grouping by it makes one group per run) or *continuous* (numbers
with about as many values as runs, such as ``summary.*``: grouping by them splits nothing
useful). "+" proposes the key that splits the most of the current groups, and of those the
one that makes the fewest groups (the coarsest split that still splits).
"""

from __future__ import annotations

import polars as pl

from rungroup.runs import Runs
from rungroup.view import View

KEY = "key"
IDENTIFIER = "identifier"
CONTINUOUS = "continuous"
#: Text columns with a value per run are identifiers from this many runs on (fewer runs
#: with distinct labels are often the few settings of a sweep).
IDENTIFIER_RUNS = 10
#: Number columns with more distinct values than this, and than half the runs, are continuous.
CONTINUOUS_VALUES = 20


def column_kind(name: str, dtype: pl.DataType, distinct: int, runs: int) -> str:
    if name in ("name", "id"):
        return IDENTIFIER
    if dtype == pl.String and runs >= IDENTIFIER_RUNS and distinct == runs:
        return IDENTIFIER
    if dtype.is_float() and distinct > CONTINUOUS_VALUES and distinct > runs / 2:
        return CONTINUOUS
    return KEY


def best_split(runs: Runs, view: View, offered: list[dict[str, object]]) -> str | None:
    """The key column to add to `view`'s grouping (see the module docs); None if none is left."""
    used = set(view.group_by)
    candidates = [
        str(c["name"])
        for c in offered
        if c.get("kind") == KEY and c["name"] not in used and int(str(c["distinct"])) > 1
    ]
    if not candidates:
        return None
    frame = runs.runs
    current = [k for k in view.group_by if k in frame.columns and k != "tags"]
    if not view.grouping or not current:
        # nothing grouped yet: the key with the fewest groups that still splits
        return min(candidates, key=lambda c: (frame[c].n_unique(), candidates.index(c)))
    scores = frame.group_by(current).agg(
        [pl.col(c).n_unique().alias(c) for c in candidates if c in frame.columns]
    )
    best: tuple[int, int, int] | None = None
    chosen: str | None = None
    for place, name in enumerate(candidates):
        if name not in scores.columns:
            continue
        split = int((scores[name] > 1).sum())
        made = int(scores[name].sum())
        score = (-split, made, place)
        if split > 0 and (best is None or score < best):
            best, chosen = score, name
    return chosen or candidates[0]
