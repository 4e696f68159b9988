"""Payloads of `rungroup.Explorer`: what travels to the browser, built without any widget.

Pure functions of (Runs, View, widget state): the runs filter, group membership, the runs
table (group rows, expanded runs, sorted, paged) and the chart payload (the Vega-Lite spec
from `rungroup.chart()` with its data moved out into an Arrow IPC buffer). Kept apart from
`widget.py` so that they can be tested without a comm.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from rungroup.engine.aggregate import aggregate
from rungroup.engine.grouping import RUN_KEY, group_runs, key_columns_of
from rungroup.engine.stats import STAT_COLUMNS
from rungroup.runs import CONFIG_PREFIX, Runs
from rungroup.view import View

#: Name of the Vega dataset fed from Arrow in the browser (see js/src/chart/chart.ts).
DATA_NAME = "rungroup"
#: Name of the thin run-lines layer of a group page (numbered per panel).
RUNS_UNIT = "rg_runs"
#: Data field holding each series' place in the colour order (first appearance in the frame).
ORDER_FIELD = "rg_order"
_ALTAIR_VIEW = re.compile(r"view_[0-9a-f]+_\d+|view_\d+")
#: Vega signal set by the browser to emphasise one series (table row hover).
HOVER_SIGNAL = "rg_hover"
#: Datasets of a prepared spec: one per panel (and layer of a group page), filled by the
#: browser from the chart rows, and one per panel for the hovered series' tooltip points.
PART_PREFIX = "rg_data_"
TIP_PREFIX = "rg_tip_"
#: Fields whose leading equality filters pick a unit's rows (`chart()`'s panel filter and
#: `focus_spec`'s layer filter): such filters become datasets of their own.
PARTITION_FIELDS = ("metric", "layer")
#: Prefixes of the metric columns of the runs table: final value (or group mean) and std.
METRIC = "m:"
METRIC_STD = "s:"
#: Row metadata columns of the table (the browser reads them; never shown as cells).
ROW_META = ("_kind", "_key", "_series", "_depth", "_hidden", "_expanded", "_count")
#: Statistics that are drawn; they travel as float32 (7 significant digits, half the bytes).
_FLOAT32 = ("line", "lower", "upper", *STAT_COLUMNS)


def ipc(frame: pl.DataFrame) -> bytes:
    """Arrow IPC *stream* bytes in the oldest layout (plain/large strings, no views).

    The stream format, not the file format: flechette reads Polars' dictionary batches
    (categorical labels) from a stream, but not from Polars' file footer.
    """
    buffer = io.BytesIO()
    frame.write_ipc_stream(buffer, compression="uncompressed", compat_level=pl.CompatLevel.oldest())
    return buffer.getvalue()


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


def membership(runs: Runs, view: View) -> pl.DataFrame:
    """One row per (run, series): ``id`` and ``series`` (its label in the charts).

    The engine's own grouping (`rungroup.engine.grouping`), with no run hidden, so that a
    hidden run (or a group whose runs are all hidden) keeps its row in the table. A run in
    several tag groups (``group_by="tags"``) has one row per tag.
    """
    grouping = group_runs(runs, view.replace(hidden=frozenset()))
    return (
        grouping.members.join(grouping.runs.select("_r", RUN_KEY), on="_r")
        .join(grouping.series.select("_s", "series"), on="_s")
        .sort("_s", "_r")
        .select(pl.col(RUN_KEY).alias("id"), pl.col("series").cast(pl.String))
    )


def membership_of_runs(runs: Runs, view: View) -> pl.DataFrame:
    """``id`` and ``series`` with grouping off: each run's own label (as in `focus_frame`)."""
    return membership(runs, view.replace(grouping=False))


# --- final values and the runs table


def final_values(runs: Runs) -> pl.DataFrame:
    """Each run's last logged value of each metric: ``id`` and one ``m:<metric>`` column each."""
    # per (run, metric) rather than one sort of the whole history: half the time, and the
    # last of several values logged at the same step is the last one logged (a stable sort)
    last = (
        runs.history.group_by("run_id", "metric")
        .agg(pl.col("value").sort_by("step", maintain_order=True).last())
        .select(
            pl.col("run_id").cast(pl.String).alias("id"),
            pl.col("metric").cast(pl.String),
            "value",
        )
        .collect()
    )
    base = runs.runs.select("id")
    if last.height == 0:
        return base
    wide = last.pivot(on="metric", index="id", values="value")
    wide = wide.rename({m: f"{METRIC}{m}" for m in wide.columns if m != "id"})
    return base.join(wide, on="id", how="left")


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
        for column in self.columns:
            name = column["name"]
            if name.startswith(METRIC):
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
        shown_default = [*default[:1], *[f"{METRIC}{m}" for m in metric_names[:4]], *default[1:]]
    else:
        member_rows = run_rows.join(membership, on="id", how="inner").rename({"series": "_series"})
        visible = member_rows.filter(~pl.col("_hidden"))
        shared = [
            pl.when(pl.col(c).n_unique() == 1).then(pl.col(c).first()).alias(c) for c in config
        ]
        counts = member_rows.group_by("_series").agg(
            pl.len().cast(pl.Int32).alias("runs"),
            pl.col("_hidden").all().alias("_hidden"),
            *shared,
        )
        stats = visible.group_by("_series").agg(
            *[pl.col(m).filter(pl.col(m).is_finite()).mean().alias(m) for m in metric_columns],
            *[
                pl.col(m).filter(pl.col(m).is_finite()).std().alias(METRIC_STD + m[len(METRIC) :])
                for m in metric_columns
            ],
        )
        expanded_set = set(expanded)
        groups = counts.join(stats, on="_series", how="left").with_columns(
            pl.lit("group").alias("_kind"),
            pl.col("_series").alias("_key"),
            pl.col("_series").alias("name"),
            pl.col("_series").is_in(list(expanded_set)).alias("_expanded"),
            pl.col("runs").alias("_count"),
            pl.lit(0).alias("_depth"),
        )
        groups = ordered(groups, "name").with_row_index("_g")
        children = member_rows.filter(pl.col("_series").is_in(list(expanded_set)))
        children = ordered(children, "name").with_columns(
            pl.int_range(pl.len()).over("_series").alias("_r"), pl.lit(1).alias("_depth")
        )
        children = children.join(groups.select("_series", "_g"), on="_series", how="left")
        rows = (
            pl.concat(
                [groups.with_columns(pl.lit(-1).cast(pl.Int64).alias("_r")), children],
                how="diagonal_relaxed",
            )
            .sort("_g", "_r")
            .drop("_g", "_r")
        )
        keys = group_columns(runs, view)
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


# --- charts


def chart_dict(chart: Any) -> dict[str, Any]:
    """An Altair chart (or a spec dict) as a Vega-Lite dict with its data inline."""
    if isinstance(chart, dict):
        return copy.deepcopy(chart)
    spec: dict[str, Any] = chart.to_dict(validate=False)
    return spec


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _mark_type(unit: dict[str, Any]) -> str | None:
    mark = unit.get("mark")
    if isinstance(mark, str):
        return mark
    if isinstance(mark, dict):
        kind = mark.get("type")
        return kind if isinstance(kind, str) else None
    return None


def prepare_spec(spec: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Move the main dataset out of the spec (it travels as Arrow, named `DATA_NAME`), add
    the hover signal and the emphasis it drives; also return the data fields the spec uses."""
    spec = copy.deepcopy(spec)
    datasets: dict[str, Any] = spec.pop("datasets", None) or {}
    main = max(datasets, key=lambda name: len(datasets[name]), default=None)
    for node in _walk(spec):
        data = node.get("data")
        if not isinstance(data, dict):
            continue
        if (main is not None and data.get("name") == main) or (
            main is None and node is spec and "values" in data
        ):
            node["data"] = {"name": DATA_NAME}
    rest = {name: rows for name, rows in datasets.items() if name != main}
    if rest:
        spec["datasets"] = rest
    if "data" not in spec and not any("data" in n for n in _walk(spec) if n is not spec):
        spec["data"] = {"name": DATA_NAME}
    params = list(spec.get("params", []))
    if not any(p.get("name") == HOVER_SIGNAL for p in params if isinstance(p, dict)):
        params.append({"name": HOVER_SIGNAL, "value": None})
    spec["params"] = params
    dim_test = f"{HOVER_SIGNAL} !== null && datum.series !== {HOVER_SIGNAL}"
    split = _split_data(spec)
    for unit in list(_walk(spec)):
        kind = _mark_type(unit)
        if kind in ("circle", "point") and _invisible(unit):
            # Invisible points that only carry tooltips: one per point of every series is
            # thousands of marks to lay out on each repaint. Keep those of the hovered series
            # (hovering its line, band or table row), which is where a tooltip is wanted: in
            # a split spec the browser fills their dataset with that series' rows alone.
            if not split:
                hovered = f"{HOVER_SIGNAL} !== null && datum.series === {HOVER_SIGNAL}"
                unit["transform"] = [*unit.get("transform", []), {"filter": hovered}]
            continue
        if kind not in ("line", "area") or str(unit.get("name", "")).startswith(RUNS_UNIT):
            continue
        encoding = unit.setdefault("encoding", {})
        if not isinstance(encoding, dict):
            continue
        mark = unit.get("mark")
        base = mark.get("opacity") if isinstance(mark, dict) else None
        level = float(base) if isinstance(base, int | float) else (0.25 if kind == "area" else 1.0)
        dim = {"test": dim_test, "value": round(level * 0.15, 3)}
        current = encoding.get("opacity")
        if current is None:
            encoding["opacity"] = {"condition": dim, "value": level}
        elif isinstance(current, dict) and "value" in current:
            # keep the chart's own condition (e.g. legend isolation) after the hover one
            conditions = [dim, *_as_list(current.get("condition"))]
            encoding["opacity"] = {**current, "condition": conditions}
    _stable_names(spec)
    for node in _walk(spec):
        encoding = node.get("encoding")
        if not isinstance(encoding, dict):
            continue
        for channel in encoding.values():
            # An explicit list of series (the colour order) would make every data change a
            # new spec; the same order travels as data instead (`ORDER_FIELD`).
            if (
                isinstance(channel, dict)
                and channel.get("field") == "series"
                and isinstance(channel.get("sort"), list)
            ):
                channel["sort"] = {"field": ORDER_FIELD, "op": "min"}
    fields = {"series"}
    for node in _walk(spec):
        name = node.get("field")
        if isinstance(name, str):
            fields.add(name.split(".")[0] if "\\." not in name else name.replace("\\.", "."))
        for key in ("groupby",):
            group = node.get(key)
            if isinstance(group, list):
                fields.update(g for g in group if isinstance(g, str))
    return spec, sorted(fields)


def _split_data(spec: dict[str, Any]) -> bool:
    """Give each panel (and each layer of a group page) a dataset of its own, and its tooltip
    points another one; describe them in ``usermeta.rungroup.datasets`` for the browser.

    Vega runs a filter over every row for every panel, and remembers the rows it rejected, so
    one shared dataset costs each panel the whole frame on every data swap. The browser
    partitions the rows once instead (on the values of `PARTITION_FIELDS`). Returns False,
    leaving the spec as it is, when the units are not picked by such filters alone.
    """
    units = [u for u in _walk(spec) if "mark" in u]
    picked: list[tuple[dict[str, Any], dict[str, Any], list[Any]]] = []
    for unit in units:
        where: dict[str, Any] = {}
        transforms = list(unit.get("transform", []))
        while transforms:
            test = transforms[0].get("filter") if isinstance(transforms[0], dict) else None
            if not (
                isinstance(test, dict)
                and set(test) == {"field", "equal"}
                and test["field"] in PARTITION_FIELDS
                and test["field"] not in where
            ):
                break
            where[test["field"]] = test["equal"]
            transforms.pop(0)
        picked.append((unit, where, transforms))
    # a partition: every unit picked by the same fields, the panel's metric among them
    fields = {tuple(sorted(where)) for _, where, _ in picked}
    if len(fields) != 1 or "metric" not in picked[0][1]:
        return False
    if any("data" in u for u in units) or any("data" in n for n in _walk(spec.get("concat", []))):
        return False
    names: dict[tuple[Any, ...], str] = {}
    datasets: list[dict[str, Any]] = []
    for unit, where, transforms in picked:
        key = tuple(sorted(where.items()))
        if key not in names:
            names[key] = f"{PART_PREFIX}{len(names)}"
            datasets.append({"name": names[key], "where": where})
        name = names[key]
        if _mark_type(unit) in ("circle", "point") and _invisible(unit):
            tip = TIP_PREFIX + name[len(PART_PREFIX) :]
            if not any(d["name"] == tip for d in datasets):
                datasets.append({"name": tip, "where": where, "tip_of": name})
            name = tip
        # parse: null: the rows arrive typed (Arrow), so no per-row toNumber/toDate formula
        unit["data"] = {"name": name, "format": {"parse": None}}
        if transforms:
            unit["transform"] = transforms
        else:
            unit.pop("transform", None)
    spec.pop("data", None)
    usermeta = spec.setdefault("usermeta", {})
    usermeta["rungroup"] = {"datasets": datasets}
    return True


def _invisible(unit: dict[str, Any]) -> bool:
    mark = unit.get("mark")
    return isinstance(mark, dict) and mark.get("opacity") == 0


def _stable_names(spec: dict[str, Any]) -> None:
    """Altair names views with a per-chart hash (``view_<hash>_0``); make them ``rg_view_<i>``
    so that two charts of the same shape have the same spec."""
    renamed: dict[str, str] = {}
    for node in _walk(spec):
        name = node.get("name")
        if "mark" in node and isinstance(name, str) and _ALTAIR_VIEW.fullmatch(name):
            renamed[name] = node["name"] = f"rg_view_{len(renamed)}"
    if not renamed:
        return
    for node in _walk(spec):
        views = node.get("views")
        if isinstance(views, list):
            node["views"] = [renamed.get(v, v) if isinstance(v, str) else v for v in views]


def spec_key(spec: dict[str, Any]) -> str:
    """A digest of the spec's shape (no data): the browser re-embeds only when it changes."""
    text = json.dumps(spec, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def chart_payload(aggregated: pl.DataFrame, fields: Iterable[str]) -> bytes:
    """The chart's rows as Arrow IPC, as small as the drawing allows: only the fields the spec
    reads, statistics and x as float32, labels dictionary-encoded, counts as small integers."""
    wanted = set(fields) | {"series", "metric", "x", "line", "lower", "upper", "n"}
    if "layer" in aggregated.columns:
        wanted |= {"layer", "run"}
    keep = [c for c in aggregated.columns if c in wanted]
    frame = aggregated.select(keep)
    if ORDER_FIELD in wanted:
        order = aggregated["series"].unique(maintain_order=True)
        frame = frame.with_columns(
            pl.col("series")
            .replace_strict(order, pl.int_range(order.len(), eager=True), default=None)
            .cast(pl.Int16 if order.len() < 2**15 else pl.Int32)
            .alias(ORDER_FIELD)
        )
    casts: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        if name in _FLOAT32 or (name == "x" and dtype.is_float()):
            casts.append(pl.col(name).cast(pl.Float32))
        elif name == "x" and dtype.is_integer():
            casts.append(pl.col(name).cast(pl.Float64 if _wide(frame[name]) else pl.Float32))
        elif dtype == pl.String:
            casts.append(pl.col(name).cast(pl.Categorical))
        elif name == "n" and dtype.is_integer():
            small = frame.height == 0 or bool(frame[name].max() < 2**15)  # type: ignore[operator]
            casts.append(pl.col(name).cast(pl.Int16 if small else pl.Int32))
    return ipc(frame.with_columns(casts) if casts else frame)


def _wide(column: pl.Series) -> bool:
    """Integers that float32 cannot hold exactly (beyond 2**24)."""
    if column.len() == 0:
        return False
    return bool(column.abs().max() > 2**24)  # type: ignore[operator]


# --- group page


def focus_frame(group_runs: Runs, view: View, label: str) -> pl.DataFrame:
    """What a group page shows: the group's line and band (``layer="group"``) and each of its
    runs (``layer="run"``, run label in ``run``, ``series`` = the group, for its colour)."""
    group = aggregate(group_runs, view=view).with_columns(
        pl.lit("group").alias("layer"), pl.lit(None, dtype=pl.String).alias("run")
    )
    single = aggregate(group_runs, view=view.replace(grouping=False))
    single = single.with_columns(
        pl.col("series").cast(pl.String).alias("run"),
        pl.lit(label).alias("series"),
        pl.lit("run").alias("layer"),
    )
    group = group.with_columns(pl.col("series").cast(pl.String))
    return pl.concat([group, single], how="diagonal_relaxed")


def focus_spec(spec: dict[str, Any], view: View) -> dict[str, Any]:
    """Add thin run lines under the group's line and band in every panel (a group page)."""
    spec = copy.deepcopy(spec)
    only_group = {"filter": {"field": "layer", "equal": "group"}}
    for unit in _walk(spec):
        if "mark" in unit:
            unit["transform"] = [only_group, *unit.get("transform", [])]
    parents = [p for p in _walk(spec) if isinstance(p.get("layer"), list)]
    if not parents and _mark_type(spec) == "line":
        unit_keys = ("mark", "encoding", "transform", "params", "name")
        top = {k: v for k, v in spec.items() if k not in unit_keys}
        top["layer"] = [{k: spec[k] for k in unit_keys if k in spec}]
        spec, parents = top, [top]
    for parent in parents:
        layers = parent["layer"]
        line_unit = next((u for u in layers if _mark_type(u) == "line"), None)
        if line_unit is not None:
            layers.insert(0, _runs_unit(line_unit))
    _number_runs_units(spec)
    return spec


def _number_runs_units(spec: dict[str, Any]) -> None:
    for i, unit in enumerate(u for u in _walk(spec) if u.get("name") == RUNS_UNIT):
        unit["name"] = f"{RUNS_UNIT}_{i}"


def _runs_unit(line_unit: dict[str, Any]) -> dict[str, Any]:
    runs_unit = copy.deepcopy(line_unit)
    runs_unit["name"] = RUNS_UNIT
    runs_unit["transform"] = [
        {"filter": {"field": "layer", "equal": "run"}},
        *runs_unit["transform"][1:],
    ]
    runs_unit["mark"] = {"type": "line", "strokeWidth": 1, "opacity": 0.4, "clip": True}
    encoding = runs_unit.setdefault("encoding", {})
    for drop in ("opacity", "strokeWidth", "size", "strokeDash"):
        encoding.pop(drop, None)
    encoding["detail"] = {"field": "run", "type": "nominal"}
    # hovering a run (its table row or its line) brings it forward and dims the others
    encoding["opacity"] = {
        "condition": [
            {"test": f"{HOVER_SIGNAL} !== null && datum.run === {HOVER_SIGNAL}", "value": 1.0},
            {"test": f"{HOVER_SIGNAL} !== null && datum.series !== {HOVER_SIGNAL}", "value": 0.1},
        ],
        "value": 0.4,
    }
    encoding["tooltip"] = [
        {"field": "run", "type": "nominal", "title": "run"},
        {"field": "x", "type": "quantitative" if "x" not in encoding else encoding["x"]["type"]},
        {"field": "line", "type": "quantitative", "title": "value", "format": ".6g"},
    ]
    return runs_unit


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
