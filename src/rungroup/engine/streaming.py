"""Per-run bucket sums from a stream of runs' points, one run at a time (out of core).

A history too large for memory (a billion points: docs/architecture.md, "Out of core") is
read run by run by its provider; each run's points of each metric are binned here as
`align.bucket_arrays` bins them (`bin_index`, then `segment_sums` in the points' order) and
only the per-run sums are kept: about runs x bins x metrics rows, whatever the number of
points. The engine computes the statistics across runs from these exactly as from its own
reduction (`align.bucket_from_sums`), and a regrouping reuses them (`Workspace`).

The loop holds one batch at a time by construction: it drops its reference to a batch before
asking the stream for the next (`stream_bucket_sums`), so a generator that reads a run's
arrays when asked never has two runs' points alive at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from rungroup.engine.align import bin_index, segment_sums
from rungroup.engine.dense_matrix import MetricMatrix, Prepared, contiguous
from rungroup.engine.provider import BucketSums


@dataclass
class RunPoints:
    """One run's points of one metric, in logged order: ``run`` and ``metric`` are positions
    in the run ids and metrics asked for."""

    run: int
    metric: int
    x: np.ndarray
    v: np.ndarray


def stream_bucket_sums(
    batches: Iterator[list[RunPoints]], lo: np.ndarray, hi: np.ndarray, bins: int
) -> BucketSums:
    """The `BucketSums` of a stream of batches (a batch: one run's `RunPoints`, any number of
    metrics) over `bins` equal-width bins of each metric's [lo, hi] (`lo`/`hi` per metric,
    computed by the caller over the runs asked for, as `bucket_arrays` computes them over
    the points)."""
    parts: list[tuple[np.ndarray, ...]] = []
    received = 0
    while True:
        batch = next(batches, None)
        if batch is None:
            break
        received += _reduce(batch, lo, hi, bins, parts)
        del batch  # before the next read: never two runs' points alive at once
    if parts:
        run, metric, bucket, sums, counts, dropped = (
            np.concatenate([part[k] for part in parts]) for k in range(6)
        )
    else:
        empty = np.zeros(0, np.int64)
        run, metric, bucket, sums, counts, dropped = (empty,) * 3 + (np.zeros(0),) + (empty,) * 2
    return BucketSums(
        run=run,
        metric=metric,
        bucket=bucket,
        sums=sums,
        counts=counts,
        dropped=dropped,
        lo=lo,
        width=(hi - lo) / bins,
        received=received,
    )


def _reduce(
    batch: list[RunPoints],
    lo: np.ndarray,
    hi: np.ndarray,
    bins: int,
    parts: list[tuple[np.ndarray, ...]],
) -> int:
    """One batch's bucket sums appended to `parts`; the bytes of points it held. Its own
    function so that no reference to the batch's arrays outlives the call."""
    received = 0
    for points in batch:
        received += points.x.nbytes + points.v.nbytes
        if points.v.size == 0:
            continue
        m = points.metric
        bucket = bin_index(points.x, None, lo[m : m + 1], hi[m : m + 1], bins)
        keys, sums, counts, dropped = segment_sums(bucket, points.v, top=bins)
        size = keys.shape[0]
        run = np.full(size, points.run, np.int64)
        parts.append((run, np.full(size, m, np.int64), keys, sums, counts, dropped))
    return received


def bucket_matrices(
    sums: BucketSums, run_rows: np.ndarray, n_rows: int, n_metrics: int
) -> Prepared:
    """The per-run bucketed series of `sums` as the dense path's matrices (one row per run,
    ``run_rows[sums.run]`` its row; a column per bin any run has a point in), exactly as
    `dense_matrix.bucketed` makes them from a history in memory: a cell is the mean of the run's
    finite values in the bin (NaN if none), `dropped` counts the others, `present` says
    where the run logged. A regrouping reduces these (`dense_stats.statistics`, a column operation
    over the runs of each series) without sorting the sums again."""
    matrices = []
    for metric in range(n_metrics):
        chosen = sums.metric == metric
        rows = run_rows[sums.run[chosen]]
        buckets = sums.bucket[chosen]
        used = np.unique(buckets)  # the bins with a point, ascending
        columns = np.searchsorted(used, buckets)
        counts = sums.counts[chosen]
        values = np.full((n_rows, used.size), np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            values[rows, columns] = np.where(
                counts > 0, sums.sums[chosen] / np.maximum(counts, 1), np.nan
            )
        logged = np.zeros((n_rows, used.size), bool)
        logged[rows, columns] = True
        present = None if logged.all() else logged
        dropped = None
        if bool(sums.dropped[chosen].any()):
            dropped = np.zeros((n_rows, used.size), np.int64)
            dropped[rows, columns] = sums.dropped[chosen]
        lo, width = float(sums.lo[metric]), float(sums.width[metric])
        centre = (
            lo + (used.astype(np.float64) + 0.5) * width if width > 0 else np.full(used.size, lo)
        )
        matrices.append(MetricMatrix(centre, values, dropped, present, contiguous(present)))
    none = np.zeros(0, np.int64)
    return Prepared(tuple(matrices), run_codes=none, metric_codes=none, others=none)
