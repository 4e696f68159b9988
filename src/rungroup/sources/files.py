"""Safe file access for the loaders that read folders of files (CSV, TensorBoard, W&B, MLflow's
file store, rungroup's store).

A log folder is written by other programs and sometimes by accident: a FIFO or a device where a
file is expected (opening one blocks, reading one never ends), a symlink loop, a folder the
user may not read, names that are not UTF-8, JSON with lone surrogates, a YAML alias bomb. Each
of these becomes one `LoadWarning` here and is skipped or bounded; nothing hangs and nothing
grows without limit. Paths keep Python's lossless `surrogateescape` names; `shown()` turns them
into text that can go into a table (undecodable bytes as ``\\xNN``).
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from rungroup.sources.runrecords import shown, warn

__all__ = [
    "MAX_NESTING",
    "MAX_TEXT_BYTES",
    "MAX_YAML_NODES",
    "NotReadableError",
    "json_value",
    "read_bytes",
    "read_text",
    "repair_text",
    "shown",
    "subfolders",
    "walk",
    "walk_names",
    "yaml_value",
]

#: Config and metadata files (YAML, JSON, params) larger than this are not read.
MAX_TEXT_BYTES = 16 * 1024 * 1024
#: A YAML document is refused when its aliases expand to more nodes than this.
MAX_YAML_NODES = 100_000
#: JSON, YAML and protobuf values nested deeper than this are refused.
MAX_NESTING = 100

_SURROGATE = re.compile("[\ud800-\udfff]")


class NotReadableError(OSError):
    """A path that is not a regular file, or one too large to read; the message says which."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.strerror = message


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def read_bytes(path: Path, *, offset: int = 0, limit: int | None = None) -> bytes:
    """The bytes of a regular file from `offset` to its size when opened.

    Raises `NotReadableError` for a FIFO, device or socket (opened without blocking, never read)
    and for a file larger than `limit`; `OSError` when it cannot be opened. A file that grows
    while it is read is read up to the size it had when opened.
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise NotReadableError(f"{_kind(status.st_mode)}, not a file; skipped")
        size = status.st_size
        if limit is not None and size > limit:
            raise NotReadableError(f"{size:,} bytes, more than the {limit:,} read for such a file")
        if offset:
            os.lseek(descriptor, offset, os.SEEK_SET)
        parts = []
        left = size - offset
        while left > 0:
            part = os.read(descriptor, left)
            if not part:
                break
            parts.append(part)
            left -= len(part)
        return b"".join(parts)
    finally:
        os.close(descriptor)


def read_text(path: Path, *, limit: int = MAX_TEXT_BYTES) -> str:
    """A small text file as UTF-8 (a byte-order mark dropped); raises `OSError` or
    `UnicodeDecodeError` (a `ValueError`)."""
    return read_bytes(path, limit=limit).decode("utf-8-sig")


def _identity(status: os.stat_result) -> tuple[int, int]:
    return status.st_dev, status.st_ino


def walk(root: Path, keep: Callable[[str], bool]) -> list[Path]:
    """Every regular file below `root` whose name `keep` accepts, sorted.

    Real folders are walked first; a symlinked folder is walked afterwards only when its
    target was not walked already (so `latest-run`-style links add nothing, and a link that
    points at one of its own parents is a warning, not a loop). A folder that cannot be
    listed, and a kept name that is a FIFO, device, socket or broken link, is one warning
    each.
    """
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    try:
        seen.add(_identity(root.stat()))
    except OSError as error:
        warn(shown(root), f"not read ({error.strerror or error})")
        return found
    linked: list[Path] = []
    pending = [root]
    while pending or linked:
        if not pending:
            link = linked.pop(0)
            try:
                identity = _identity(link.stat())
            except OSError as error:
                warn(shown(link), f"link not followed ({error.strerror or error})")
                continue
            if identity in seen:
                target = os.path.realpath(link)
                parent = os.path.realpath(link.parent)
                if parent == target or parent.startswith(target.rstrip(os.sep) + os.sep):
                    warn(shown(link), "symlink loop (points at its own parent); not followed")
                continue
            seen.add(identity)
            pending.append(link)
        folder = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as error:
            warn(shown(folder), f"folder not read ({error.strerror or error}); skipped")
            continue
        for entry in reversed(entries):
            path = Path(entry.path)
            try:
                is_link = entry.is_symlink()
                if entry.is_dir(follow_symlinks=False):
                    status = entry.stat(follow_symlinks=False)
                    if _identity(status) not in seen:
                        seen.add(_identity(status))
                        pending.append(path)
                    continue
                if not keep(entry.name):
                    if is_link:
                        linked_dir = entry.is_dir(follow_symlinks=True)
                        if linked_dir:
                            linked.append(path)
                    continue
                mode = entry.stat(follow_symlinks=True).st_mode
            except OSError as error:
                if keep(entry.name) or error.errno == errno.ELOOP:
                    reason = "symlink loop" if error.errno == errno.ELOOP else error.strerror
                    warn(shown(path), f"not read ({reason}); skipped")
                continue
            if stat.S_ISREG(mode):
                found.append(path)
            elif stat.S_ISDIR(mode):
                linked.append(path)
            else:
                warn(shown(path), f"{_kind(mode)}, not a file; skipped")
    return sorted(found)


def subfolders(path: Path) -> list[Path]:
    """The folders in `path` (links to folders included), sorted; an unreadable `path` is
    a warning and no folders."""
    try:
        with os.scandir(path) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError as error:
        warn(shown(path), f"folder not read ({error.strerror or error}); skipped")
        return []
    folders = []
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=True):
                folders.append(Path(entry.path))
        except OSError:
            continue
    return folders


def repair_text(text: str) -> tuple[str, bool]:
    """`text` with lone surrogates (from JSON escapes such as ``"\\ud800"``) replaced by
    U+FFFD, and whether there were any."""
    repaired, count = _SURROGATE.subn("\ufffd", text)
    return repaired, bool(count)


def _repair(value: Any, depth: int = 0) -> tuple[Any, bool]:
    if depth > MAX_NESTING:
        raise ValueError(f"nested more than {MAX_NESTING} levels deep")
    if isinstance(value, str):
        return repair_text(value)
    if isinstance(value, list):
        changed = False
        out = []
        for item in value:
            fixed, bad = _repair(item, depth + 1)
            out.append(fixed)
            changed |= bad
        return out, changed
    if isinstance(value, dict):
        changed = False
        mapping = {}
        for key, item in value.items():
            fixed_key, bad_key = _repair(key, depth + 1)
            fixed, bad = _repair(item, depth + 1)
            mapping[fixed_key] = fixed
            changed |= bad or bad_key
        return mapping, changed
    return value, False


def json_value(text: str) -> tuple[Any, bool]:
    """(value, repaired) of a JSON text: lone surrogates replaced by U+FFFD (`repaired` says
    so). Raises `ValueError` for text that is not JSON or nests deeper than `MAX_NESTING`."""
    try:
        value = json.loads(text)
    except RecursionError as error:
        raise ValueError(f"nested more than {MAX_NESTING} levels deep") from error
    if isinstance(value, (int, float)) or value is None:
        return value, False
    if "\\u" not in text and len(text) < MAX_NESTING:
        return value, False
    return _repair(value)


class _PureBoundedLoader(yaml.SafeLoader):
    """`yaml.safe_load` that refuses documents whose aliases expand past `MAX_YAML_NODES`
    nodes, that refer to themselves, or that nest deeper than `MAX_NESTING`."""

    def get_single_node(self) -> Any:
        node = super().get_single_node()
        if node is not None:
            _check_nodes(node)
        return node


#: libyaml's parser where PyYAML was built with it (the wheels are): the same values,
#: parsed several times faster (a thousand MLflow meta.yaml files take ~0.5 s in the
#: pure-Python parser), bounded the same way
_BoundedLoader: type[Any] = _PureBoundedLoader
if hasattr(yaml, "CSafeLoader"):

    class _CBoundedLoader(yaml.CSafeLoader):
        def get_single_node(self) -> Any:
            node = super().get_single_node()
            if node is not None:
                _check_nodes(node)
            return node

    _BoundedLoader = _CBoundedLoader


def _check_nodes(root: yaml.Node) -> None:
    """Raise `ValueError` when the node graph, expanded, is too large, deep or cyclic."""
    sizes: dict[int, int] = {}
    # Post-order walk with an explicit stack (no recursion for deep documents).
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 0, False)]
    open_nodes: set[int] = set()
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            open_nodes.discard(key)
            total = 1 + sum(sizes[id(c)] for c in _children(node))
            if total > MAX_YAML_NODES:
                raise ValueError(
                    f"its aliases expand to more than {MAX_YAML_NODES:,} values (an alias bomb?)"
                )
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise ValueError("an alias refers to a value that holds it (a cycle)")
        if depth > MAX_NESTING:
            raise ValueError(f"nested more than {MAX_NESTING} levels deep")
        open_nodes.add(key)
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in _children(node))


def _children(node: yaml.Node) -> Iterator[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        yield from node.value
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key
            yield value


def yaml_value(text: str) -> tuple[Any, bool]:
    """(value, repaired) of `yaml.safe_load(text)`, bounded: raises `ValueError` for an alias
    bomb, a cyclic or too deeply nested document, and for text that is not YAML; lone
    surrogates are replaced by U+FFFD as in `json_value`."""
    try:
        value = yaml.load(text, Loader=_BoundedLoader)
    except yaml.YAMLError:
        # libyaml refuses a few things the pure-Python parser reads (an escaped lone
        # surrogate, nesting past its own limit): that parser decides, and says why
        try:
            value = yaml.load(text, Loader=_PureBoundedLoader)
        except yaml.YAMLError as error:
            raise ValueError(f"not YAML: {str(error).splitlines()[0]}") from error
        except RecursionError as error:
            raise ValueError(f"nested more than {MAX_NESTING} levels deep") from error
    except RecursionError as error:
        raise ValueError(f"nested more than {MAX_NESTING} levels deep") from error
    return _repair(value)


def walk_names(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """`walk` for files whose name ends in one of `suffixes` (case-insensitive)."""
    return walk(root, lambda name: name.lower().endswith(suffixes))
