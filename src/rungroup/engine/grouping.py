"""Which runs form which series: group-by keys, tag explode, reverse grouping, hidden runs.

`group_runs(runs, view)` gives every selected run a dense index ``_r`` (in run id order) and
every series a dense index ``_s`` (series sorted by their key values, so the numbering never
depends on the order of the runs), plus the membership pairs ``(_r, _s)``: a run with several
tags is a member of each of its tag groups, every other run of exactly one series.

Every run is grouped, then `without_hidden` leaves the view's hidden runs out: a `Workspace`
keeps the grouping of every run, which serves the runs table (hidden runs keep their rows) and
every aggregation whatever runs are hidden. Work is linear in the run table's cells: reverse
grouping by thousands of config keys reads each key column once.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from rungroup.runs import CONFIG_PREFIX, Runs
from rungroup.view import View, check_against_runs

#: Series label of a null key value (docs/architecture.md).
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


def group_runs(runs: Runs, view: View) -> Grouping:
    """The series of `view` over `runs` (validated); hidden runs left out."""
    return without_hidden(_group_runs(runs, view.replace(hidden=frozenset())), runs, view)


def grouping_inputs(runs: Runs, view: View) -> pl.DataFrame:
    """The run columns a grouping of `view` depends on (id, name, the key columns): a grouping
    made from runs whose inputs are equal is theirs too."""
    keys = key_columns_of(runs, view)
    present = set(runs.runs.columns)
    used = list(dict.fromkeys(["id", "name", *(k for k in keys if k in present)]))
    return runs.runs.select(used)


def without_hidden(grouping: Grouping, runs: Runs, view: View) -> Grouping:
    """`grouping` (of every run of `runs`) with the runs in `view.hidden` left out: what
    grouping the other runs gives, so that one grouping serves the runs table (every run) and
    the aggregation (the runs shown)."""
    hidden = [run_id for run_id in view.hidden if run_id]
    if not hidden:
        return grouping
    left = grouping.runs.filter(~pl.col(RUN_KEY).is_in(sorted(hidden)))
    if left.height == grouping.runs.height:
        return grouping
    if not view.grouping:  # labels depend on which names repeat among the runs left
        return _group_runs(runs, view)
    renumber = left.select(pl.col("_r"), pl.int_range(pl.len(), dtype=pl.Int64).alias("_new"))
    members = grouping.members.join(renumber, on="_r", how="inner", maintain_order="left")
    selected = left.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("_r"))
    if not grouping.key_columns:  # one series of every run, even of none
        members = members.select(pl.col("_new").alias("_r"), "_s")
        return Grouping((), {}, selected, members, grouping.series)
    kept = grouping.series.join(
        members.select("_s").unique(), on="_s", how="semi", maintain_order="left"
    )
    series_numbers = kept.select("_s", pl.int_range(pl.len(), dtype=pl.Int64).alias("_s_new"))
    keys = list(grouping.key_columns)
    label = pl.concat_str([_label_expression(k) for k in keys], separator=LABEL_SEPARATOR)
    series = kept.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("_s"), *keys, label.alias("series")
    )
    series = series.with_columns(_unique_labels(series["series"]))
    members = members.join(series_numbers, on="_s", maintain_order="left").select(
        pl.col("_new").alias("_r"), pl.col("_s_new").alias("_s")
    )
    return Grouping(grouping.key_columns, grouping.key_schema, selected, members, series)


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
    # the schema once: each `.schema` builds it afresh (keys x keys for thousands of keys)
    table_schema = table.schema
    key_schema = {name: table_schema[name] for name in keys}
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
