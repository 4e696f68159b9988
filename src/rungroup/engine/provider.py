"""History providers: where the engine gets per-run reductions of a `Runs`' history.

The default is the in-memory history (`Runs.history`, reduced by the engine itself). A source
whose history stays in a database (an MLflow backend store) attaches a provider to its `Runs`
(`Runs.provider`) that computes the per-run reductions there, so only about
runs x buckets x metrics rows travel; the engine computes the statistics across runs from
them exactly as from its own reductions (docs/architecture.md, "History providers").

The interface is one method per reduction the engine can push down. Today: the per-run bucket
sums of ``align="bucket"`` (the `bucket` alignment's means are these sums over these counts).
A provider answers None for what it cannot compute, and the engine reads `Runs.history`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class BucketSums:
    """Per run, metric and bucket of x: the sum and count of the finite values and the count
    of the non-finite ones, with each metric's x range (`lo`, bucket `width`).

    ``run`` indexes the run ids asked for, ``metric`` the metrics asked for, ``bucket`` is
    ``floor((x - lo) / width)`` capped at ``bins - 1`` (0 when the width is 0), as
    `engine.align.bucket_arrays` computes it."""

    run: np.ndarray
    metric: np.ndarray
    bucket: np.ndarray
    sums: np.ndarray
    counts: np.ndarray
    dropped: np.ndarray
    lo: np.ndarray
    width: np.ndarray
    #: bytes the provider received for this answer (benchmarks report them)
    received: int = 0


class HistoryProvider(Protocol):
    """What a `Runs` whose history is elsewhere answers for the engine."""

    def bucket_sums(
        self, run_ids: list[str], metrics: list[str], x: str, bins: int
    ) -> BucketSums | None:
        """The `BucketSums` of `metrics` of `run_ids` over `bins` equal-width buckets of
        `x` (each metric's range over these runs), or None when `x` cannot be pushed down."""
        ...
