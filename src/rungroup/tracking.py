"""Logging runs: `rungroup.init()` returns a `Run` that writes into the store.

A run writes only its own folder, so any number of processes (one distributed job, the folds
of a cross-validation, several machines on a shared file system) log into one group with no
lock and no coordinator. `log()` only appends to in-memory buffers; a background thread
flushes them to the history file at least once a second and refreshes the heartbeat.

Logging never raises for I/O: records that cannot be written (a full disk) wait in memory,
up to `MAX_UNWRITTEN_POINTS`, and are written again on the next flush; a `WriteWarning` says
how many points are at risk, and `finish()` says what could not be written.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import socket
import string
import sys
import threading
import time
import warnings
import weakref
from array import array
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from rungroup import store

FLUSH_INTERVAL = 1.0
HEARTBEAT_INTERVAL = 10.0
#: log() flushes by itself once this many points wait, so memory stays bounded.
MAX_BUFFERED_POINTS = 200_000
#: Points kept in memory while the history cannot be written (28 bytes each): past this, the
#: oldest waiting records are dropped, and counted.
MAX_UNWRITTEN_POINTS = 10 * MAX_BUFFERED_POINTS
#: While writing fails, a `WriteWarning` at most this often (seconds).
WARN_INTERVAL = 30.0
DEFAULT_DIR = "rungroup-runs"
DEFAULT_PROJECT = "uncategorized"

_ID_ALPHABET = string.ascii_lowercase + string.digits


class WriteWarning(UserWarning):
    """A run's data could not (yet) be written; the message says how much is at risk."""


def generate_id(length: int = 8) -> str:
    """A random run id of `length` characters from [a-z0-9], from `secrets`."""
    if length < 1:
        raise ValueError(f"length must be at least 1, got {length}")
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def _setting(argument: Any, *variables: str) -> Any:
    """An explicit argument wins, then the first environment variable that is set."""
    if argument is not None:
        return argument
    for variable in variables:
        value = os.environ.get(variable)
        if value:
            return value
    return None


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _metric_value(key: str, value: Any) -> float:
    """A float for anything that is a number; a TypeError naming the key otherwise."""
    kind = type(value)
    if kind is float or kind is int or kind is bool:
        return float(value)
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        item = value.item()  # numpy scalars, 0-d arrays, 0-d torch tensors
        if isinstance(item, (int, float, bool)):
            return float(item)
    if isinstance(value, (int, float)):
        return float(value)
    raise TypeError(
        f"cannot log {key!r}: {kind.__name__} is not a number "
        "(metrics are int, float, bool, numpy scalars or 0-d arrays)"
    )


def _json_value(key: str, value: Any, what: str) -> Any:
    """Config and summary values must survive JSON; numpy scalars become Python numbers."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist") and hasattr(value, "ndim"):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _json_value(f"{key}.{k}", v, what) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(key, v, what) for v in value]
    if isinstance(value, Path):
        return str(value)
    raise TypeError(
        f"{what} {key!r}: {type(value).__name__} cannot be stored "
        "(use str, int, float, bool, None, lists or dicts of them)"
    )


class _PersistedDict(MutableMapping[str, Any]):
    """A dict that tells its run to persist it; attribute access like W&B's config."""

    _what = "value"

    def __init__(self, run: Run, initial: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_run", run)
        object.__setattr__(self, "_data", {})
        if initial:
            for key, value in initial.items():
                self._data[str(key)] = _json_value(str(key), value, self._what)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str) or not key:
            raise TypeError(f"{self._what} keys must be non-empty strings, got {key!r}")
        converted = _json_value(key, value, self._what)
        with self._run._lock:
            self._data[key] = converted
            self._run._meta_dirty = True

    def __delitem__(self, key: str) -> None:
        with self._run._lock:
            del self._data[key]
            self._run._meta_dirty = True

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, key: str) -> Any:
        try:
            return self._data[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data!r})"

    def as_dict(self) -> dict[str, Any]:
        return dict(self._data)


class Config(_PersistedDict):
    """A run's configuration (hyperparameters); persisted with the run's metadata."""

    _what = "config"


class Summary(_PersistedDict):
    """A run's summary: the last logged value of every metric, unless set explicitly."""

    _what = "summary"

    def __getitem__(self, key: str) -> Any:
        if key in self._data:
            return self._data[key]
        return self._run._last_values[key]

    def __iter__(self) -> Iterator[str]:
        return iter({**self._run._last_values, **self._data})

    def __len__(self) -> int:
        return len({**self._run._last_values, **self._data})

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def as_dict(self) -> dict[str, Any]:
        return {**self._run._last_values, **self._data}

    def explicit(self) -> dict[str, Any]:
        return dict(self._data)


class Run:
    """One run being logged. Create it with `rungroup.init()`."""

    def __init__(
        self,
        *,
        root: Path,
        project: str,
        run_id: str,
        name: str,
        group: str | None,
        job_type: str | None,
        tags: list[str],
        config: Mapping[str, Any] | None,
        folder: Path,
    ) -> None:
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self.id = run_id
        self.name = name
        self.project = project
        self.group = group
        self.job_type = job_type
        self.tags = tuple(tags)
        self.dir = folder
        self.store_dir = root
        self._meta_dirty = True
        self._last_values: dict[str, float] = {}
        self.config = Config(self, config)
        self.summary = Summary(self)
        self._indices: dict[str, int] = {}
        self._steps = array("q")
        self._walls = array("d")
        self._metric_indices = array("I")
        self._values = array("d")
        self._next_step = 0
        self._created = _now()
        self._started = time.monotonic()
        self._state = "running"
        self._exit_code: int | None = None
        self._finished_at: datetime | None = None
        #: encoded records not yet written whole, with their point counts; the first may be
        #: partly written (`_written` bytes): the rest of it is written before anything else
        self._unwritten: deque[tuple[bytes, int]] = deque()
        self._written = 0
        self._sequence = 0
        self._dropped_points = 0
        self._write_error: OSError | None = None
        self._warned_at = -float("inf")
        # run.json first: a reader that finds the history finds the run's metadata too
        self._write_meta()
        self._history_path = folder / store.HISTORY_FILE
        self._history_fd = os.open(
            self._history_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644
        )
        os.write(self._history_fd, store.HISTORY_MAGIC)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._flush_loop, name=f"rungroup-{run_id}", daemon=True
        )
        self._thread.start()
        _live_runs.add(self)

    # -- logging -------------------------------------------------------------------------

    def log(self, data: Mapping[str, Any], step: int | None = None) -> None:
        """Log metrics at `step` (the next step when omitted; steps may repeat or skip)."""
        if self._state != "running":
            raise RuntimeError(f"run {self.id} is finished; start a new one with rungroup.init()")
        if not isinstance(data, Mapping):
            raise TypeError(f"log() takes a dict of metrics, not {type(data).__name__}")
        if step is None:
            step = self._next_step
        elif type(step) is not int:
            if isinstance(step, bool) or not hasattr(step, "__index__"):
                raise TypeError(f"step must be an integer, not {type(step).__name__}")
            step = step.__index__()
        converted = [(key, _metric_value(key, value)) for key, value in data.items()]
        wall = time.time()
        with self._lock:
            indices = self._indices
            for key, value in converted:
                index = indices.get(key)
                if index is None:
                    if not isinstance(key, str) or not key:
                        raise TypeError(f"metric names must be non-empty strings, got {key!r}")
                    index = indices[key] = len(indices)
                self._steps.append(step)
                self._walls.append(wall)
                self._metric_indices.append(index)
                self._values.append(value)
                self._last_values[key] = value
            self._next_step = step + 1
            pending = len(self._values)
        if pending >= MAX_BUFFERED_POINTS:
            self._flush()

    def _flush(self) -> None:
        """Frame the buffered points as one record and write every waiting record. Never
        raises for I/O: what cannot be written waits for the next flush."""
        with self._write_lock:
            with self._lock:
                if self._values:
                    names = list(self._indices)
                    steps, self._steps = self._steps, array("q")
                    walls, self._walls = self._walls, array("d")
                    indices, self._metric_indices = self._metric_indices, array("I")
                    values, self._values = self._values, array("d")
                else:
                    values = None
            if values is not None:
                record = store.encode_record(
                    names, steps, walls, indices, values, sequence=self._sequence
                )
                self._sequence += 1
                self._unwritten.append((record, len(values)))
            self._write_unwritten()

    def _write_unwritten(self) -> None:
        """Write the waiting records in order (the caller holds `_write_lock`)."""
        waiting = self._unwritten
        recovered = self._write_error is not None and bool(waiting)
        while waiting:
            record = waiting[0][0]
            try:
                while self._written < len(record):
                    self._written += os.write(self._history_fd, record[self._written :])
            except OSError as error:
                self._write_failed(error)
                return
            waiting.popleft()
            self._written = 0
        if recovered:
            self._warn(f"writing again to {self._history_path}; the waiting points are written")
        self._write_error = None

    def _write_failed(self, error: OSError) -> None:
        self._write_error = error
        waiting = self._unwritten
        at_risk = sum(count for _, count in waiting)
        # drop the oldest records that are not partly written, to stay within the bound
        keep_first = 1 if self._written else 0
        while at_risk > MAX_UNWRITTEN_POINTS and len(waiting) > keep_first:
            count = waiting[keep_first][1]
            del waiting[keep_first]
            at_risk -= count
            self._dropped_points += count
        now = time.monotonic()
        if now - self._warned_at >= WARN_INTERVAL:
            self._warned_at = now
            dropped = (
                f"; {self._dropped_points} older points were dropped to stay within "
                f"{MAX_UNWRITTEN_POINTS} in memory"
                if self._dropped_points
                else ""
            )
            self._warn(
                f"cannot write to {self._history_path} ({error.strerror or error}): "
                f"{at_risk} points wait in memory and are written again on the next flush; "
                f"they are lost if the process ends first{dropped}"
            )

    def _warn(self, message: str) -> None:
        """A WriteWarning; never an exception, even when warnings are made errors (logging
        must not stop training), in which case it goes to stderr."""
        text = f"rungroup: run {self.id}: {message}"
        try:
            warnings.warn(text, WriteWarning, stacklevel=3)
        except Warning:
            print(text, file=sys.stderr)

    @property
    def unwritten_points(self) -> int:
        """Points logged but not (yet) written to the history: 0 when all is on disk."""
        with self._write_lock:  # the flush thread changes the waiting records
            with self._lock:
                buffered = len(self._values)
            waiting = sum(count for _, count in self._unwritten)
            return buffered + waiting + self._dropped_points

    # -- metadata ------------------------------------------------------------------------

    def _meta(self) -> dict[str, Any]:
        now = _now()
        with self._lock:
            config = self.config.as_dict()
            summary = self.summary.explicit()
            self._meta_dirty = False
        return {
            "format_version": store.FORMAT_VERSION,
            "id": self.id,
            "name": self.name,
            "project": self.project,
            "group": self.group,
            "job_type": self.job_type,
            "tags": list(self.tags),
            "config": config,
            "summary": summary,
            "state": self._state,
            "exit_code": self._exit_code,
            "created_at": _iso(self._created),
            "updated_at": _iso(now),
            "heartbeat_at": _iso(now),
            "finished_at": _iso(self._finished_at) if self._finished_at else None,
            "runtime": time.monotonic() - self._started,
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }

    def _write_meta(self) -> None:
        store.write_json_atomically(self.dir / store.META_FILE, self._meta())

    def _flush_loop(self) -> None:
        last_heartbeat = time.monotonic()
        while not self._stop.wait(FLUSH_INTERVAL):
            try:
                self._flush()
                now = time.monotonic()
                if self._meta_dirty or now - last_heartbeat >= HEARTBEAT_INTERVAL:
                    self._write_meta()
                    last_heartbeat = now
            except OSError as error:  # a full disk must not kill the training process
                self._meta_failed(error)

    def _meta_failed(self, error: OSError) -> None:
        now = time.monotonic()
        if now - self._warned_at >= WARN_INTERVAL:
            self._warned_at = now
            self._warn(f"cannot write {self.dir / store.META_FILE} ({error.strerror or error})")

    # -- finishing -----------------------------------------------------------------------

    def finish(self, exit_code: int = 0) -> None:
        """Flush everything and mark the run finished (exit_code 0) or failed (non-zero).

        Never raises for I/O: what could not be written is reported in a `WriteWarning`
        (and left in `unwritten_points`)."""
        if self._state != "running":
            return
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        self._warned_at = -float("inf")  # the last word on a failure is always said
        self._flush()
        failures = []
        try:
            os.fsync(self._history_fd)
        except OSError as error:
            failures.append(f"cannot sync {self._history_path} ({error.strerror or error})")
        with contextlib.suppress(OSError):
            os.close(self._history_fd)
        self._exit_code = int(exit_code)
        self._state = "finished" if exit_code == 0 else "failed"
        self._finished_at = _now()
        try:
            self._write_meta()
        except OSError as error:
            failures.append(
                f"cannot write {self.dir / store.META_FILE} ({error.strerror or error}), so it "
                "does not say that the run ended"
            )
        lost = self.unwritten_points
        if lost:
            failures.append(
                f"{lost} points could not be written to {self._history_path} and are lost"
            )
        if failures:
            self._warn("finished, but " + "; ".join(failures))
        _live_runs.discard(self)

    @property
    def state(self) -> str:
        return self._state

    @property
    def url(self) -> str:
        return self.dir.as_uri()

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.finish(exit_code=0 if kind is None else 1)

    def __repr__(self) -> str:
        return (
            f"Run(id={self.id!r}, project={self.project!r}, group={self.group!r}, "
            f"state={self._state!r})"
        )


_live_runs: weakref.WeakSet[Run] = weakref.WeakSet()
_uncaught: list[BaseException] = []


def _record_uncaught(
    kind: type[BaseException], error: BaseException, traceback: TracebackType | None
) -> None:
    _uncaught.append(error)
    _previous_excepthook(kind, error, traceback)


_previous_excepthook = sys.excepthook


@atexit.register
def _finish_live_runs() -> None:
    """A script that ends without finish() still leaves a finished (or failed) run behind."""
    exit_code = 1 if _uncaught else 0
    for run in list(_live_runs):
        with contextlib.suppress(OSError):
            run.finish(exit_code=exit_code)


def init(
    project: str | None = None,
    group: str | None = None,
    job_type: str | None = None,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    tags: Iterable[str] | None = None,
    dir: str | os.PathLike[str] | None = None,
    id: str | None = None,
) -> Run:
    """Start a run in `<dir>/<project>/<id>/`.

    Arguments beat the environment: `RUNGROUP_DIR`, `RUNGROUP_PROJECT` (or `WANDB_PROJECT`),
    `RUNGROUP_RUN_GROUP` (or `WANDB_RUN_GROUP`), `RUNGROUP_JOB_TYPE` (or `WANDB_JOB_TYPE`),
    `RUNGROUP_NAME` (or `WANDB_NAME`). An existing run folder is never reused or overwritten.
    """
    global _previous_excepthook
    if sys.excepthook is not _record_uncaught:
        _previous_excepthook = sys.excepthook
        sys.excepthook = _record_uncaught
    root = Path(_setting(dir, "RUNGROUP_DIR") or DEFAULT_DIR)
    project = _setting(project, "RUNGROUP_PROJECT", "WANDB_PROJECT")
    project = store.check_name(DEFAULT_PROJECT if project is None else project, "project")
    group = _setting(group, "RUNGROUP_RUN_GROUP", "WANDB_RUN_GROUP")
    job_type = _setting(job_type, "RUNGROUP_JOB_TYPE", "WANDB_JOB_TYPE")
    name = _setting(name, "RUNGROUP_NAME", "WANDB_NAME")
    if config is not None and not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict, not {type(config).__name__}")
    if isinstance(tags, str):
        raise TypeError("tags must be a list of strings, not one string")
    tag_list = [str(tag) for tag in (tags or ())]
    project_dir = root / project
    project_dir.mkdir(parents=True, exist_ok=True)
    if id is not None:
        store.check_name(id, "run id")
        folder = project_dir / id
        try:
            folder.mkdir()
        except FileExistsError:
            raise store.StoreError(
                f"run {id!r} already exists in {project_dir}; pick another id "
                "(rungroup never overwrites a run)"
            ) from None
        run_id = id
    else:
        while True:
            run_id = generate_id()
            folder = project_dir / run_id
            try:
                folder.mkdir()
                break
            except FileExistsError:
                continue
    return Run(
        root=root,
        project=project,
        run_id=run_id,
        name=str(name) if name else run_id,
        group=str(group) if group is not None else None,
        job_type=str(job_type) if job_type is not None else None,
        tags=tag_list,
        config=config,
        folder=folder,
    )
