"""Big W&B folders decoded by this process and worker processes together.

Decoding in bulk is numpy and Polars called from Python: threads share one interpreter lock
and gain nothing. Other processes do, but multiprocessing's spawn and forkserver import the
user's `__main__` again (a script without a main guard runs twice; a notebook's cells are
not importable), and fork is unsafe once Polars' threads run. So a worker is a fresh
interpreter started as ``python -m rungroup.sources.wandb.worker`` (`worker.py`), with this
rungroup first on its path, which imports nothing of the user's.

The files are cut into batches; this process decodes them from the front, the workers from
the back (a thread here hands each one batch at a time and keeps one more waiting), until
they meet: however busy the cores are, no one waits for another. A worker that cannot start,
fails or dies leaves its batches to this process, which decodes them as it would alone; a
file a worker cannot decode in bulk is decoded here the general way (which reports what is
wrong with it). Workers start only for folders big enough to repay their start (about half
a second), one for each core this process may use besides its own (at most `MAX_WORKERS`).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rungroup.sources.runrecords import warn

if TYPE_CHECKING:
    from rungroup.sources.wandb.offline import _Run

__all__ = ["MAX_WORKERS", "MIN_BYTES", "read_runs", "worker_command"]

#: files read together (by this process or the worker)
BATCH = 8
#: folders smaller than this are decoded here alone: a worker's start would not pay
MIN_BYTES = 96 << 20
#: workers at most (each holds its own numpy and Polars, about 150 MB)
MAX_WORKERS = 4
#: seconds a worker may take beyond 20 times this process's time for its batches
PATIENCE = 30.0

Batch = list[Path]
Decoded = list[tuple[Path, "_Run | None"]]


def read_runs(
    files: list[Path],
    decode_here: Callable[[Batch], Decoded],
    decode_general: Callable[[Path], _Run | None],
) -> Iterator[tuple[Path, _Run | None]]:
    """Each file's run (None: not read, already reported), in the order of `files`.
    `decode_here` decodes a batch in this process (in bulk where it can), `decode_general`
    one file the general way."""
    batches = [files[at : at + BATCH] for at in range(0, len(files), BATCH)]
    wanted = min(_workers_wanted(files), len(batches) - 1)
    workers = [w for w in (_start_worker() for _ in range(wanted)) if w is not None]
    if not workers:
        for batch in batches:
            yield from decode_here(batch)
        return
    share = _Share(len(batches))
    feeders = [_Feeder(worker, batches, share) for worker in workers]
    threads = [
        threading.Thread(target=feeder.run, name="rungroup-wandb-worker", daemon=True)
        for feeder in feeders
    ]
    for thread in threads:
        thread.start()
    try:
        began, done = time.perf_counter(), 0
        while (index := share.take_front()) is not None:
            yield from decode_here(batches[index])
            done += 1
        # a worker that hangs is ended once it takes far longer than this process did for
        # as many batches (its batches are then decoded here)
        each = (time.perf_counter() - began) / max(done, 1)
        deadline = time.perf_counter() + PATIENCE + 20 * each * (len(batches) - share.front)
        for feeder, thread in zip(feeders, threads, strict=True):
            thread.join(max(deadline - time.perf_counter(), 0.0))
            if thread.is_alive():
                feeder.stop()
                thread.join()
        replies = {i: reply for feeder in feeders for i, reply in feeder.replies.items()}
        for index in range(share.front, len(batches)):
            reply = replies.get(index)
            if reply is None:  # its worker failed before it answered
                yield from decode_here(batches[index])
            else:
                yield from _received(batches[index], reply, decode_general)
    finally:
        for feeder in feeders:
            feeder.stop()
        for thread in threads:
            thread.join()


def _workers_wanted(files: list[Path]) -> int:
    """Workers worth starting: one a core besides this process's (up to `MAX_WORKERS`),
    none for a folder smaller than `MIN_BYTES`."""
    # an interpreter embedded in another program (sys.executable is that program) has none
    # to start
    if not Path(sys.executable or "").name.lower().startswith(("python", "pypy")):
        return 0
    cores = _cores()
    if cores < 2:
        return 0
    total = 0
    for path in files:
        try:
            total += path.stat().st_size
        except OSError:
            continue
        if total >= MIN_BYTES:
            return min(cores - 1, MAX_WORKERS)
    return 0


def _cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_command() -> list[str]:
    """The worker's command line (the interpreter running this process)."""
    return [sys.executable, "-m", "rungroup.sources.wandb.worker"]


def _start_worker() -> subprocess.Popen[bytes] | None:
    import rungroup

    # this rungroup, wherever it was imported from, first on the worker's path
    here = str(Path(rungroup.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    # the cores are shared out by processes: Polars' own threads would only contend
    env.setdefault("POLARS_MAX_THREADS", "1")
    try:
        return subprocess.Popen(
            worker_command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
    except OSError:
        return None


class _Share:
    """Batch numbers taken from both ends: this process's from the front, the worker's
    from the back."""

    def __init__(self, count: int) -> None:
        self.front = 0
        self.back = count
        self._lock = threading.Lock()

    def take_front(self) -> int | None:
        with self._lock:
            if self.front >= self.back:
                return None
            self.front += 1
            return self.front - 1

    def take_back(self) -> int | None:
        with self._lock:
            if self.front >= self.back:
                return None
            self.back -= 1
            return self.back


class _Feeder:
    """Hands the worker batches from the back, one more waiting while it decodes one, and
    keeps its replies; on any failure it stops taking batches (this process decodes those
    without a reply)."""

    def __init__(self, worker: subprocess.Popen[bytes], batches: list[Batch], share: _Share):
        self.worker = worker
        self.batches = batches
        self.share = share
        self.replies: dict[int, tuple[Any, ...]] = {}
        self._stopping = False

    def run(self) -> None:
        sent: list[int] = []
        answered = False
        try:
            for _ in range(2):
                self._send_next(sent)
            while sent and not self._stopping:
                reply = pickle.load(self.worker.stdout)  # type: ignore[arg-type]
                index = sent.pop(0)
                if not isinstance(reply, tuple) or reply[0] != "ok":
                    return  # decoded here: an error shows itself there as it would alone
                self.replies[index] = reply
                self._send_next(sent)
            answered = not sent
        except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError):
            return  # the worker died or wrote garbage: what it did not answer is decoded here
        finally:
            self._close(answered)

    def _send_next(self, sent: list[int]) -> None:
        if self._stopping:
            return
        index = self.share.take_back()
        if index is None:
            return
        sent.append(index)
        assert self.worker.stdin is not None
        pickle.dump([str(p) for p in self.batches[index]], self.worker.stdin)
        self.worker.stdin.flush()

    def stop(self) -> None:
        """Stop early (the caller stopped reading, or failed): the worker is ended."""
        self._stopping = True
        if self.worker.poll() is None:
            self.worker.kill()

    def _close(self, answered: bool) -> None:
        """Tell a worker that answered everything to stop; end any other."""
        worker = self.worker
        if answered:
            try:
                assert worker.stdin is not None
                pickle.dump(None, worker.stdin)
                worker.stdin.close()
                worker.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if worker.poll() is None:
            worker.kill()
        worker.wait()
        for pipe in (worker.stdin, worker.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass


def _received(
    batch: Batch, reply: tuple[Any, ...], decode_general: Callable[[Path], _Run | None]
) -> Iterator[tuple[Path, _Run | None]]:
    """The runs of a batch the worker decoded; its warnings said here, naming the file."""
    _, outcomes, points, heights = reply
    at = 0
    for path, outcome, height in zip(batch, outcomes, heights, strict=True):
        if outcome is None:
            yield path, decode_general(path)  # the general way, which reports the file
            continue
        run, messages = outcome
        if points is not None and height:
            run.points = points.slice(at, height)
            at += height
        for message in messages:
            warn(path, message)
        yield path, run
