"""Alignment: which value each run contributes at each x of its series.

Input: the points ``_r, _m, x, v`` (after per-run smoothing) and the membership pairs
``_r, _s``. Output: one row per (series, metric, x, run), sorted by the point key ``_k``
(points in metric, series, x order) and then by run, with ``v`` (the run's finite value
there, null if it has none) and ``d`` (how many non-finite values were left out there).

- One value per run and x first: a run that logged several values at one x contributes the
  mean of its finite ones (``d`` counts the others).
- ``exact``: the runs that logged that x.
- ``bucket``: ``points`` equal-width bins over each metric's x range (all selected runs, so the
  series of one metric share their bins); a run contributes the mean of its finite values in a
  bin; the bin is drawn at its centre.
- ``interpolate``: the x values of a series are the union of its runs' x values; each run is
  linearly interpolated at those inside its own x span (no extrapolation), once per x. At an x
  it logged, a run contributes its own value; between two logged points with a non-finite one,
  it contributes nothing and is counted in ``d``.
- ``auto``: ``exact`` for a series whose runs all logged the same x values, else
  ``interpolate``.
- The cap: a series never has more than ``points`` x values. ``bucket`` has at most ``points``
  bins by construction; ``exact`` and ``interpolate`` keep, of a series' sorted distinct x values
  ``x_0 .. x_(m-1)``, those at ranks ``round_half_up(j·(m-1)/(points-1))`` for
  ``j = 0 .. points-1`` (evenly spread, first and last kept, deterministic).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from rungroup.view import View

ALIGNED_SCHEMA: dict[str, pl.DataType] = {
    "_k": pl.Int64(),
    "_s": pl.Int64(),
    "_m": pl.Int64(),
    "x": pl.Float64(),
    "_r": pl.Int64(),
    "v": pl.Float64(),
    "d": pl.Int64(),
}
#: The columns before the point key is added.
_COLUMNS = ("_s", "_m", "x", "_r", "v", "d")


def is_sorted(r: np.ndarray, m: np.ndarray, x: np.ndarray) -> bool:
    if r.size < 2:
        return True
    dr = r[1:] - r[:-1]
    dm = m[1:] - m[:-1]
    dx = x[1:] >= x[:-1]
    return bool(np.all((dr > 0) | ((dr == 0) & ((dm > 0) | ((dm == 0) & dx)))))


def reduce_per_run(points: pl.DataFrame, key: str = "x") -> pl.DataFrame:
    """One row per (_r, _m, key): ``v`` = mean of the finite values (NaN if none), ``d``,
    ``c`` = number of finite values. Sorted by (_r, _m, key)."""
    r = points["_r"].to_numpy()
    m = points["_m"].to_numpy()
    k = points[key].to_numpy()
    if not is_sorted(r, m, k):
        points = points.sort("_r", "_m", key, maintain_order=True)
        r = points["_r"].to_numpy()
        m = points["_m"].to_numpy()
        k = points[key].to_numpy()
    v = points["v"].cast(pl.Float64).to_numpy()  # nulls become NaN
    finite = np.isfinite(v)
    n = v.size
    new = np.ones(n, dtype=bool)
    if n > 1:
        new[1:] = (r[1:] != r[:-1]) | (m[1:] != m[:-1]) | (k[1:] != k[:-1])
    if new.all():
        return pl.DataFrame(
            {
                "_r": r,
                "_m": m,
                key: k,
                "v": np.where(finite, v, np.nan),
                "d": (~finite).astype(np.int64),
                "c": finite.astype(np.int64),
            }
        )
    starts = np.flatnonzero(new)
    segment = np.cumsum(new) - 1
    sums = np.bincount(segment, weights=np.where(finite, v, 0.0), minlength=starts.size)
    counts = np.bincount(segment, weights=finite, minlength=starts.size).astype(np.int64)
    lengths = np.diff(np.append(starts, n))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / counts, np.nan)
    return pl.DataFrame(
        {
            "_r": r[starts],
            "_m": m[starts],
            key: k[starts],
            "v": means,
            "d": lengths - counts,
            "c": counts,
        }
    )


def _as_contribution(frame: pl.DataFrame) -> pl.DataFrame:
    """``v`` null where the run has no finite value."""
    return frame.with_columns(pl.col("v").fill_nan(None))


def cap_points(frame: pl.DataFrame, points: int) -> pl.DataFrame:
    """Keep at most `points` distinct x per (_s, _m): evenly spread ranks, ends kept."""
    distinct = frame.select("_s", "_m", "x").unique().sort("_s", "_m", "x")
    counts = distinct.group_by("_s", "_m").agg(pl.len().alias("count"))
    if counts.height == 0 or counts["count"].max() <= points:  # type: ignore[operator]
        return frame
    p1 = points - 1
    rank = pl.int_range(pl.len(), dtype=pl.Int64).over("_s", "_m")
    m1 = pl.len().over("_s", "_m").cast(pl.Int64) - 1
    # j nearest to rank·(P-1)/(m-1), then check that j maps back onto this rank
    j = (2 * rank * p1 + m1) // (2 * m1)
    back = (2 * j * m1 + p1) // (2 * p1)
    kept = distinct.filter((m1 < points) | (back == rank)).select("_s", "_m", "x")
    return frame.join(kept, on=["_s", "_m", "x"], how="semi")


def _exact(reduced: pl.DataFrame, pairs: pl.DataFrame, view: View) -> pl.DataFrame:
    joined = reduced.join(pairs, on=["_r", "_m"], how="inner")
    return cap_points(_as_contribution(joined.select(*_COLUMNS)), view.points)


def _interpolate(reduced: pl.DataFrame, pairs: pl.DataFrame, view: View) -> pl.DataFrame:
    knots = reduced.select("_r", "_m", "x", "v", "d")
    grid = knots.join(pairs, on=["_r", "_m"], how="inner").select("_s", "_m", "x").unique()
    grid = cap_points(grid, view.points)
    span = knots.group_by("_r", "_m").agg(
        pl.col("x").min().alias("lo"), pl.col("x").max().alias("hi")
    )
    targets = (
        grid.join(pairs, on=["_s", "_m"], how="inner")
        .join(span, on=["_r", "_m"], how="inner")
        .filter(pl.col("x").is_between(pl.col("lo"), pl.col("hi")))
        .select("_s", "_m", "x", "_r")
        .sort("x")
    )
    right = knots.sort("x")
    before = right.select(
        "_r", "_m", pl.col("x").alias("x0"), pl.col("v").alias("v0"), pl.col("d").alias("d0")
    )
    after = right.select("_r", "_m", pl.col("x").alias("x1"), pl.col("v").alias("v1"))
    # both sides are sorted by x, hence within every (_r, _m) group too
    matched = targets.join_asof(
        before,
        left_on="x",
        right_on="x0",
        by=["_r", "_m"],
        strategy="backward",
        check_sortedness=False,
    ).join_asof(
        after,
        left_on="x",
        right_on="x1",
        by=["_r", "_m"],
        strategy="forward",
        check_sortedness=False,
    )
    x, x0, x1, v0, v1 = (pl.col(c) for c in ("x", "x0", "x1", "v0", "v1"))
    # np.interp's formula: slope · (x - x0) + v0; at a logged x the run's own value
    logged = x == x0
    value = pl.when(logged).then(v0).otherwise((v1 - v0) / (x1 - x0) * (x - x0) + v0)
    finite = value.is_finite().fill_null(False)
    # at its own x a run's non-finite values there are counted, as under exact; between its
    # points, once if the interpolated value is not finite
    dropped = pl.when(logged).then(pl.col("d0")).otherwise((~finite).cast(pl.Int64))
    return matched.select(
        "_s", "_m", "x", "_r", pl.when(finite).then(value).alias("v"), dropped.alias("d")
    )


def segment_sums(
    key: np.ndarray, values: np.ndarray, top: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct `key` (ascending): the key, sum and count of the finite values, and the
    number of non-finite ones. Linear for dense keys (counted straight into arrays) and for
    sorted keys (the usual case: histories are stored run by run in step order); otherwise a
    stable sort first. Every branch adds the values of a key in array order. `top`: a bound
    on the keys, if known."""
    n = key.size
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, np.zeros(0), empty, empty
    finite: np.ndarray | None = None
    with np.errstate(invalid="ignore", over="ignore"):
        total = np.add.reduce(values)
    if not np.isfinite(total):  # a finite sum means every value is finite
        finite = np.isfinite(values)
    clean = values if finite is None else np.where(finite, values, 0.0)
    top = int(key.max()) + 1 if top is None else top
    if top <= max(4 * n, 1 << 20):  # dense keys: count straight into arrays, sorted or not
        lengths = np.bincount(key, minlength=top)
        present = np.flatnonzero(lengths)
        sums = np.bincount(key, weights=clean, minlength=top)[present]
        if finite is None:
            counts = lengths[present]
        else:
            counts = np.bincount(key, weights=finite, minlength=top)[present].astype(np.int64)
        return present, sums, counts, lengths[present] - counts
    if not bool(np.all(key[1:] >= key[:-1])):
        order = np.argsort(key, kind="stable")
        key, clean = key[order], clean[order]
        finite = None if finite is None else finite[order]
    new = np.concatenate(([True], key[1:] != key[:-1]))
    starts = np.flatnonzero(new)
    segment = np.cumsum(new) - 1
    # bincount adds in array order, like the dense branch above: the same values always sum
    # in the same order, whichever branch runs (np.add.reduceat would sum pairwise)
    lengths = np.diff(np.append(starts, n))
    sums = np.bincount(segment, weights=clean, minlength=starts.size)
    if finite is None:
        counts = lengths
    else:
        counts = np.bincount(segment, weights=finite, minlength=starts.size).astype(np.int64)
    return key[starts], sums, counts, lengths - counts


def _series_of_runs(members: pl.DataFrame) -> np.ndarray | None:
    """`_s` indexed by `_r` when every run is in exactly one series (no tag explode)."""
    if members.height == 0 or members["_r"].n_unique() != members.height:
        return None
    table = np.full(int(members["_r"].max()) + 1, -1, dtype=np.int64)  # type: ignore[arg-type]
    table[members["_r"].to_numpy()] = members["_s"].to_numpy()
    return table


def _bucket(points: pl.DataFrame, members: pl.DataFrame, view: View) -> pl.DataFrame:
    m = points["_m"].to_numpy()
    return bucket_arrays(
        points["_r"].to_numpy(),
        m if m.size and int(m.max()) > 0 else None,
        points["x"].to_numpy(),
        points["v"].cast(pl.Float64).to_numpy(),
        members,
        view,
    )


def bin_index(
    x: np.ndarray, m: np.ndarray | None, lo_of: np.ndarray, hi_of: np.ndarray, bins: int
) -> np.ndarray:
    """Each x's bin among `bins` equal-width bins over [lo, hi] of its metric (`m`; None: one
    metric), exactly as `numpy.histogram(x, bins, range=(lo, hi))` assigns it: the edges are
    numpy's `linspace(lo, hi, bins + 1)`, an x on an edge goes to the bin the edge opens,
    and the last bin is closed. A guess by arithmetic, then corrected by one bin against the
    edges, as numpy does (the arithmetic alone can be a bin off on an edge whose position is
    not representable, e.g. x = 9 of 0..18 in 14 bins)."""
    span_of = hi_of - lo_of
    lo, span = (lo_of[0], span_of[0]) if m is None else (lo_of[m], span_of[m])
    with np.errstate(invalid="ignore", divide="ignore"):
        guess = (x - lo) / span * bins  # numpy's order of operations
    index = np.where(span > 0, guess, 0.0).astype(np.int64)
    del guess
    np.minimum(index, bins - 1, out=index)
    with np.errstate(invalid="ignore"):  # a metric without points has lo = inf, hi = -inf
        edges = np.linspace(lo_of, hi_of, bins + 1, axis=-1)  # (metrics, bins + 1)
    row = 0 if m is None else m
    index -= x < edges[row, index]
    index += (x >= edges[row, index + 1]) & (index != bins - 1)
    index[~(span > 0)] = 0  # a metric logged at one x: a single bin
    return index


def bucket_arrays(
    r: np.ndarray,
    m: np.ndarray | None,
    x: np.ndarray,
    v: np.ndarray,
    members: pl.DataFrame,
    view: View,
) -> pl.DataFrame:
    """`bucket` alignment straight from numpy arrays (``m`` None: a single metric)."""
    if r.size == 0:
        return pl.DataFrame(schema=ALIGNED_SCHEMA)
    bins = view.points
    n_metrics = 1 if m is None else int(m.max()) + 1
    if m is None:
        lo_of = np.array([x.min()])
        hi_of = np.array([x.max()])
    else:
        lo_of = np.full(n_metrics, np.inf)
        hi_of = np.full(n_metrics, -np.inf)
        np.minimum.at(lo_of, m, x)
        np.maximum.at(hi_of, m, x)
    width_of = (hi_of - lo_of) / bins
    key = bin_index(x, m, lo_of, hi_of, bins)
    if m is None:
        key += r * bins
    else:
        key += (r * n_metrics + m) * bins
    runs_total = int(members["_r"].max()) + 1 if members.height else 1  # type: ignore[arg-type]
    keys, sums, counts, dropped = segment_sums(key, v, top=runs_total * n_metrics * bins)
    del key
    return bucket_from_sums(keys, sums, counts, dropped, lo_of, width_of, members, view)


def bucket_from_sums(
    keys: np.ndarray,
    sums: np.ndarray,
    counts: np.ndarray,
    dropped: np.ndarray,
    lo_of: np.ndarray,
    width_of: np.ndarray,
    members: pl.DataFrame,
    view: View,
) -> pl.DataFrame:
    """`bucket` alignment from per-run bucket sums: ascending `keys` =
    ``(_r * n_metrics + _m) * bins + bucket``, the sum and count of each key's finite values
    and its number of non-finite ones; `lo_of`/`width_of`: each metric's x range. Both the
    in-memory binning (`bucket_arrays`) and a history provider's (engine/provider.py) end
    here."""
    if keys.size == 0:
        return pl.DataFrame(schema=ALIGNED_SCHEMA)
    bins = view.points
    n_metrics = lo_of.shape[0]
    rr = keys // (n_metrics * bins)
    mm = (keys // bins) % n_metrics
    bb = keys % bins
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    centre = np.where(
        width_of[mm] > 0, lo_of[mm] + (bb.astype(np.float64) + 0.5) * width_of[mm], lo_of[mm]
    )
    single = _series_of_runs(members)
    if single is not None:  # every run in one series: sort by point key in numpy
        ss = single[rr]
        n_series = int(ss.max()) + 1
        point = (mm * n_series + ss) * bins + bb  # metric-major: the output's order
        # stable: within a point the rows stay in run order (they are sorted by run now)
        order = stable_order(point)
        return pl.DataFrame(
            [
                pl.Series("_k", point[order], dtype=pl.Int64),
                pl.Series("_s", ss[order], dtype=pl.Int64),
                pl.Series("_m", mm[order], dtype=pl.Int64),
                pl.Series("x", centre[order], dtype=pl.Float64),
                pl.Series("_r", rr[order], dtype=pl.Int64),
                pl.Series("v", means[order], dtype=pl.Float64, nan_to_null=True),
                pl.Series("d", dropped[order], dtype=pl.Int64),
            ]
        )
    per_run = pl.DataFrame(
        [
            pl.Series("_r", rr, dtype=pl.Int64),
            pl.Series("_m", mm, dtype=pl.Int64),
            pl.Series("_b", bb, dtype=pl.Int64),
            pl.Series("x", centre, dtype=pl.Float64),
            pl.Series("v", means, dtype=pl.Float64, nan_to_null=True),
            pl.Series("d", dropped, dtype=pl.Int64),
        ]
    )
    joined = per_run.join(members, on="_r", how="inner")  # tags: a run in several series
    n_series = int(members["_s"].max()) + 1  # type: ignore[arg-type]
    point_key = (pl.col("_m") * n_series + pl.col("_s")) * bins + pl.col("_b")
    out = joined.with_columns(point_key.alias("_k")).sort("_k", "_r")
    return out.select(*ALIGNED_SCHEMA)


def stable_order(key: np.ndarray) -> np.ndarray:
    """A stable argsort of non-negative integer keys, fast: numpy radix-sorts 16-bit keys, so
    keys below 2^32 are sorted as two 16-bit digits (least significant first)."""
    top = int(key.max()) if key.size else 0
    if top < 1 << 16:
        order: np.ndarray = np.argsort(key.astype(np.uint16), kind="stable")
        return order
    if top < 1 << 32:
        low = np.argsort((key & 0xFFFF).astype(np.uint16), kind="stable")
        high = np.argsort((key[low] >> 16).astype(np.uint16), kind="stable")
        ordered: np.ndarray = low[high]
        return ordered
    fallback: np.ndarray = np.argsort(key, kind="stable")
    return fallback


def point_keys(frame: pl.DataFrame) -> pl.DataFrame:
    """Sort by (_m, _s, x, _r) and number the distinct points ``_k`` = 0, 1, ..."""
    frame = frame.sort("_m", "_s", "x", "_r")
    n = frame.height
    changed = np.ones(n, dtype=bool)
    if n > 1:
        s = frame["_s"].to_numpy()
        m = frame["_m"].to_numpy()
        x = frame["x"].to_numpy()
        changed[1:] = (s[1:] != s[:-1]) | (m[1:] != m[:-1]) | (x[1:] != x[:-1])
    keys = np.cumsum(changed) - 1
    return frame.with_columns(pl.Series("_k", keys, dtype=pl.Int64)).select(*ALIGNED_SCHEMA)


def _shared(reduced: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    """The (_s, _m) whose runs all logged the same x values."""
    joined = reduced.select("_r", "_m", "x").join(pairs, on=["_r", "_m"], how="inner")
    union = joined.group_by("_s", "_m").agg(pl.col("x").n_unique().alias("union"))
    per_run = joined.group_by("_s", "_m", "_r").agg(pl.len().alias("count"))
    smallest = per_run.group_by("_s", "_m").agg(pl.col("count").min().alias("smallest"))
    return (
        union.join(smallest, on=["_s", "_m"])
        .filter(pl.col("union") == pl.col("smallest"))
        .select("_s", "_m")
    )


def cap_ranks(count: int, points: int) -> np.ndarray:
    """The ranks kept of `count` sorted distinct x values: all, or `points` evenly spread."""
    if count <= points:
        return np.arange(count, dtype=np.int64)
    j = np.arange(points, dtype=np.int64)
    ranks: np.ndarray = (2 * j * (count - 1) + (points - 1)) // (2 * (points - 1))
    return ranks


def _run_segments(reduced: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Start, length, run and metric of each (run, metric) stretch of `reduced`."""
    r = reduced["_r"].to_numpy()
    m = reduced["_m"].to_numpy()
    n = r.size
    new = np.ones(n, dtype=bool)
    if n > 1:
        new[1:] = (r[1:] != r[:-1]) | (m[1:] != m[:-1])
    starts = np.flatnonzero(new)
    return starts, np.diff(np.append(starts, n)), r[starts], m[starts]


def _shared_exact(
    reduced: pl.DataFrame, single: np.ndarray, view: View
) -> tuple[pl.DataFrame | None, pl.DataFrame]:
    """Exact alignment, in numpy, of the series whose runs all logged the same x values.

    `reduced` is sorted by (_r, _m, x) and every run is in one series (`single[_r]`). A series
    (and metric) is shared when its runs have equally many x values and the same ones; then
    the cap keeps the same ranks in every run, and the kept rows are gathered directly.
    Returns those rows as an aligned frame (sorted, with ``_k``), or None, and the
    (_r, _s, _m) pairs of the series that are not shared.
    """
    starts, lengths, seg_r, seg_m = _run_segments(reduced)
    seg_s = single[seg_r]
    order = np.lexsort((seg_r, seg_s, seg_m))  # by metric, series, run: the output's order
    starts, lengths, seg_r, seg_m, seg_s = (
        a[order] for a in (starts, lengths, seg_r, seg_m, seg_s)
    )
    n_seg = starts.size
    first = np.ones(n_seg, dtype=bool)
    first[1:] = (seg_s[1:] != seg_s[:-1]) | (seg_m[1:] != seg_m[:-1])
    group_start = np.flatnonzero(first)
    group_end = np.append(group_start[1:], n_seg)
    group_runs = group_end - group_start
    group_len = lengths[group_start]
    shared = np.ones(group_start.size, dtype=bool)
    x = reduced["x"].to_numpy()
    for g in np.flatnonzero(group_runs > 1):
        a, b, length = group_start[g], group_end[g], group_len[g]
        if (lengths[a:b] != length).any():
            shared[g] = False
            continue
        xs = x[starts[a:b, None] + np.arange(length)[None, :]]
        shared[g] = bool((xs == xs[0]).all())
    kept_count = np.where(shared, np.minimum(group_len, view.points), 0)
    offset = np.concatenate(([0], np.cumsum(kept_count)[:-1]))
    rows_parts: list[np.ndarray] = []
    key_parts: list[np.ndarray] = []
    singles = np.flatnonzero(shared & (group_runs == 1))
    for length in np.unique(group_len[singles]):  # one-run series, by length: vectorised
        groups = singles[group_len[singles] == length]
        ranks = cap_ranks(int(length), view.points)
        rows_parts.append((starts[group_start[groups]][:, None] + ranks[None, :]).ravel())
        key_parts.append((offset[groups][:, None] + np.arange(ranks.size)[None, :]).ravel())
    for g in np.flatnonzero(shared & (group_runs > 1)):
        a, b = group_start[g], group_end[g]
        ranks = cap_ranks(int(group_len[g]), view.points)
        # x-major, run-minor: the rows of one point together, in run order
        rows_parts.append((starts[a:b][None, :] + ranks[:, None]).ravel())
        key_parts.append(np.repeat(offset[g] + np.arange(ranks.size), b - a))
    fast: pl.DataFrame | None = None
    if rows_parts:
        rows = np.concatenate(rows_parts)
        keys = np.concatenate(key_parts)
        order = stable_order(keys)
        sorted_rows = rows[order]
        fast = (
            reduced[sorted_rows]
            .with_columns(
                pl.Series("_k", keys[order], dtype=pl.Int64),
                pl.Series("_s", single[reduced["_r"].to_numpy()[sorted_rows]], dtype=pl.Int64),
            )
            .pipe(_as_contribution)
            .select(*ALIGNED_SCHEMA)
        )
    rest = np.repeat(~shared, group_runs)
    other = pl.DataFrame(
        {"_r": seg_r[rest], "_s": seg_s[rest], "_m": seg_m[rest]},
        schema={"_r": pl.Int64, "_s": pl.Int64, "_m": pl.Int64},
    )
    return fast, other


def align(points: pl.DataFrame, members: pl.DataFrame, view: View) -> pl.DataFrame:
    """Per (series, metric, x, run): the run's contribution ``v`` and its dropped count ``d``."""
    if points.height == 0:
        return pl.DataFrame(schema=ALIGNED_SCHEMA)
    if view.align == "bucket":
        out = _bucket(points, members, view)
        return out.select(pl.col(name).cast(dtype) for name, dtype in ALIGNED_SCHEMA.items())
    reduced = reduce_per_run(points)
    single = _series_of_runs(members)
    if view.align in ("exact", "auto") and single is not None:
        fast, rest = _shared_exact(reduced, single, view)
        if rest.height == 0 and fast is not None:
            return fast.select(pl.col(name).cast(dtype) for name, dtype in ALIGNED_SCHEMA.items())
        other = (
            _exact(reduced, rest, view)
            if view.align == "exact"
            else (_interpolate(reduced, rest, view))
        )
        parts = [other] if fast is None else [fast.select(*_COLUMNS), other]
        out = point_keys(pl.concat(parts, how="vertical_relaxed"))
        return out.select(pl.col(name).cast(dtype) for name, dtype in ALIGNED_SCHEMA.items())
    # (_r, _s, _m): run r contributes metric m to series s
    _, _, seg_r, seg_m = _run_segments(reduced)
    present = pl.DataFrame({"_r": seg_r, "_m": seg_m}, schema={"_r": pl.Int64, "_m": pl.Int64})
    pairs = members.join(present, on="_r", how="inner")
    if view.align == "exact":
        out = _exact(reduced, pairs, view)
    elif view.align == "interpolate":
        out = _interpolate(reduced, pairs, view)
    else:
        shared = _shared(reduced, pairs)
        exact_pairs = pairs.join(shared, on=["_s", "_m"], how="semi")
        other_pairs = pairs.join(shared, on=["_s", "_m"], how="anti")
        pieces = []
        if exact_pairs.height:
            pieces.append(_exact(reduced, exact_pairs, view))
        if other_pairs.height:
            pieces.append(_interpolate(reduced, other_pairs, view))
        out = pl.concat(pieces, how="vertical_relaxed")
    out = point_keys(out)
    return out.select(pl.col(name).cast(dtype) for name, dtype in ALIGNED_SCHEMA.items())
