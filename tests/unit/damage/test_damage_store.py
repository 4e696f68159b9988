"""Damage to rungroup's own store, made by code: each case loads in a child process with a
time limit (a hang fails), and checks that the warning names the damaged file, exactly how
many points of each run still load, and that loading changed no byte of the store.

Every case starts from a store with two runs, `good` and `bad`, of 4 records x 10 steps x 2
metrics (20 points a record). One of bad's metric names holds the record markers of both
format versions, and one of its values holds them in its bytes: a reader that trusts a marker
without checking the record behind it loses data here.
"""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from damage_runner import load_isolated

import rungroup as rg
from rungroup import store

RECORDS, STEPS_PER_RECORD = 4, 10
PER_RECORD = 2 * STEPS_PER_RECORD
ALL = RECORDS * PER_RECORD
#: a metric name and a value whose bytes hold both record markers
TRAP_NAME = 'trap RGRC\x89RGR "name"'
TRAP_VALUE = struct.unpack("<d", store.RECORD_MAGIC + store.RECORD_MAGIC_V1)[0]


def build(root: Path) -> None:
    for run_id in ("good", "bad"):
        with rg.init(dir=root, project="p", id=run_id) as run:
            for step in range(RECORDS * STEPS_PER_RECORD):
                run.log({"loss": float(step), TRAP_NAME: TRAP_VALUE}, step=step)
                if step % STEPS_PER_RECORD == STEPS_PER_RECORD - 1:
                    run._flush()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("template")
    build(root)
    return root


# -- reading and writing the bytes -----------------------------------------------------------


def frames(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each record of an intact version-2 history."""
    found, position = [], len(store.HISTORY_MAGIC)
    while position < len(data):
        (length,) = struct.unpack_from("<I", data, position + 4)
        end = position + store._RECORD_HEADER.size + length
        found.append((position, end))
        position = end
    assert len(found) == RECORDS
    return found


def old_format(data: bytes) -> bytes:
    """The same history in format 1, framed as docs/store.md describes it (the old writer):
    ``"RGRC" | payload length u32 | crc32(payload) u32 | payload``, header ``RGHIST\\0\\1``."""
    out = [b"RGHIST\x00\x01"]
    for start, end in frames(data):
        payload = data[start + store._RECORD_HEADER.size : end]
        out.append(struct.pack("<4sII", b"RGRC", len(payload), zlib.crc32(payload)) + payload)
    return b"".join(out)


def old_frames(data: bytes) -> list[tuple[int, int]]:
    found, position = [], 8
    while position < len(data):
        (length,) = struct.unpack_from("<I", data, position + 4)
        found.append((position, position + 12 + length))
        position += 12 + length
    return found


History = Callable[[bytes, list[tuple[int, int]]], bytes]


def history(change: History, *, old: bool = False) -> Callable[[Path], None]:
    """A damage that rewrites bad's history.rgh from its bytes and record boundaries."""

    def damage(folder: Path) -> None:
        path = folder / store.HISTORY_FILE
        data = path.read_bytes()
        if old:
            data = old_format(data)
            path.write_bytes(change(data, old_frames(data)))
        else:
            path.write_bytes(change(data, frames(data)))

    return damage


def put(data: bytes, at: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + len(new) :]


def flip(data: bytes, at: int) -> bytes:
    return put(data, at, bytes([data[at] ^ 0xFF]))


def set_length(data: bytes, record: tuple[int, int], length: int) -> bytes:
    return put(data, record[0] + 4, struct.pack("<I", length))


def meta(folder: Path, **changes: object) -> None:
    content = json.loads((folder / store.META_FILE).read_text())
    content.update(changes)
    (folder / store.META_FILE).write_text(json.dumps(content))


def replace_meta(raw: bytes) -> Callable[[Path], None]:
    return lambda folder: (folder / store.META_FILE).write_bytes(raw)


def history_as_folder(folder: Path) -> None:
    (folder / store.HISTORY_FILE).unlink()
    (folder / store.HISTORY_FILE).mkdir()


GARBAGE = bytes(range(7, 250, 7))
NAME_TABLE = b'["loss", "RGRC"]'  # the old marker as a payload holds it

# (case, damage, file damaged, fragments one warning holds (none: no warning), bad's points;
# None: bad is not loaded)
# fmt: off
CASES: list[tuple[str, Callable[[Path], None], str, tuple[str, ...], int | None]] = [
    ("length grown by one", history(lambda d, f: set_length(d, f[1], f[1][1] - f[1][0] - 19)), "h", ("record at byte", "damaged header", "reading resumes at byte"), ALL - PER_RECORD),
    ("length huge", history(lambda d, f: set_length(d, f[1], 0xFFFFFFF0)), "h", ("damaged header",), ALL - PER_RECORD),
    ("length zero", history(lambda d, f: set_length(d, f[1], 0)), "h", ("damaged header",), ALL - PER_RECORD),
    ("length of the last record", history(lambda d, f: set_length(d, f[3], 1 << 20)), "h", ("damaged header", "to the end of the file"), ALL - PER_RECORD),
    ("sequence number damaged", history(lambda d, f: flip(d, f[1][0] + 8)), "h", ("damaged header",), ALL - PER_RECORD),
    ("payload checksum field damaged", history(lambda d, f: flip(d, f[1][0] + 13)), "h", ("damaged header",), ALL - PER_RECORD),
    ("header checksum damaged", history(lambda d, f: flip(d, f[1][0] + 19)), "h", ("damaged header",), ALL - PER_RECORD),
    ("record marker damaged", history(lambda d, f: flip(d, f[1][0])), "h", ("bytes of garbage",), ALL - PER_RECORD),
    ("byte flipped in the points", history(lambda d, f: flip(d, f[1][1] - 3)), "h", ("fails its checksum",), ALL - PER_RECORD),
    ("byte flipped in the name table", history(lambda d, f: flip(d, f[1][0] + 30)), "h", ("fails its checksum",), ALL - PER_RECORD),
    ("every marker but the last damaged", history(lambda d, f: flip(flip(flip(d, f[0][0]), f[1][0]), f[2][0])), "h", ("bytes of garbage",), PER_RECORD),
    ("two neighbouring records damaged", history(lambda d, f: flip(set_length(d, f[1], 7), f[2][1] - 1)), "h", ("damaged header", "reading resumes at byte"), ALL - 2 * PER_RECORD),
    ("garbage between records", history(lambda d, f: d[: f[2][0]] + GARBAGE + d[f[2][0] :]), "h", (f"{len(GARBAGE)} bytes of garbage",), ALL),
    ("garbage holding record markers", history(lambda d, f: d[: f[2][0]] + store.RECORD_MAGIC * 9 + GARBAGE + d[f[2][0] :]), "h", ("damaged header", f"{36 + len(GARBAGE)} bytes skipped"), ALL),
    ("a half record between records", history(lambda d, f: d[: f[2][0]] + d[f[0][0] : f[0][0] + 50] + d[f[2][0] :]), "h", ("fails its checksum", "50 bytes skipped"), ALL),
    ("zeros instead of a record", history(lambda d, f: put(d, f[2][0], bytes(f[2][1] - f[2][0]))), "h", ("zero bytes", "as a crash leaves"), ALL - PER_RECORD),
    ("zeros appended, as after a crash", history(lambda d, f: d + bytes(4096)), "h", ("4096 zero bytes",), ALL),
    ("zeros from the middle to the end", history(lambda d, f: put(d, f[2][0] + 30, bytes(len(d) - f[2][0] - 30))), "h", ("fails its checksum", "to the end of the file"), 2 * PER_RECORD),
    ("bytes deleted inside a record", history(lambda d, f: d[: f[1][0] + 60] + d[f[1][0] + 65 :]), "h", ("fails its checksum",), ALL - PER_RECORD),
    ("bytes inserted inside a record", history(lambda d, f: d[: f[1][0] + 60] + GARBAGE + d[f[1][0] + 60 :]), "h", ("fails its checksum",), ALL - PER_RECORD),
    ("a record written twice", history(lambda d, f: d[: f[1][1]] + d[f[1][0] : f[1][1]] + d[f[1][1] :]), "h", ("repeats the record at byte", "a copy"), ALL),
    ("a record replaced by a copy of another", history(lambda d, f: d[: f[2][0]] + d[f[0][0] : f[0][1]] + d[f[2][1] :]), "h", ("a copy",), ALL - PER_RECORD),
    ("two records swapped", history(lambda d, f: d[: f[1][0]] + d[f[2][0] : f[2][1]] + d[f[1][0] : f[1][1]] + d[f[3][0] :]), "h", ("1 records are out of order",), ALL),
    ("the whole history twice", history(lambda d, f: d + d), "h", ("8 bytes of garbage",), ALL),
    ("cut inside the file header", history(lambda d, f: d[:5]), "h", ("last record is torn",), 0),
    ("cut after the file header", history(lambda d, f: d[:8]), "h", (), 0),
    ("cut in the last marker", history(lambda d, f: d[: f[3][0] + 2]), "h", ("last record is torn",), ALL - PER_RECORD),
    ("cut in the last header", history(lambda d, f: d[: f[3][0] + 11]), "h", ("last record is torn",), ALL - PER_RECORD),
    ("cut after the last header", history(lambda d, f: d[: f[3][0] + 20]), "h", ("last record is torn",), ALL - PER_RECORD),
    ("cut in the last name table", history(lambda d, f: d[: f[3][0] + 30]), "h", ("last record is torn",), ALL - PER_RECORD),
    ("cut in the last points", history(lambda d, f: d[: f[3][1] - 30]), "h", ("last record is torn",), ALL - PER_RECORD),
    ("last byte missing", history(lambda d, f: d[:-1]), "h", ("last record is torn",), ALL - PER_RECORD),
    ("cut at a record boundary", history(lambda d, f: d[: f[3][0]]), "h", (), ALL - PER_RECORD),
    ("a damaged record, then a torn one", history(lambda d, f: flip(d, f[2][1] - 3)[: f[3][1] - 5]), "h", ("last record is torn",), 2 * PER_RECORD),
    ("cut in a middle record", history(lambda d, f: d[: f[1][0] + 100]), "h", ("last record is torn",), PER_RECORD),
    ("history of 0 bytes", history(lambda d, f: b""), "h", ("is empty (0 bytes",), 0),
    ("history missing", lambda f: (f / store.HISTORY_FILE).unlink(), "h", ("missing",), 0),
    ("history a folder", history_as_folder, "h", ("cannot be read",), 0),
    ("history format of the future", history(lambda d, f: b"RGHIST\x00\x09" + d[8:]), "h", ("history format version 9", "upgrade"), 0),
    ("not a history", history(lambda d, f: b"PK\x03\x04" + d[4:]), "h", ("not a rungroup history file",), 0),
    ("run.json not JSON", replace_meta(b"{not json"), "m", ("not valid JSON", "run skipped"), None),
    ("run.json of 0 bytes", replace_meta(b""), "m", ("not valid JSON",), None),
    ("run.json half written", lambda f: (f / store.META_FILE).write_bytes((f / store.META_FILE).read_bytes()[:60]), "m", ("not valid JSON",), None),
    ("run.json not UTF-8", replace_meta(b'{"id": "\xff\xfe"}'), "m", ("not valid JSON",), None),
    ("run.json an array", replace_meta(b"[1, 2]"), "m", ("expected a JSON object",), None),
    ("run.json of the future", lambda f: meta(f, format_version=99), "m", ("version 99",), None),
    ("run.json without an id", lambda f: meta(f, id=""), "m", ("has no run id",), None),
    ("old format, intact", history(lambda d, f: d, old=True), "h", (), ALL),
    ("old format, length grown", history(lambda d, f: set_length(d, f[1], f[1][1] - f[1][0] - 11), old=True), "h", ("fails its checksum",), ALL - PER_RECORD),
    ("old format, length past the end", history(lambda d, f: set_length(d, f[1], 1 << 29), old=True), "h", ("more than the file holds", "intact records follow"), ALL - PER_RECORD),
    ("old format, checksum failure, markers in a name", history(lambda d, f: flip(d, f[1][1] - 3), old=True), "h", ("fails its checksum",), ALL - PER_RECORD),
    ("old format, old markers and JSON between records", history(lambda d, f: d[: f[2][0]] + b"RGRC" + NAME_TABLE + d[f[2][0] :], old=True), "h", ("bytes of garbage",), ALL),
    ("old format, torn tail", history(lambda d, f: d[:-9], old=True), "h", ("last record is torn",), ALL - PER_RECORD),
]
# fmt: on


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(root.rglob("*"))
    }


@pytest.mark.parametrize(
    ("damage", "damaged", "fragments", "bad_points"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_damage(
    template: Path,
    tmp_path: Path,
    damage: Callable[[Path], None],
    damaged: str,
    fragments: tuple[str, ...],
    bad_points: int | None,
) -> None:
    root = tmp_path / "store"
    shutil.copytree(template, root)
    bad = root / "p" / "bad"
    damage(bad)
    before = snapshot(root)
    outcome = load_isolated(root)
    assert outcome.error is None, outcome.error
    assert snapshot(root) == before  # loading is read-only
    expected = {"good": ALL} if bad_points is None else {"good": ALL, "bad": bad_points}
    assert outcome.runs == expected, outcome.load_warnings()
    file = str(bad / (store.HISTORY_FILE if damaged == "h" else store.META_FILE))
    messages = outcome.load_warnings()
    if fragments:
        assert outcome.warned_about(file, *fragments), messages
    else:
        assert messages == []
    assert all(str(bad) in m for m in messages), messages  # the good run is never blamed
    if "last record is torn" not in fragments:  # damage is never passed off as a torn tail
        assert not any("torn" in m for m in messages), messages


def test_there_are_at_least_thirty_kinds_of_damage() -> None:
    assert len(CASES) >= 30
    assert len({case[0] for case in CASES}) == len(CASES)
