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
