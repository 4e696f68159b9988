"""The columnar cache: what a load read from a source, kept as Arrow IPC files.

An entry lives in ``<cache dir>/v1/<key>/`` (`cache_dir()`: ``RUNGROUP_CACHE_DIR``, else the
platform's user cache directory; never the source's folder). The key is a hash of the source
(its absolute path or URI), the format, the format's reader `VERSION`, rungroup's version and
the load's options. An entry holds ``<token>.runs.arrow`` and ``<token>.history.arrow`` (the
two frames of `Runs`) and ``manifest.json``, written last: the identity of every file the source
was read from (path, mtime in ns, size, inode), the size and CRC-32 of both frames' files and
the `LoadWarning`s the load gave. An entry is used only when the source's files have the same
identity now and both files match their size and CRC; the warnings are given again.

After the source changed, formats whose follower reads only what changed (W&B, TensorBoard,
MLflow SQLite: `resume.RESUMABLE`) are not read again in full: the entry also keeps the
follower's state (``<token>.follower.pickle``, its frames as ``<token>.follower.<name>.arrow``,
all checked like the entry's frames; the CRC-32 of each source file's ends in the manifest),
and the next load restores it, polls it once and rewrites the entry (`resume.py` says when a
state is resumed and what it may hold). The first change after a full read is read by a new
follower, whose state is kept from then on.

Nothing of an entry is trusted before it is checked: a manifest that does not parse, a file
that is short, long or fails its CRC, or frames that do not read is a `CacheWarning` (once)
and the source is read again, its entry rewritten. Writers never touch a file a reader may be
reading: frames go to files named by a fresh token, the manifest is replaced atomically
(`os.replace`), and only then are the previous token's files removed, so two notebooks
writing the same entry leave one whole entry. A cache directory that cannot be written (read
only, full) gives one `CacheWarning` and the load goes on without a cache.

Not cached: formats whose `VERSION` is None (frames, already in memory; rungroup's own store,
already read compactly at the speed of a cache), tracking servers (no file identity), and a load in
which some run is `running` (its state depends on the clock, not only on the files) unless the
format resumes: its entry is then marked `volatile`, never served as it is, and its follower
polls again on every load, deriving the states again.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import sys
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Any

import polars as pl

from rungroup._version import __version__
from rungroup.runs import LoadWarning, Runs
from rungroup.sources import identity, resume

__all__ = ["ENV", "CacheWarning", "cache_dir", "clear", "entries", "load_cached"]

#: The environment variable naming the cache directory.
ENV = "RUNGROUP_CACHE_DIR"
#: The layout of entries; a new layout is a new folder, the old one is left to `clear`.
LAYOUT = "v1"
MANIFEST = "manifest.json"
#: Options that change how a source is read, not what it holds: not part of the key.
_NOT_KEYED = ("progress", "progress_bar", "workers", "timeout", "deadline")
#: A writer's leftover files (it died before its manifest) older than this are removed.
_ORPHAN_AFTER = 3600.0
_FRAMES = ("runs", "history")
#: The file of a follower's state (`resume.py`), in entries of formats that resume.
_STATE = "follower"


class CacheWarning(LoadWarning):
    """The cache could not be used: an entry was damaged (and is rebuilt from the source) or
    the cache directory cannot be written (the load goes on without a cache)."""


def cache_dir() -> Path:
    """``RUNGROUP_CACHE_DIR``, else the platform's user cache directory + ``rungroup``."""
    configured = os.environ.get(ENV)
    if configured:
        return Path(configured).expanduser()
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "rungroup"
    if os.name == "nt":
        base = os.environ.get("LOCALAPPDATA")
        return (Path(base) if base else home / "AppData" / "Local") / "rungroup" / "Cache"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".cache") / "rungroup"


def _warn(message: str) -> None:
    warnings.warn(message, CacheWarning, stacklevel=4)


@dataclass(frozen=True)
class _Entry:
    folder: Path
    description: dict[str, Any]


def _entry(fmt: str, version: int, source: Any, options: dict[str, Any]) -> _Entry | None:
    """The entry of this load, or None when it is not cached (no file identity, or the cache
    directory lies inside the source's folders)."""
    if not isinstance(source, (str, os.PathLike)):
        return None
    text = os.fspath(source)
    if identity.watched(text) is None:
        return None  # a server: nothing to tell a changed source from an unchanged one
    shown = text if "://" in text else str(Path(text).absolute())
    keyed = {k: v for k, v in sorted(options.items()) if k not in _NOT_KEYED}
    description = {
        "source": shown,
        "format": fmt,
        "reader": version,
        "rungroup": __version__,
        "options": json.loads(json.dumps(keyed, default=repr)),
    }
    key = sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:32]
    return _Entry(cache_dir() / LAYOUT / key, description)


def _inside(folder: Path, paths: list[Path]) -> bool:
    """Whether `folder` lies at or below one of `paths` (writing there would change them)."""
    try:
        resolved = folder.resolve()
        return any(resolved.is_relative_to(p.resolve()) for p in paths if p.is_dir())
    except OSError:
        return True


def _stamps_list(stamps: identity.Stamps) -> list[list[Any]]:
    return [[path, *stamp] for path, stamp in sorted(stamps.items())]


def _stamps_dict(rows: list[list[Any]]) -> identity.Stamps:
    return {str(row[0]): (int(row[1]), int(row[2]), int(row[3])) for row in rows}


# --- reading --------------------------------------------------------------------------------


class _DamagedError(Exception):
    """An entry that is there but cannot be trusted."""


def _manifest(entry: _Entry) -> dict[str, Any] | None:
    """The entry's manifest, or None when there is none or another version wrote it; raises
    `_DamagedError` when it is there but cannot be trusted."""
    try:
        raw = (entry.folder / MANIFEST).read_bytes()
    except OSError:
        return None  # no entry, or no cache directory to read (writing it will say why)
    try:
        manifest = json.loads(raw)
        if manifest.get("entry") != entry.description:
            return None  # another version wrote it (or a hash collision): not ours to use
        if not isinstance(manifest["stamps"], list) or not isinstance(manifest["files"], dict):
            raise _DamagedError("manifest without stamps or files")
        return dict(manifest)
    except _DamagedError:
        raise
    except Exception as error:
        raise _DamagedError(f"{type(error).__name__}: {error}") from error


def _checked(entry: _Entry, manifest: dict[str, Any], name: str) -> Path:
    """The path of the entry's file `name` once it matches its size and CRC-32 (files are
    never rewritten in place, so what was checked is what is read)."""
    described = manifest["files"][name]
    path = entry.folder / str(described["name"])
    if path.parent != entry.folder:
        raise _DamagedError(f"manifest names a file outside the entry: {described['name']}")
    if _checksum(path) != (described["size"], described["crc32"]):
        raise _DamagedError(f"{path.name} does not match its size and CRC-32")
    return path


def _read(entry: _Entry, manifest: dict[str, Any]) -> tuple[Runs, list[str]] | None:
    """The entry's runs and warnings; None when its files went away; raises `_DamagedError`
    when they are there but cannot be trusted."""
    try:
        frames: dict[str, pl.DataFrame] = {}
        for name in _FRAMES:
            # Read from the path (Polars maps an uncompressed file rather than copying it).
            frames[name] = pl.read_ipc(_checked(entry, manifest, name))
        notes = [str(m) for m in manifest["warnings"]]
    except FileNotFoundError:
        return None  # removed by another writer or `clear` while read: read the source
    except _DamagedError:
        raise
    except Exception as error:  # any parse or decode failure means the entry is damaged
        raise _DamagedError(f"{type(error).__name__}: {error}") from error
    return Runs(frames["runs"], frames["history"]), notes


def _restored(
    entry: _Entry, manifest: dict[str, Any], fmt: str, source: Any, now: identity.Stamps
) -> Any | None:
    """The follower the entry kept, restored, when it can resume on the files as they are
    now (`resume.appended_only`); None when there is none or it cannot."""
    if _STATE not in manifest["files"]:
        return None
    kept = _stamps_dict(manifest["stamps"])
    prints = {str(k): [int(x) for x in v] for k, v in dict(manifest.get("prints", {})).items()}
    if not resume.appended_only(fmt, kept, now, prints):
        return None
    try:
        data = _checked(entry, manifest, _STATE).read_bytes()
        # Mapped, as the entry's frames: nothing of the points is copied to restore them.
        return resume.restore(
            fmt,
            source,
            data,
            lambda name: pl.read_ipc(_checked(entry, manifest, f"{_STATE}.{name}")),
        )
    except FileNotFoundError:
        return None
    except _DamagedError:
        raise
    except Exception as error:
        raise _DamagedError(f"follower state: {type(error).__name__}: {error}") from error


def _checksum(path: Path) -> tuple[int, int]:
    """(size, CRC-32) of a file, read in blocks."""
    crc = size = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 24):
            crc = zlib.crc32(block, crc)
            size += len(block)
    return size, crc


# --- writing --------------------------------------------------------------------------------


def _frame_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_ipc(buffer, compression="uncompressed")
    return buffer.getvalue()


def _write_new(path: Path, data: bytes) -> None:
    """Write `data` to a file that must not exist yet (a fresh token's name)."""
    with path.open("xb") as handle:
        handle.write(data)


def _write(
    entry: _Entry,
    runs: Runs,
    stamps: list[list[Any]],
    notes: list[str],
    state: tuple[bytes, dict[str, pl.DataFrame]] | None = None,
    prints: dict[str, list[int]] | None = None,
    volatile: bool = False,
) -> pl.DataFrame:
    """Write the entry: frames (and a follower's `state`) under a fresh token, then the
    manifest atomically, then the files of the manifest it replaced; returns the history
    written. A `volatile` entry (some run is running: its state changes with the clock) is
    only resumed, never served as it is. Raises `OSError` (the caller degrades)."""
    entry.folder.mkdir(parents=True, exist_ok=True)
    token = f"{os.getpid()}-{secrets.token_hex(6)}"
    written: list[Path] = []
    try:
        files: dict[str, dict[str, Any]] = {}
        history = runs.history.collect()
        parts: list[tuple[str, bytes, str]] = [
            ("runs", _frame_bytes(runs.runs), "arrow"),
            ("history", _frame_bytes(history), "arrow"),
        ]
        if state is not None:
            pickled, state_frames = state
            parts.append((_STATE, pickled, "pickle"))
            parts += [(f"{_STATE}.{k}", _frame_bytes(v), "arrow") for k, v in state_frames.items()]
        for name, data, suffix in parts:
            path = entry.folder / f"{token}.{name}.{suffix}"
            written.append(path)
            _write_new(path, data)
            files[name] = {"name": path.name, "size": len(data), "crc32": zlib.crc32(data)}
        manifest = {
            "entry": entry.description,
            "stamps": stamps,
            "files": files,
            "warnings": notes,
            "volatile": volatile,
            # what tells an append from a rewrite when the follower resumes (`resume.py`)
            "prints": (prints or {}) if state is not None else {},
            "runs": runs.runs.height,
            "points": history.height,
            "written": time.time(),
        }
        temporary = entry.folder / f"{token}.manifest.tmp"
        written.append(temporary)
        _write_new(temporary, json.dumps(manifest).encode())
        previous = _current_files(entry.folder)
        temporary.replace(entry.folder / MANIFEST)
    except BaseException:
        for path in written:
            _remove(path)
        raise
    for path in previous - set(written):
        _remove(path)
    _remove_orphans(entry.folder)
    return history


def _current_files(folder: Path) -> set[Path]:
    """The frame files the entry's manifest names now (to remove once it is replaced)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_bytes())
        return {folder / str(f["name"]) for f in manifest["files"].values()}
    except Exception:  # no manifest, or a damaged one: nothing of it to keep
        return set()


def _remove_orphans(folder: Path) -> None:
    """Remove what writers that died left (their token's files), once old enough that no
    writer is still at work on them."""
    keep = _current_files(folder) | {folder / MANIFEST}
    now = time.time()
    for path in folder.iterdir():
        try:
            if path not in keep and now - path.stat().st_mtime > _ORPHAN_AFTER:
                _remove(path)
        except OSError:
            continue


def _remove(path: Path) -> None:
    with suppress(OSError):
        path.unlink()


# --- loading --------------------------------------------------------------------------------


@contextmanager
def _recorded() -> Iterator[list[warnings.WarningMessage]]:
    """Record every warning of the block, then give them again as the caller's filters say
    (the load's warnings are kept in the entry to be given again by a load from it)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
    for note in caught:
        warnings.warn_explicit(
            note.message, note.category, note.filename, note.lineno, source=note.source
        )


def load_cached(
    fmt: str, version: int, reader: Callable[..., Runs], source: Any, options: dict[str, Any]
) -> Runs:
    """`reader(source, **options)`, from the cache when its entry matches the source's files,
    else read and kept there. When the files changed since the entry was written and the
    format's follower can resume (`resume.py`), only what changed is read: the entry's
    follower is restored and polled (after the first change, a new follower reads the whole
    source once and is kept)."""
    entry = _entry(fmt, version, source, options)
    watched = identity.watched(source) if entry is not None else None
    if entry is None or watched is None:
        return reader(source, **options)
    paths = watched()
    if _inside(cache_dir(), paths):
        return reader(source, **options)
    now = identity.stamps(paths)
    before = _stamps_list(now)
    follower: Any | None = None
    kept: list[str] = []
    try:
        manifest = _manifest(entry)
        if manifest is not None and manifest["stamps"] == before and not manifest.get("volatile"):
            found = _read(entry, manifest)
            if found is not None:
                runs, notes = found
                for note in notes:
                    warnings.warn(note, LoadWarning, stacklevel=3)
                return runs
        if manifest is not None and fmt in resume.RESUMABLE:
            follower = _restored(entry, manifest, fmt, source, now)
            if follower is not None:
                kept = [str(m) for m in manifest["warnings"]]
            else:  # the first change since a full read: a follower reads it all, then resumes
                follower = resume.follower_for(fmt, source, options)
    except _DamagedError as damage:
        _warn(f"cache entry {entry.folder} is damaged ({damage}); reading {source} again")
        follower = None
    # What tells an append from a rewrite next time, taken before the files are read: a file
    # rewritten after this changes its stamp, and the entry is then not written.
    prints = resume.prints(now) if follower is not None else {}
    polled = _polled(follower, kept, source) if follower is not None else None
    if polled is None:
        follower = None
        with _recorded() as caught:
            runs = reader(source, **options)
        notes = [str(n.message) for n in caught if issubclass(n.category, LoadWarning)]
    else:
        runs, notes = polled
    after = _stamps_list(identity.stamps(paths))
    if after != before:
        return runs  # written while read
    running = "running" in runs.runs["state"].to_list()
    if running and fmt not in resume.RESUMABLE:
        return runs  # a state that changes with the clock, and no follower to derive it again
    # A volatile entry is never served as it is: its follower polls again (re-deriving the
    # states), or, when a full read wrote it, the next load keeps a follower.
    state = None if follower is None else resume.dump(fmt, source, follower)
    try:
        history = _write(entry, runs, before, notes, state, prints, volatile=running)
    except OSError as error:
        _warn(f"cannot write the cache in {cache_dir()} ({error}); loading without it")
        return runs
    if follower is not None:
        # A follower's history is a query over its points: the frame just written holds the
        # same rows, collected once (the caller's collect is then free, the points let go).
        return Runs(runs.runs, history.lazy(), validate=False)
    return runs


def _polled(follower: Any, kept: list[str], source: Any) -> tuple[Runs, list[str]] | None:
    """The follower's poll and the warnings of the load (those kept in the entry, then the
    new ones); None when it fails (the source is then read in full, which says why if it is
    the source's fault)."""
    for text in kept:  # what a full read would say again about what was read before
        warnings.warn(text, LoadWarning, stacklevel=4)
    try:
        with _recorded() as caught:
            runs = resume.poll(follower)
    except Exception as error:
        _warn(f"cannot resume reading {source} from the cache ({error}); reading it all")
        return None
    notes = list(kept)
    for note in caught:
        if issubclass(note.category, LoadWarning) and str(note.message) not in notes:
            notes.append(str(note.message))
    return runs, notes


# --- what `rungroup cache` shows and clears -------------------------------------------------


@dataclass(frozen=True)
class EntryInfo:
    folder: Path
    source: str
    format: str
    runs: int
    points: int
    size: int
    written: float


def entries() -> list[EntryInfo]:
    """The cache's entries (those whose manifest reads), newest first."""
    root = cache_dir() / LAYOUT
    found: list[EntryInfo] = []
    if not root.is_dir():
        return found
    for folder in root.iterdir():
        try:
            manifest = json.loads((folder / MANIFEST).read_bytes())
            size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
            found.append(
                EntryInfo(
                    folder,
                    str(manifest["entry"]["source"]),
                    str(manifest["entry"]["format"]),
                    int(manifest["runs"]),
                    int(manifest["points"]),
                    size,
                    float(manifest["written"]),
                )
            )
        except Exception:  # damaged or being written: shown by size only in `clear`
            continue
    return sorted(found, key=lambda e: -e.written)


def clear() -> tuple[int, int]:
    """Remove every entry (only the cache's own `v1/` folders); returns (entries, bytes)."""
    root = cache_dir() / LAYOUT
    count = size = 0
    if not root.is_dir():
        return 0, 0
    for folder in root.iterdir():
        if not folder.is_dir() or folder.is_symlink():
            continue
        for path in folder.iterdir():
            try:
                size += path.stat().st_size
                path.unlink()
            except OSError:
                continue
        try:
            folder.rmdir()
            count += 1
        except OSError:
            continue
    return count, size
