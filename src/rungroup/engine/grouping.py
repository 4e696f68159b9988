"""Which runs form which series: group-by keys, tag explode, reverse grouping, hidden runs.

`group_runs(runs, view)` gives every selected run a dense index ``_r`` (in run id order) and
every series a dense
index ``_s`` (series sorted by their key values, so the numbering never depends on the order of
the runs), plus the membership pairs ``(_r, _s)``: a run with several tags is a member of each
of its tag groups, every other run of exactly one series.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import polars as pl

from rungroup.runs import CONFIG_PREFIX, Runs
from rungroup.view import View, check_against_runs

#: Series label of a null key value (DESIGN.md).
MISSING = "(missing)"
#: Series label when grouping is on but there are no key columns.
ALL_RUNS = "(all runs)"
#: Joins the key values of nested groups in a series label.
LABEL_SEPARATOR = " / "
#: The key column when grouping is off.
RUN_KEY = "run_id"


@dataclass(frozen=True)
class Grouping:
    """The series of one aggregation and the runs that make them up."""

    #: Output key columns (run columns, or ``run_id`` when grouping is off).
    key_columns: tuple[str, ...]
    #: Their dtypes in the output (tags become String, other list columns their text).
    key_schema: dict[str, pl.DataType]
    #: Selected runs: ``run_id`` (String), ``_r`` (dense index), ``name``.
    runs: pl.DataFrame
    #: ``_r``, ``_s``: which run belongs to which series (a run may be in several).
    members: pl.DataFrame
    #: ``_s``, the key columns, ``series``: one row per series, sorted by ``_s``.
    series: pl.DataFrame


def key_columns_of(runs: Runs, view: View) -> tuple[str, ...]:
    """The run columns that form the groups under `view` (validated)."""
    check_against_runs(view, runs, "group_by")
    if not view.grouping:
        return (RUN_KEY,)
    if view.reverse:
        return tuple(
            c for c in runs.runs.columns if c.startswith(CONFIG_PREFIX) and c not in view.group_by
        )
    return view.group_by


def _key_expression(name: str, dtype: pl.DataType) -> pl.Expr:
    """A key column as it appears in the output: lists other than tags become their text."""
    if isinstance(dtype, pl.List) and name != "tags":
        inner = pl.col(name).list.eval(pl.element().cast(pl.String)).list.join(", ")
        return pl.concat_str(pl.lit("["), inner, pl.lit("]")).alias(name)
    if isinstance(dtype, pl.Struct | pl.Array | pl.Object):
        raise ValueError(f"cannot group by {name!r}: its values are {dtype}, not simple values")
    return pl.col(name)


def _label_expression(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.String).fill_null(MISSING)


def _unique_labels(labels: pl.Series) -> pl.Series:
    """Make labels unique by suffixing repeats with " (2)", " (3)", ... in series order."""
    if labels.n_unique() == labels.len():
        return labels
    seen: dict[str, int] = {}
    out: list[str] = []
    for label in labels.to_list():
        count = seen.get(label, 0) + 1
        seen[label] = count
        out.append(label if count == 1 else f"{label} ({count})")
    return pl.Series(labels.name, out, dtype=pl.String)


#: The last groupings made, with the run columns they were made from: the widget groups the
#: same runs twice per update (its table, then `aggregate()`), and a live widget groups runs
#: whose states and summaries change at every poll but whose groups rarely do.
_CACHE_SIZE = 4
_cache: OrderedDict[tuple[Any, ...], tuple[pl.DataFrame, Grouping]] = OrderedDict()


def group_runs(runs: Runs, view: View) -> Grouping:
    """The series of `view` over `runs` (validated). Kept, and reused while the run columns it
    depends on (id, name, the key columns) are equal."""
    keys = key_columns_of(runs, view)
    used = list(dict.fromkeys(["id", "name", *(k for k in keys if k in runs.runs.columns)]))
    inputs = runs.runs.select(used)
    key = (view.group_by, view.grouping, view.reverse, view.hidden, tuple(used))
    hit = _cache.get(key)
    if hit is not None and hit[0].equals(inputs):
        _cache.move_to_end(key)
        return hit[1]
    made = _group_runs(runs, view)
    _cache[key] = (inputs, made)
    while len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return made


def _group_runs(runs: Runs, view: View) -> Grouping:
    keys = key_columns_of(runs, view)
    frame = runs.runs
    if view.hidden:
        frame = frame.filter(~pl.col("id").is_in(sorted(view.hidden)))
    # Runs are numbered in id order, not in the order they came in: every later step that
    # goes "run by run" (sums across runs, ties) is then independent of that order.
    frame = frame.sort("id")
    selected = frame.select(
        pl.col("id").alias(RUN_KEY),
        pl.col("name").fill_null(pl.col("id")).alias("name"),
    ).with_row_index("_r")
    selected = selected.with_columns(pl.col("_r").cast(pl.Int64))

    if not view.grouping:
        # One series per run, labelled by its name; a repeated name gets its id appended.
        labelled = selected.with_columns(
            pl.when(pl.col("name").is_duplicated())
            .then(pl.format("{} ({})", pl.col("name"), pl.col(RUN_KEY)))
            .otherwise(pl.col("name"))
            .alias("series")
        ).sort("series", RUN_KEY)
        labelled = labelled.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("_s"))
        series = labelled.select("_s", RUN_KEY, "series")
        members = labelled.select("_r", "_s").sort("_r")
        return Grouping(
            key_columns=(RUN_KEY,),
            key_schema={RUN_KEY: pl.String()},
            runs=selected,
            members=members,
            series=series,
        )

    schema = frame.schema
    exprs = [_key_expression(name, schema[name]) for name in keys]
    table = frame.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("_r"), *exprs)
    if "tags" in keys:
        # A run without tags (null or empty list) forms the "(missing)" group.
        table = table.with_columns(
            pl.when(pl.col("tags").list.len() > 0).then(pl.col("tags")).alias("tags")
        ).explode("tags")
    key_schema = {name: table.schema[name] for name in keys}
    if not keys:
        series = pl.DataFrame(
            {"_s": [0], "series": [ALL_RUNS]}, schema={"_s": pl.Int64, "series": pl.String}
        )
        members = selected.select("_r", pl.lit(0, dtype=pl.Int64).alias("_s"))
        return Grouping((), {}, selected, members, series)

    distinct = table.select(keys).unique().sort(list(keys), nulls_last=True)
    distinct = distinct.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("_s"))
    label = pl.concat_str([_label_expression(k) for k in keys], separator=LABEL_SEPARATOR)
    series = distinct.select("_s", *keys, label.alias("series"))
    series = series.with_columns(_unique_labels(series["series"]))
    members = (
        table.join(distinct, on=list(keys), how="inner", nulls_equal=True)
        .select("_r", "_s")
        .unique()
        .sort("_r", "_s")
    )
    return Grouping(tuple(keys), key_schema, selected, members, series)
