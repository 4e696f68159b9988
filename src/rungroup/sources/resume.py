"""Resuming a load where the cache left it: a follower's state kept beside the cached frames.

The followers of W&B files, TensorBoard event files and MLflow SQLite stores read only what
changed since their last poll (appended bytes, new rows, new run folders; a run whose files
went away is dropped). The columnar cache (`cache.py`) keeps such a follower's state in its
entry, so that a later load of a source whose files changed restores the follower and polls
it once: it reads the cache plus only what changed, instead of the whole source again.

A state is the follower's class and its attributes, without what belongs to one process (a
database connection) or repeats the frames (the `Runs` it last returned): its frames (the
points it keeps) are written as Arrow IPC files and read back mapped, the rest is pickled. It
is restored only through `_Restricted`, which builds nothing but the followers named in
`RESUMABLE` and the plain values they hold, and only when the files it was taken from can
have been appended to, not rewritten (`appended_only`).
"""

from __future__ import annotations

import io
import os
import pickle
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from rungroup.runs import Runs
from rungroup.sources.identity import Stamps

__all__ = ["RESUMABLE", "appended_only", "dump", "follower_for", "poll", "prints", "restore"]

#: format -> the follower class whose state is kept (its poll reads only what changed).
RESUMABLE = {
    "wandb": "rungroup.sources.wandb.follower.WandbFollower",
    "tensorboard": "rungroup.sources.tensorboard.follower.TensorBoardFollower",
    "mlflow": "rungroup.sources.mlflow.follower.MlflowFollower",
}
#: Formats whose files are only appended to (a SQLite database changes in place: its follower
#: reads new rows by rowid and starts over when they were reused).
APPENDED = ("wandb", "tensorboard")
#: Bytes at each end of a file whose CRC tells an append from a rewrite.
WINDOW = 4096
#: Attributes not kept: a connection is per process, `_current` is the frames again.
_DROPPED = ("_connection", "_current")
#: Bump when what a state holds changes; an older state is not restored (a full read is).
STATE_VERSION = 1

#: What a state may build besides rungroup's own classes: values, paths, arrays.
_ALLOWED = {
    "builtins": {"set", "frozenset", "dict", "list", "tuple", "bytes", "bytearray", "slice"},
    "collections": {"OrderedDict", "defaultdict", "deque"},
    "copyreg": {"_reconstructor"},
    "pathlib": {"Path", "PosixPath", "WindowsPath", "PurePosixPath", "PureWindowsPath"},
    "pathlib._local": {"Path", "PosixPath", "WindowsPath", "PurePosixPath", "PureWindowsPath"},
    "numpy": {"ndarray", "dtype"},
    "numpy.core.multiarray": {"_reconstruct", "scalar"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
}


class _Restricted(pickle.Unpickler):
    """An unpickler that builds only rungroup's source classes and plain values (the frames
    are Arrow files beside it; a state is read from a directory other programs could write
    to: never run what it names)."""

    def find_class(self, module: str, name: str) -> Any:
        allowed = _ALLOWED.get(module)
        if allowed is not None and name in allowed:
            return super().find_class(module, name)
        if module.startswith("rungroup.sources.") and not name.startswith("__"):
            found = super().find_class(module, name)
            if isinstance(found, type):  # a class (a dataclass of a follower), not a function
                return found
        raise pickle.UnpicklingError(f"a cached follower state may not build {module}.{name}")


def _qualified(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def follower_for(fmt: str, source: Any, options: dict[str, Any]) -> Any | None:
    """A new follower of `source` whose state can be kept, or None (the format has none, or
    the load's options are not the follower's: a full read is then the only way)."""
    if fmt not in RESUMABLE:
        return None
    from rungroup.sources.registry import format_for

    found = format_for(source)
    if found is None:
        return None
    try:
        follower = found.follow(source, **options)
    except TypeError:
        return None  # an option only the bulk reader takes
    return follower if _qualified(type(follower)) == RESUMABLE[fmt] else None


def dump(fmt: str, source: Any, follower: Any) -> tuple[bytes, dict[str, pl.DataFrame]]:
    """The follower's state (after a poll): its frames (the points it keeps), to be written
    as Arrow IPC files beside the pickle and read back mapped, and the rest pickled."""
    if fmt == "wandb":
        _compact_wandb(follower)
    state = {k: v for k, v in vars(follower).items() if k not in _DROPPED}
    frames = {k: v for k, v in state.items() if isinstance(v, pl.DataFrame)}
    payload = {
        "version": STATE_VERSION,
        "format": fmt,
        "source": os.fspath(source),
        "class": _qualified(type(follower)),
        "state": {k: v for k, v in state.items() if k not in frames},
        "frames": sorted(frames),
    }
    return pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL), frames


def _compact_wandb(follower: Any) -> None:
    """Drop the points a `WandbFollower`'s decoding state has already handed on (they are in
    its points frame): a run's lists of every point logged would otherwise be pickled as
    Python objects, several times the frame's size. The last point is kept: a row without
    a step is numbered after it."""
    for known in follower._files.values():
        run = known.reading.run
        cut = known.emitted - 1
        if cut <= 0:
            continue
        for name in ("metrics", "steps", "times", "stamps", "values"):
            setattr(run, name, getattr(run, name)[cut:])
        known.emitted -= cut


def restore(fmt: str, source: Any, data: bytes, frame: Callable[[str], pl.DataFrame]) -> Any | None:
    """The follower `dump` kept (its frames read by `frame(name)`), or None when it was kept
    for another source text, format or state version. Raises on a state that does not
    unpickle (the cache calls it damaged)."""
    payload = _Restricted(io.BytesIO(data)).load()
    if (
        not isinstance(payload, dict)
        or payload.get("version") != STATE_VERSION
        or payload.get("format") != fmt
        or payload.get("class") != RESUMABLE.get(fmt)
        # The same text from the same folder (the entry's key holds the absolute path): a
        # follower resolves paths as it was given them.
        or payload.get("source") != os.fspath(source)
    ):
        return None
    module, _, name = str(payload["class"]).rpartition(".")
    kind = getattr(__import__(module, fromlist=[name]), name)
    follower = kind.__new__(kind)
    vars(follower).update(payload["state"])
    for attribute in payload["frames"]:
        setattr(follower, str(attribute), frame(str(attribute)))
    for attribute in _DROPPED:
        setattr(follower, attribute, None)
    return follower


def prints(stamps: Stamps) -> dict[str, list[int]]:
    """For every file of `stamps`: the CRC-32 of its first and of its last `WINDOW` bytes up
    to its stamped size (what an append leaves as it was, and a rewrite does not)."""
    found: dict[str, list[int]] = {}
    for path, (_, size, _) in stamps.items():
        window = _window(path, size)
        if window is not None:
            found[path] = window
    return found


def _window(path: str, size: int) -> list[int] | None:
    try:
        with Path(path).open("rb") as handle:
            head = handle.read(min(WINDOW, size))
            handle.seek(max(0, size - WINDOW))
            tail = handle.read(min(WINDOW, size))
    except OSError:
        return None
    return [zlib.crc32(head), zlib.crc32(tail)]


def appended_only(fmt: str, before: Stamps, now: Stamps, kept: dict[str, list[int]]) -> bool:
    """Whether the follower kept for `before` can resume on the files as they are `now`:
    every file still there is the same file (inode); for formats whose files are only
    appended to, also not shorter and with the same first and last bytes up to the size it
    had (`prints`; a file rewritten in place with the same name is read again in full). New
    files and files gone are the follower's to handle."""
    for path, (mtime, size, inode) in before.items():
        current = now.get(path)
        if current is None:
            continue
        if current[2] != inode:
            return False
        if fmt not in APPENDED or current == (mtime, size, inode):
            continue
        if current[1] < size or kept.get(path) != _window(path, size):
            return False
    return True


def poll(follower: Any) -> Runs:
    """One poll of a restored (or new) follower: the runs as a fresh load gives them now."""
    runs, _ = follower.poll()
    close = getattr(follower, "close", None)
    if close is not None:
        close()
    if not isinstance(runs, Runs):
        raise TypeError(f"{type(follower).__name__}.poll() returned {type(runs).__name__}")
    return runs
