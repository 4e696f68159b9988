"""The runs table of `rungroup.Explorer`: filter, group membership, rows, pages.

Pure functions of (Runs, View, the widget's table settings): which runs pass the filter box,
which runs are in which series (the engine's grouping), and the table the browser pages
through (group rows with their expanded runs, or run rows; sorted; cells as display text).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from rungroup.engine.grouping import (
    LABEL_SEPARATOR,
    RUN_KEY,
    _label_expression,
    group_runs,
    key_columns_of,
)
from rungroup.engine.workspace import Workspace
from rungroup.runs import CONFIG_PREFIX, Runs
from rungroup.view import View
from rungroup.widget.payload import ipc

#: Table rows the kernel serves per page (the front end reads it from `info["page_size"]`).
PAGE_SIZE = 200

#: Prefixes of the metric columns of the runs table: final value (or group mean) and std.
METRIC = "m:"
METRIC_STD = "s:"
#: Row metadata columns of the table (the browser reads them; never shown as cells).
ROW_META = ("_kind", "_key", "_series", "_depth", "_hidden", "_expanded", "_count")
#: A group row's count of distinct values of a config column (``_n:<column>``), its visible
#: runs (``_visible``), and the shown columns whose runs differ (``_mixed``, one name a line:
#: the browser mutes those cells).
DISTINCT = "_n:"
VISIBLE = "_visible"
MIXED = "_mixed"


# --- runs filter and groups


def filter_runs(runs: Runs, text: str) -> Runs:
    """Runs whose name, id, group, job type or a tag contains `text` (case-insensitive)."""
    needle = text.strip().lower()
    if not needle:
        return runs
    frame = runs.runs

    def has(column: str) -> pl.Expr:
        return pl.col(column).cast(pl.String).str.to_lowercase().str.contains(needle, literal=True)

    conditions = [has(c).fill_null(False) for c in ("name", "id", "group", "job_type")]
    if "tags" in frame.columns:
        conditions.append(
            pl.col("tags")
            .list.eval(pl.element().str.to_lowercase().str.contains(needle, literal=True))
            .list.any()
            .fill_null(False)
        )
    return runs.filter(pl.any_horizontal(conditions))


def group_columns(runs: Runs, view: View) -> list[str]:
    """The key columns of the groups (every config key but the chosen ones with `reverse`)."""
    if not view.grouping:
        return []
    return list(key_columns_of(runs, view))


def membership(runs: Runs, view: View, workspace: Workspace | None = None) -> pl.DataFrame:
    """One row per (run, series): ``id`` and ``series`` (its label in the charts).

    The engine's own grouping (`rungroup.engine.grouping`), with no run hidden, so that a
    hidden run (or a group whose runs are all hidden) keeps its row in the table. A run in
    several tag groups (``group_by="tags"``) has one row per tag.
    """
    if workspace is None:
        grouping = group_runs(runs, view.replace(hidden=frozenset()))
    else:  # the grouping the aggregation leaves the hidden runs out of
        grouping = workspace.grouping(view, hidden=False)
    return (
        grouping.members.join(grouping.runs.select("_r", RUN_KEY), on="_r")
        .join(grouping.series.select("_s", "series"), on="_s")
        .sort("_s", "_r")
        .select(pl.col(RUN_KEY).alias("id"), pl.col("series").cast(pl.String))
    )


def membership_of_runs(runs: Runs, view: View) -> pl.DataFrame:
    """``id`` and ``series`` with grouping off: each run's own label (as in `focus_frame`)."""
    return membership(runs, view.replace(grouping=False))


# --- the runs table


def _display_value(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        return f"{value:.{digits}g}"
    if isinstance(value, list):
        return ", ".join(_display_value(v) for v in value)
    return str(value)


@dataclass
class Table:
    """The runs table as the browser pages through it."""

    #: Sorted rows: `ROW_META` columns, then the raw values of every column.
    rows: pl.DataFrame
    #: Shown columns, in order: ``{"name", "label", "numeric"}``.
    columns: list[dict[str, Any]]
    #: Every column the picker offers.
    all_columns: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.rows.height

    def meta(self) -> dict[str, Any]:
        return {"total": self.total, "columns": self.columns, "all_columns": self.all_columns}

    def display(self, offset: int = 0, limit: int | None = None) -> pl.DataFrame:
        """Rows `offset` .. `offset + limit` with every shown cell as display text."""
        part = self.rows.slice(offset, limit)
        out: dict[str, pl.Series] = {name: part[name] for name in ROW_META}
        mixed: list[list[str]] = [[] for _ in range(part.height)]
        for column in self.columns:
            name = column["name"]
            if DISTINCT + name in part.columns:
                # a group's config cell: its runs' shared value, or how many they have
                counts = part[DISTINCT + name].to_list()
                values = part[name].to_list()
                text = []
                for i, (value, count) in enumerate(zip(values, counts, strict=True)):
                    if count is not None and count > 1:
                        mixed[i].append(name)
                        text.append(f"{count} values")
                    else:
                        text.append(_display_value(value))
            elif name == "runs" and VISIBLE in part.columns:
                # "9 of 10": the group's statistics use its visible runs
                text = [
                    f"{v} of {r}"
                    if v is not None and r is not None and v < r
                    else _display_value(r)
                    for v, r in zip(part[VISIBLE].to_list(), part["runs"].to_list(), strict=True)
                ]
            elif name.startswith(METRIC):
                std_name = METRIC_STD + name[len(METRIC) :]
                means = part[name].to_list() if name in part.columns else [None] * part.height
                stds = (
                    part[std_name].to_list() if std_name in part.columns else [None] * part.height
                )
                text = [
                    _display_value(m) + (f" ± {_display_value(s, 2)}" if s is not None else "")
                    for m, s in zip(means, stds, strict=True)
                ]
            elif name in part.columns:
                text = [_display_value(v) for v in part[name].to_list()]
            else:
                text = [""] * part.height
            out[name] = pl.Series(name, text, dtype=pl.String)
        out[MIXED] = pl.Series(MIXED, ["\n".join(m) for m in mixed], dtype=pl.String)
        return pl.DataFrame(out)


def table_page(table: Table, offset: int, limit: int) -> bytes:
    return ipc(table.display(offset, limit))


def _column(name: str, numeric: bool, label: str | None = None) -> dict[str, Any]:
    return {"name": name, "label": label or name, "numeric": numeric}


def _displayable(frame: pl.DataFrame) -> pl.DataFrame:
    """Config columns of odd types (structs, objects) as strings, so that rows concatenate."""
    casts = []
    for name, dtype in frame.schema.items():
        if name.startswith(CONFIG_PREFIX) and not (
            dtype.is_numeric() or dtype == pl.Boolean or dtype == pl.String
        ):
            if isinstance(dtype, pl.List):
                casts.append(pl.col(name).list.eval(pl.element().cast(pl.String)).list.join(", "))
            else:
                casts.append(pl.col(name).cast(pl.String, strict=False))
    return frame.with_columns(casts) if casts else frame


def build_table(
    runs: Runs,
    view: View,
    membership: pl.DataFrame,
    finals: pl.DataFrame,
    *,
    focus: str | None = None,
    sort: Sequence[str] = (),
    expanded: Iterable[str] = (),
    columns: Sequence[str] = (),
) -> Table:
    """The runs table: group rows (with their expanded runs) when grouped, else run rows.

    On a group page (`focus`) the table lists the group's runs with the config keys that
    differ between them.
    """
    hidden = view.hidden
    metric_names = list(view.metrics) or runs.metrics
    base = _displayable(runs.runs)
    config = [c for c in base.columns if c.startswith(CONFIG_PREFIX)]
    metric_columns = [f"{METRIC}{m}" for m in runs.metrics]
    run_rows = base.join(finals, on="id", how="left").with_columns(
        pl.lit("run").alias("_kind"),
        pl.col("id").alias("_key"),
        pl.col("id").is_in(list(hidden)).alias("_hidden"),
        pl.lit(False).alias("_expanded"),
        pl.lit(1).cast(pl.Int32).alias("_count"),
    )
    for name in metric_columns:
        if name not in run_rows.columns:
            run_rows = run_rows.with_columns(pl.lit(None, dtype=pl.Float64).alias(name))
    sort_column, descending = _sort_spec(sort)

    def ordered(frame: pl.DataFrame, default: str) -> pl.DataFrame:
        by = sort_column if sort_column in frame.columns else default
        return frame.sort(by, descending=descending, nulls_last=True, maintain_order=True)

    grouped = view.grouping and focus is None
    if not grouped:
        if focus is not None:
            ids = membership.filter(pl.col("series") == focus)["id"]
            run_rows = run_rows.filter(pl.col("id").is_in(ids.implode()))
            differing = [c for c in config if run_rows[c].n_unique() > 1]
            default = ["name", "state", *differing]
            # each run is its own series on a group page (its thin line), for hover emphasis
            own = membership_of_runs(runs, view)
            series = pl.col("id").replace_strict(
                own["id"], own["series"], default=None, return_dtype=pl.String
            )
        else:
            default = ["name", "group", "state", *_varying(run_rows, config)[:4]]
            series = pl.col("id").replace_strict(
                membership["id"], membership["series"], default=None, return_dtype=pl.String
            )
        rows = ordered(
            run_rows.with_columns(series.alias("_series"), pl.lit(0).alias("_depth")), "name"
        )
        offered = ["name", "group", "job_type", "state", "tags", *config, *metric_columns]
        metrics_shown = [f"{METRIC}{m}" for m in metric_names[:4]]
        if focus is not None:
            # a group page is opened to see how its runs differ: those columns come first
            shown_default = ["name", *differing, *metrics_shown, "state"]
        else:
            shown_default = [*default[:1], *metrics_shown, *default[1:]]
    else:
        member_rows = run_rows.join(membership, on="id", how="inner").rename({"series": "_series"})
        expanded_set = set(expanded)
        keys = group_columns(runs, view)
        levels = tree_levels(view, keys, member_rows)
        if levels > 1:
            member_rows = member_rows.with_columns(_prefixes(keys))

        def summarised(by: str) -> pl.DataFrame:
            """One row per value of `by`: run counts, shared config, metric mean and std
            over the visible runs."""
            visible = member_rows.filter(~pl.col("_hidden"))
            shared = [
                pl.when(pl.col(c).n_unique() == 1).then(pl.col(c).first()).alias(c) for c in config
            ]
            counts = member_rows.group_by(by).agg(
                pl.len().cast(pl.Int32).alias("runs"),
                (~pl.col("_hidden")).sum().cast(pl.Int32).alias(VISIBLE),
                pl.col("_hidden").all().alias("_hidden"),
                *shared,
                *[pl.col(c).n_unique().cast(pl.Int32).alias(DISTINCT + c) for c in config],
                *[pl.col(f"{PREFIX}{d}").first() for d in range(1, levels) if f"{PREFIX}{d}" != by],
            )
            stats = visible.group_by(by).agg(
                *[pl.col(m).filter(pl.col(m).is_finite()).mean().alias(m) for m in metric_columns],
                *[
                    pl.col(m)
                    .filter(pl.col(m).is_finite())
                    .std()
                    .alias(METRIC_STD + m[len(METRIC) :])
                    for m in metric_columns
                ],
            )
            return counts.join(stats, on=by, how="left")

        groups = summarised("_series").with_columns(
            pl.lit("group").alias("_kind"),
            pl.col("_series").alias("_key"),
            pl.col("_series").alias("name"),
            pl.col("_series").is_in(list(expanded_set)).alias("_expanded"),
            pl.col("runs").alias("_count"),
            pl.lit(levels - 1).alias("_depth"),
        )
        groups = ordered(groups, "name")
        children = member_rows.filter(pl.col("_series").is_in(list(expanded_set)))
        children = ordered(children, "name").with_columns(pl.lit(levels).alias("_depth"))
        if levels > 1:
            rows = _tree(keys, levels, summarised, groups, children, expanded_set, ordered)
        else:
            groups = groups.with_row_index("_g")
            children = children.with_columns(pl.int_range(pl.len()).over("_series").alias("_r"))
            children = children.join(groups.select("_series", "_g"), on="_series", how="left")
            rows = (
                pl.concat(
                    [groups.with_columns(pl.lit(-1).cast(pl.Int64).alias("_r")), children],
                    how="diagonal_relaxed",
                )
                .sort("_g", "_r")
                .drop("_g", "_r")
            )
        varying = [c for c in _varying(run_rows, config) if c not in keys]
        offered = ["name", "runs", "state", *config, *metric_columns]
        metrics_shown = [f"{METRIC}{m}" for m in metric_names[:4]]
        shown_default = ["name", "runs", *metrics_shown, *varying[:4]]
    numeric = {"runs", *metric_columns} | {
        c for c in config if c in rows.columns and rows.schema[c].is_numeric()
    }
    labels = {m: m[len(METRIC) :] for m in metric_columns}
    offered = [c for c in dict.fromkeys(offered) if c in rows.columns or c.startswith(METRIC)]
    chosen = [c for c in columns if c in offered] or [c for c in shown_default if c in offered]
    if "name" in chosen:
        chosen.remove("name")
    chosen = ["name", *chosen]
    rows = rows.with_columns(
        pl.col("_series").cast(pl.String),
        pl.col("_key").cast(pl.String),
        pl.col("_depth").cast(pl.Int8),
        pl.col("_count").cast(pl.Int32),
    )
    return Table(
        rows=rows,
        columns=[_column(c, c in numeric, labels.get(c)) for c in chosen],
        all_columns=[_column(c, c in numeric, labels.get(c)) for c in offered],
    )


#: Columns of a run's key prefixes in a tree (``_p1`` = its first key's label, ...).
PREFIX = "_p"


def tree_levels(view: View, keys: Sequence[str], members: pl.DataFrame) -> int:
    """How many levels the table's groups have: one per group-by key when the keys are
    plain columns (not reverse grouping, not tags, whose groups overlap), else 1."""
    if not view.grouping or view.reverse or len(keys) < 2 or "tags" in keys:
        return 1
    if any(k not in members.columns for k in keys):
        return 1
    return len(keys)


def _prefixes(keys: Sequence[str]) -> list[pl.Expr]:
    """Each run's label at every level above the series (the series' labels joined as the
    engine joins them, so that a parent's key is a prefix of its series' labels)."""
    return [
        pl.concat_str([_label_expression(k) for k in keys[:d]], separator=LABEL_SEPARATOR).alias(
            f"{PREFIX}{d}"
        )
        for d in range(1, len(keys))
    ]


def _short(key: str) -> str:
    return key[len(CONFIG_PREFIX) :] if key.startswith(CONFIG_PREFIX) else key


def _tree(
    keys: Sequence[str],
    levels: int,
    summarised: Callable[[str], pl.DataFrame],
    groups: pl.DataFrame,
    children: pl.DataFrame,
    expanded: set[str],
    ordered: Callable[[pl.DataFrame, str], pl.DataFrame],
) -> pl.DataFrame:
    """The table's rows as a tree: a row per value of the first key (``_kind`` "branch",
    its own statistics), under it one per value of the next, ... down to the series (the
    charts' groups) and, when opened, their runs. A row's children show when its key is in
    `expanded`."""
    parts: list[pl.DataFrame] = []
    for depth in range(1, levels):
        column = f"{PREFIX}{depth}"
        branch = summarised(column).with_columns(
            pl.lit("branch").alias("_kind"),
            pl.col(column).alias("_key"),
            pl.lit(None, dtype=pl.String).alias("_series"),
            pl.col(column).is_in(list(expanded)).alias("_expanded"),
            pl.col("runs").alias("_count"),
            pl.lit(depth - 1).alias("_depth"),
            pl.lit(_short(keys[depth - 1]) + "=").alias("_name_key"),
        )
        parent = f"{PREFIX}{depth - 1}" if depth > 1 else None
        parts.append(_with_parent_and_name(branch, column, parent))
    leaf_parent = f"{PREFIX}{levels - 1}"
    leaves = groups.with_columns(pl.lit(_short(keys[-1]) + "=").alias("_name_key"))
    parts.append(_with_parent_and_name(leaves, "_series", leaf_parent))
    runs = children.with_columns(pl.col("_series").alias("_parent"))
    frames = [ordered(p, "name") for p in parts] + [runs]
    every = pl.concat(frames, how="diagonal_relaxed").with_row_index("_uid")
    under: dict[str | None, list[int]] = {}
    for uid, parent in every.select("_uid", "_parent").iter_rows():
        under.setdefault(parent, []).append(uid)
    key_of = dict(every.select("_uid", "_key").iter_rows())
    kind_of = dict(every.select("_uid", "_kind").iter_rows())
    order: list[int] = []

    def emit(parent: str | None) -> None:
        for uid in under.get(parent, []):
            order.append(uid)
            key = key_of[uid]
            if kind_of[uid] != "run" and key in expanded:
                emit(key)

    emit(None)
    placed = pl.DataFrame(
        {"_uid": order, "_o": range(len(order))}, schema={"_uid": pl.UInt32, "_o": pl.Int64}
    )
    return (
        every.join(placed, on="_uid", how="inner")
        .sort("_o")
        .drop("_uid", "_o", "_parent", "_name_key")
    )


def _with_parent_and_name(frame: pl.DataFrame, column: str, parent: str | None) -> pl.DataFrame:
    """`frame` with ``_parent`` (its parent row's key) and a name that says the key and the
    value it stands for ("seed=0"; the last part of its label)."""
    last = pl.col(column).cast(pl.String).str.split(LABEL_SEPARATOR).list.last()
    return frame.with_columns(
        (pl.col(parent) if parent else pl.lit(None, dtype=pl.String)).alias("_parent"),
        pl.concat_str(pl.col("_name_key"), last).alias("name"),
    )


def _varying(rows: pl.DataFrame, columns: Sequence[str]) -> list[str]:
    """The columns whose value is not the same for every row (nulls count as a value)."""
    return [c for c in columns if rows[c].n_unique() > 1]


def _sort_spec(sort: Sequence[str]) -> tuple[str | None, bool]:
    if not sort:
        return None, False
    column = sort[0]
    direction = sort[1] if len(sort) > 1 else "asc"
    if direction not in ("asc", "desc"):
        raise ValueError(f"sort direction {direction!r} is not valid; choose one of: asc, desc")
    return column, direction == "desc"
