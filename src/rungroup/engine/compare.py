"""`compare(runs, metric=..., group_by=...)`: did this change help? One row per group.

Each run is first reduced to one score (`engine/scores.py`). Per group, over its n finite
scores: the mean with its Student t interval and a bootstrap interval, the median and the IQM
with bootstrap intervals. Against a baseline group: the difference of means with Welch's
interval and p-value (and a bootstrap interval), Hedges' g, the probability of improvement
P(X better than Y) + P(tie)/2 with a bootstrap interval (rliable's definition), p-values
corrected across groups by Holm's method; with ``pair_by``, the paired t test of the
differences of runs that share a pairing key, and with ``test_train_ratio`` Nadeau and
Bengio's corrected resampled t test. `performance_profile` gives, per group and threshold, the
fraction of runs that score better than the threshold, with bootstrap bands.

The bootstrap (`engine/resample.py`) resamples each group's scores on its own, from streams
seeded by ``(seed, n, stream)``, so an interval depends only on the scores involved, the seed, the
number of resamples and the group sizes: not on run order, group names or the other groups.

Every formula and its reference is in docs/statistics.md; the statistics are numpy only (no
scipy), the t distribution is `engine/tdist.py`'s.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl

from rungroup.engine import inference, resample
from rungroup.engine.grouping import RUN_KEY, Grouping, group_runs
from rungroup.engine.recipe import attach_recipe
from rungroup.engine.scores import REDUCTIONS, run_scores, x_limit
from rungroup.runs import Runs
from rungroup.view import View, resolve_view

#: How the p-values of the groups compared with one baseline are corrected.
CORRECTION = "holm"
#: Metric names containing one of these are guessed to be better when lower.
LOWER_IS_BETTER_PARTS = ("loss", "error", "regret", "perplexity")
#: ... or having one of these as a word (split at anything but letters and digits).
LOWER_IS_BETTER_WORDS = ("err", "mse", "mae", "rmse", "nll", "ppl", "wer", "cer", "fid")
#: Default number of thresholds of a performance profile.
PROFILE_POINTS = 101

#: What each column of `compare()`'s frame is (written into its recipe).
COLUMNS: dict[str, str] = {
    "runs": "runs in the group",
    "n": "runs with a finite score",
    "mean": "mean score",
    "std": "sample standard deviation (ddof 1)",
    "mean_low": "t interval of the mean",
    "mean_high": "t interval of the mean",
    "mean_boot_low": "percentile bootstrap interval of the mean",
    "mean_boot_high": "percentile bootstrap interval of the mean",
    "median": "median score",
    "median_low": "percentile bootstrap interval of the median",
    "median_high": "percentile bootstrap interval of the median",
    "iqm": "interquartile mean (25 % trimmed mean)",
    "iqm_low": "percentile bootstrap interval of the IQM",
    "iqm_high": "percentile bootstrap interval of the IQM",
    "is_baseline": "this group is the baseline",
    "diff": "mean - baseline mean",
    "diff_low": "Welch interval of the difference",
    "diff_high": "Welch interval of the difference",
    "diff_boot_low": "percentile bootstrap interval of the difference (two samples)",
    "diff_boot_high": "percentile bootstrap interval of the difference (two samples)",
    "t": "Welch's t statistic",
    "df": "Welch-Satterthwaite degrees of freedom",
    "p_value": "two-sided p-value of Welch's t test",
    "p_holm": "p_value corrected across groups (Holm)",
    "hedges_g": "Hedges' g: (mean - baseline mean) / pooled std, small-sample corrected",
    "prob_improvement": "P(score better than a baseline score) + P(tie) / 2",
    "prob_improvement_low": "percentile bootstrap interval of prob_improvement",
    "prob_improvement_high": "percentile bootstrap interval of prob_improvement",
    "pairs": "runs paired with a baseline run by pair_by",
    "paired_diff": "mean of the paired differences (run - baseline run)",
    "paired_low": "t interval of the paired difference",
    "paired_high": "t interval of the paired difference",
    "paired_t": "paired t statistic",
    "paired_p": "two-sided p-value of the paired t test",
    "paired_p_holm": "paired_p corrected across groups (Holm)",
    "nb_low": "Nadeau-Bengio corrected interval of the paired difference",
    "nb_high": "Nadeau-Bengio corrected interval of the paired difference",
    "nb_t": "Nadeau-Bengio corrected resampled t statistic",
    "nb_p": "two-sided p-value of the corrected resampled t test",
    "nb_p_holm": "nb_p corrected across groups (Holm)",
}
_GROUP_COLUMNS = tuple(COLUMNS)[:14]
_BASELINE_COLUMNS = tuple(COLUMNS)[14:28]
_PAIRED_COLUMNS = tuple(COLUMNS)[28:35]
_NB_COLUMNS = tuple(COLUMNS)[35:]
_INTEGER_COLUMNS = ("runs", "n", "pairs")


@dataclass(frozen=True)
class Comparison:
    """The settings of a comparison beyond its View: written into the frame's recipe."""

    metric: str
    reduce: str
    k: int
    at: float | None
    baseline: Any
    pair_by: tuple[str, ...]
    higher_is_better: bool
    direction_guessed: bool
    test_train_ratio: float | None
    correction: str
    ci_level: float
    bootstrap_samples: int
    seed: int

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["pair_by"] = list(self.pair_by)
        baseline = self.baseline
        if isinstance(baseline, tuple):
            out["baseline"] = [_json_value(v) for v in baseline]
        else:
            out["baseline"] = _json_value(baseline)
        return out


def _json_value(value: Any) -> Any:
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


def guess_higher_is_better(metric: str) -> bool:
    """False for names that read as a loss or an error (``val_loss``, ``top1_err``, ``mse``)."""
    name = metric.lower()
    if any(part in name for part in LOWER_IS_BETTER_PARTS):
        return False
    return not any(word in LOWER_IS_BETTER_WORDS for word in re.split(r"[^a-z0-9]+", name))


def _direction(metric: str, higher_is_better: bool | None) -> tuple[bool, bool]:
    """(higher_is_better, guessed)."""
    if higher_is_better is None:
        return guess_higher_is_better(metric), True
    if not isinstance(higher_is_better, bool):
        raise TypeError(f"higher_is_better must be True, False or None, got {higher_is_better!r}")
    return higher_is_better, False


def _scoring_view(view: View, metric: str) -> View:
    """The fields a comparison uses; the others (line, band, smoothing, ...) do not apply and
    are left at their defaults, so the recipe shows only what made the numbers."""
    return View(
        metrics=(metric,),
        group_by=view.group_by,
        grouping=view.grouping,
        reverse=view.reverse,
        x=view.x,
        ci_level=view.ci_level,
        bootstrap_samples=view.bootstrap_samples,
        seed=view.seed,
        hidden=view.hidden,
    )


@dataclass(frozen=True)
class _Scored:
    """The scores of a comparison, per group."""

    view: View
    grouping: Grouping
    higher: bool
    guessed: bool
    at: float | None
    #: Per series (in ``_s`` order): the finite scores, sorted ascending.
    values: list[np.ndarray]
    #: Per series: the grouping's run indexes ``_r`` of those scores, in the same order.
    run_index: list[np.ndarray]

    def label(self, group: int) -> str:
        return str(self.grouping.series["series"][group])


def _scored(
    caller: str,
    runs: Runs,
    view: View | Mapping[str, Any] | None,
    fields: Mapping[str, Any],
    metric: str,
    reduce: str,
    k: int,
    at: Any,
    higher_is_better: bool | None,
) -> _Scored:
    if not isinstance(runs, Runs):
        raise TypeError(f"{caller}() takes a rungroup Runs, got {type(runs).__name__}")
    if not isinstance(metric, str) or not metric:
        raise TypeError(f"metric must be a metric name (str), got {metric!r}")
    if reduce not in REDUCTIONS:
        raise ValueError(f"reduce={reduce!r} is not valid; choose one of: {', '.join(REDUCTIONS)}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    resolved = _scoring_view(resolve_view(view, **fields), metric)
    higher, guessed = _direction(metric, higher_is_better)
    limit = x_limit(at, resolved)
    grouping = group_runs(runs, resolved)
    scores = run_scores(
        runs, resolved, grouping, metric, reduce, k=k, at=limit, higher_is_better=higher
    )
    # Sorted by score, then run: the order of equal scores never depends on run order.
    joined = grouping.members.join(scores, on="_r", how="inner").sort("_s", "score", "_r")
    s = joined["_s"].to_numpy()
    v = joined["score"].to_numpy().astype(np.float64)
    r = joined["_r"].to_numpy()
    bounds = np.searchsorted(s, np.arange(grouping.series.height + 1))
    values = [v[a:b] for a, b in itertools.pairwise(bounds)]
    run_index = [r[a:b] for a, b in itertools.pairwise(bounds)]
    return _Scored(resolved, grouping, higher, guessed, limit, values, run_index)


def _baseline_index(grouping: Grouping, baseline: Any) -> int:
    """The series (``_s``) the baseline names: a series label, a key value, or a tuple of key
    values for nested groups."""
    labels = grouping.series["series"].to_list()
    if isinstance(baseline, str) and baseline in labels:
        return labels.index(baseline)
    keys = list(grouping.key_columns)
    wanted = baseline if isinstance(baseline, tuple) else (baseline,)
    if len(wanted) == len(keys):
        for i, row in enumerate(grouping.series.select(keys).iter_rows()):
            if all(_same(a, b) for a, b in zip(row, wanted, strict=True)):
                return i
    shown = ", ".join(repr(label) for label in labels[:20])
    more = f" (and {len(labels) - 20} more)" if len(labels) > 20 else ""
    raise ValueError(f"baseline={baseline!r} is not a group (groups: {shown}{more})")


def _same(value: Any, wanted: Any) -> bool:
    if isinstance(wanted, bool) or isinstance(value, bool):
        return value is wanted
    if isinstance(value, int | float) and isinstance(wanted, int | float):
        return float(value) == float(wanted)
    return bool(value == wanted)


def _pair_keys(
    runs: Runs, grouping: Grouping, pair_by: tuple[str, ...]
) -> dict[int, tuple[Any, ...]]:
    """Each run's pairing key, ``_r`` -> key values (a run with a null in it has none)."""
    unknown = [c for c in pair_by if c not in runs.runs.columns]
    if unknown:
        raise ValueError(
            f"unknown pair_by column(s) {', '.join(map(repr, unknown))}; valid columns: "
            f"{', '.join(runs.columns)}"
        )
    frame = grouping.runs.join(
        runs.runs.select(pl.col("id").alias(RUN_KEY), *pair_by), on=RUN_KEY, how="inner"
    ).drop_nulls(list(pair_by))
    return {row[0]: tuple(row[1:]) for row in frame.select("_r", *pair_by).iter_rows()}


def _keyed(
    scored: _Scored, group: int, keys: Mapping[int, tuple[Any, ...]]
) -> dict[tuple[Any, ...], float]:
    """A group's scores by pairing key."""
    out: dict[tuple[Any, ...], float] = {}
    for score, r in zip(
        scored.values[group].tolist(), scored.run_index[group].tolist(), strict=True
    ):
        key = keys.get(r)
        if key is None:
            continue
        if key in out:
            raise ValueError(
                f"pair_by must single out one run per group, but group {scored.label(group)!r} "
                f"has several runs with the key {key!r}"
            )
        out[key] = score
    return out


def _ratio(test_train_ratio: Any, pairing: tuple[str, ...]) -> float | None:
    if test_train_ratio is None:
        return None
    if not pairing:
        raise ValueError("test_train_ratio applies to paired runs: give pair_by too")
    if (
        isinstance(test_train_ratio, bool)
        or not isinstance(test_train_ratio, int | float)
        or not 0 < test_train_ratio < math.inf
    ):
        raise ValueError(
            "test_train_ratio must be a positive number (test size / train size, 1/(K-1) for "
            f"K folds), got {test_train_ratio!r}"
        )
    return float(test_train_ratio)


def _group_statistics(
    scored: _Scored,
) -> tuple[dict[str, list[Any]], dict[int, resample.Replicates]]:
    """The per-group columns (n, mean, std, t interval, bootstrap intervals), and the groups'
    bootstrap replicates per group size."""
    values = scored.values
    view = scored.view
    columns: dict[str, list[Any]] = {name: [None] * len(values) for name in _GROUP_COLUMNS}
    columns["runs"] = np.bincount(
        scored.grouping.members["_s"].to_numpy(), minlength=len(values)
    ).tolist()
    for i, v in enumerate(values):
        columns["n"][i] = v.size
        if v.size == 0:
            continue
        columns["mean"][i] = float(v.mean())
        columns["median"][i] = float(np.median(v))
        columns["iqm"][i] = inference.iqm(v)
        interval = inference.t_interval(v, view.ci_level)
        if interval is not None:
            columns["std"][i] = float(v.std(ddof=1))
            columns["mean_low"][i], columns["mean_high"][i] = interval
    drawn_by_size = {}
    for size in sorted({v.size for v in values if v.size >= 2}):
        drawn = resample.replicates(values, size, view.bootstrap_samples, view.seed, 0, full=True)
        drawn_by_size[size] = drawn
        assert drawn.medians is not None and drawn.iqms is not None
        for name, table in (
            ("mean_boot", drawn.means),
            ("median", drawn.medians),
            ("iqm", drawn.iqms),
        ):
            bounds = resample.percentile_interval(table, view.ci_level)
            for column, group in enumerate(drawn.groups.tolist()):
                columns[f"{name}_low"][group] = float(bounds[0, column])
                columns[f"{name}_high"][group] = float(bounds[1, column])
    return columns, drawn_by_size


def _against_baseline(
    scored: _Scored,
    group_drawn: Mapping[int, resample.Replicates],
    base: int,
    keys: Mapping[int, tuple[Any, ...]] | None,
    ratio: float | None,
) -> dict[str, list[Any]]:
    """The comparison columns of every group against the baseline group `base`."""
    values = scored.values
    view = scored.view
    level, samples, seed = view.ci_level, view.bootstrap_samples, view.seed
    names = list(_BASELINE_COLUMNS)
    names += _PAIRED_COLUMNS if keys is not None else ()
    names += _NB_COLUMNS if ratio is not None else ()
    columns: dict[str, list[Any]] = {name: [None] * len(values) for name in names}
    columns["is_baseline"] = [i == base for i in range(len(values))]
    y = values[base]
    if y.size == 0:
        raise ValueError(
            f"the baseline group {scored.label(base)!r} has no run with a finite score"
        )
    # The probability and its resamples work on "larger is better" scores; negating sorted
    # scores reverses their order, so the counts are reversed with them.
    sign = 1.0 if scored.higher else -1.0
    y_better = sign * y if scored.higher else (sign * y)[::-1]
    base_drawn = None
    if y.size >= 2:
        base_drawn = resample.replicates(
            [y], y.size, samples, seed, resample.BASELINE_STREAM, full=False
        )
        y_counts = base_drawn.counts if scored.higher else base_drawn.counts[:, ::-1]
    base_pairs = _keyed(scored, base, keys) if keys is not None else {}
    for i, x in enumerate(values):
        if i == base or x.size == 0:
            continue
        row: dict[str, Any] = dict(inference.welch(x, y, level))
        row["hedges_g"] = inference.hedges_g(x, y)
        row["prob_improvement"] = inference.probability_of_improvement(sign * x, y_better)
        if base_drawn is not None and x.size >= 2:
            drawn = group_drawn[x.size]
            column = drawn.column(i)
            diffs = drawn.means[:, column] - base_drawn.means[:, 0]
            row["diff_boot_low"], row["diff_boot_high"] = map(
                float, resample.percentile_interval(diffs, level)
            )
            probabilities = resample.improvement_replicates(
                sign * x, drawn.counts, y_better, y_counts
            )
            row["prob_improvement_low"], row["prob_improvement_high"] = map(
                float, resample.percentile_interval(probabilities, level)
            )
        if keys is not None:
            mine = _keyed(scored, i, keys)
            shared = sorted(set(mine) & set(base_pairs), key=repr)
            d = np.array([mine[key] - base_pairs[key] for key in shared], dtype=np.float64)
            row["pairs"] = len(shared)
            row.update(inference.paired(d, level, ratio))
        for name, value in row.items():
            columns[name][i] = value
    columns["p_holm"] = inference.holm(columns["p_value"])
    if keys is not None:
        columns["paired_p_holm"] = inference.holm(columns["paired_p"])
    if ratio is not None:
        columns["nb_p_holm"] = inference.holm(columns["nb_p"])
    return columns


def _dtype(name: str) -> pl.DataType:
    if name in _INTEGER_COLUMNS:
        return pl.Int64()
    return pl.Boolean() if name == "is_baseline" else pl.Float64()


def compare(
    runs: Runs,
    view: View | Mapping[str, Any] | None = None,
    *,
    metric: str,
    reduce: str = "last",
    k: int = 10,
    at: Any = None,
    baseline: Any = None,
    pair_by: str | Sequence[str] | None = None,
    higher_is_better: bool | None = None,
    test_train_ratio: float | None = None,
    **fields: Any,
) -> pl.DataFrame:
    """One row per group: estimates and intervals of its runs' scores, and tests against the
    baseline group (docs/statistics.md, "Comparing groups").

    Each run's score is its `metric` curve reduced by `reduce` (``last``, ``best``,
    ``mean_last`` over the last `k` points, ``auc``), using its points at x <= `at`.
    `baseline` names a group (its label, its key value, or a tuple of key values). `pair_by`
    names run columns that pair a group's runs with the baseline's (e.g. seed and fold);
    `test_train_ratio` (test size / train size, 1/(K-1) for K folds) adds Nadeau and Bengio's
    corrected test. `higher_is_better` is guessed from the metric's name when None. The
    view's `group_by`, `grouping`, `reverse`, `hidden`, `x`, `ci_level`, `bootstrap_samples`
    and `seed` apply. The frame carries its recipe (`rungroup.export` writes it).
    """
    pairing = tuple(dict.fromkeys((pair_by,) if isinstance(pair_by, str) else (pair_by or ())))
    ratio = _ratio(test_train_ratio, pairing)
    scored = _scored("compare", runs, view, fields, metric, reduce, k, at, higher_is_better)
    columns, drawn = _group_statistics(scored)
    if baseline is not None:
        base = _baseline_index(scored.grouping, baseline)
        keys = _pair_keys(runs, scored.grouping, pairing) if pairing else None
        columns.update(_against_baseline(scored, drawn, base, keys, ratio))
    else:
        if pairing:
            raise ValueError("pair_by pairs runs with the baseline's: give baseline too")
        names = (*_BASELINE_COLUMNS,)
        columns.update({name: [None] * len(scored.values) for name in names})
        columns["is_baseline"] = [False] * len(scored.values)
    stats = pl.DataFrame([pl.Series(n, data, dtype=_dtype(n)) for n, data in columns.items()])
    frame = pl.concat([scored.grouping.series.drop("_s"), stats], how="horizontal")
    settings = Comparison(
        metric=metric,
        reduce=reduce,
        k=k,
        at=scored.at,
        baseline=baseline,
        pair_by=pairing,
        higher_is_better=scored.higher,
        direction_guessed=scored.guessed,
        test_train_ratio=ratio,
        correction=CORRECTION,
        ci_level=scored.view.ci_level,
        bootstrap_samples=scored.view.bootstrap_samples,
        seed=scored.view.seed,
    )
    described = {name: COLUMNS[name] for name in frame.columns if name in COLUMNS}
    return attach_recipe(
        frame, scored.view, {"rungroup_compare": settings.to_dict(), "columns": described}
    )


#: The columns of a performance profile after the key columns.
PROFILE_COLUMNS = ("series", "metric", "x", "n", "line", "lower", "upper")


def performance_profile(
    runs: Runs,
    view: View | Mapping[str, Any] | None = None,
    *,
    metric: str,
    reduce: str = "last",
    k: int = 10,
    at: Any = None,
    higher_is_better: bool | None = None,
    thresholds: int | Sequence[float] = PROFILE_POINTS,
    **fields: Any,
) -> pl.DataFrame:
    """Per group and threshold tau: the fraction of its runs whose score is better than tau
    (> tau when higher is better, < tau otherwise), with a percentile bootstrap band.

    Columns: the key columns, ``series``, ``metric``, ``x`` (tau), ``n``, ``line`` (the
    fraction), ``lower``, ``upper``: the shape `rungroup.chart` draws. `thresholds` is a
    number of evenly spaced values from the lowest to the highest score, or the values.
    """
    scored = _scored(
        "performance_profile", runs, view, fields, metric, reduce, k, at, higher_is_better
    )
    taus = _thresholds(thresholds, scored.values)
    view_ = scored.view
    parts: list[pl.DataFrame] = []
    drawn: dict[int, np.ndarray] = {}  # groups of one size share their resamples
    for i, v in enumerate(scored.values):
        if v.size == 0:
            continue
        line = resample.fraction_better(
            v, np.ones((1, v.size), dtype=np.int64), taus, scored.higher
        )[0]
        lower = upper = line
        if v.size >= 2:
            if v.size not in drawn:
                drawn[v.size] = resample.counts(v.size, view_.bootstrap_samples, view_.seed)
            fractions = resample.fraction_better(v, drawn[v.size], taus, scored.higher)
            lower, upper = resample.percentile_interval(fractions, view_.ci_level)
        parts.append(
            pl.DataFrame(
                {
                    "_s": np.full(taus.size, i, dtype=np.int64),
                    "x": taus,
                    "n": np.full(taus.size, v.size, dtype=np.int64),
                    "line": line,
                    "lower": lower,
                    "upper": upper,
                }
            )
        )
    schema = {
        "_s": pl.Int64,
        "x": pl.Float64,
        "n": pl.Int64,
        "line": pl.Float64,
        "lower": pl.Float64,
        "upper": pl.Float64,
    }
    body = pl.concat(parts) if parts else pl.DataFrame(schema=schema)
    frame = (
        scored.grouping.series.join(body, on="_s", how="inner")
        .sort("_s", "x")
        .drop("_s")
        .with_columns(pl.lit(metric).alias("metric"))
    )
    keys = [c for c in frame.columns if c not in PROFILE_COLUMNS]
    frame = frame.select(*keys, *PROFILE_COLUMNS)
    direction = ">" if scored.higher else "<"
    settings = {
        "metric": metric,
        "reduce": reduce,
        "k": k,
        "at": scored.at,
        "higher_is_better": scored.higher,
        "direction_guessed": scored.guessed,
        "ci_level": view_.ci_level,
        "bootstrap_samples": view_.bootstrap_samples,
        "seed": view_.seed,
    }
    columns = {
        "x": f"threshold tau on the {reduce} {metric}",
        "line": f"fraction of the group's runs with a score {direction} tau",
        "lower": "percentile bootstrap band of that fraction",
        "upper": "percentile bootstrap band of that fraction",
        "n": "runs with a finite score",
    }
    return attach_recipe(frame, view_, {"rungroup_profile": settings, "columns": columns})


def _thresholds(thresholds: Any, values: list[np.ndarray]) -> np.ndarray:
    if isinstance(thresholds, int) and not isinstance(thresholds, bool):
        if thresholds < 2:
            raise ValueError(f"thresholds must be at least 2 points, got {thresholds}")
        scores = [v for v in values if v.size]
        if not scores:
            return np.empty(0)
        low = min(float(v[0]) for v in scores)
        high = max(float(v[-1]) for v in scores)
        return np.linspace(low, high, thresholds)
    try:
        taus = np.asarray(thresholds, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"thresholds must be a number of points or a sequence of numbers, got {thresholds!r}"
        ) from error
    if taus.ndim != 1 or taus.size == 0 or not np.isfinite(taus).all():
        raise ValueError(f"thresholds must be finite numbers, got {thresholds!r}")
    return np.sort(taus)
