"""A worker process that decodes W&B run files in bulk for `parallel.py`.

Started as ``python -m rungroup.sources.wandb.worker``: a fresh interpreter that imports
rungroup and nothing of the user's (no `__main__` re-imported, unlike multiprocessing's
spawn and forkserver). It reads requests from its standard input and writes replies to its
standard output, each one pickle (both ends are this package, in processes of one user):

- request: a list of file paths, or None to stop;
- reply: ``("ok", outcomes, points, heights)``, one outcome per file: None (to be decoded the
  general way by the caller, which reports what is wrong) or ``(run, warnings)`` with the
  run's history left out; the histories of the batch's runs come as one frame (`points`,
  sent as Arrow IPC by Polars' pickling), `heights` rows each; or ``("error", text)`` when
  decoding failed in a way the caller should see for itself (it decodes the batch again).
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["main", "serve"]


def serve(requests: BinaryIO, replies: BinaryIO) -> None:
    """Answer requests until told to stop or the input ends."""
    import polars as pl

    from rungroup.sources.files import read_bytes
    from rungroup.sources.wandb import bulk

    while True:
        try:
            paths = pickle.load(requests)
        except EOFError:
            return
        if paths is None:
            return
        reply: tuple[Any, ...]
        try:
            datas = []
            for path in paths:
                try:
                    datas.append(read_bytes(Path(path)))
                except OSError:
                    datas.append(b"")  # the general way says so
            outcomes = bulk.decode_runs(datas)
            frames = []
            heights = []
            for outcome in outcomes:
                run = outcome[0] if outcome is not None else None
                points = run.points if run is not None else None
                heights.append(0 if points is None else points.height)
                if run is not None and points is not None:
                    frames.append(points)
                    run.points = None  # sent in `joined`
            joined = pl.concat(frames) if frames else None
            reply = ("ok", outcomes, joined, heights)
        except Exception as error:  # the caller decodes the batch itself, and sees it
            reply = ("error", f"{type(error).__name__}: {error}")
        pickle.dump(reply, replies, protocol=pickle.HIGHEST_PROTOCOL)
        replies.flush()


def main() -> None:
    serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
