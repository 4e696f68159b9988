"""Malformed store content: each kind gives a warning naming the file; nothing else is lost.

Every case starts from a store with two good runs (`good` and `bad`), damages `bad` in one
way, loads, and checks that the warning names the damaged file, that `good` loads complete,
that `bad` loads as far as it can (or is skipped when unusable), and that no file changed.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

import rungroup as rg
from rungroup import store

STEPS = 50


def make_store(root: Path) -> tuple[Path, Path]:
    for run_id in ("good", "bad"):
        with rg.init(dir=root, project="p", id=run_id, group="g", config={"lr": 0.1}) as run:
            for step in range(STEPS):
                run.log({"loss": float(step), "acc": step / 100})
                if step == STEPS // 2:
                    run._flush()  # two records, so that one can be damaged alone
    return root / "p" / "good", root / "p" / "bad"


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(root.rglob("*"))
    }


def edit_meta(folder: Path, **changes: object) -> None:
    meta = json.loads((folder / store.META_FILE).read_text())
    meta.update(changes)
    (folder / store.META_FILE).write_text(json.dumps(meta))


def history_bytes(folder: Path) -> bytearray:
    return bytearray((folder / store.HISTORY_FILE).read_bytes())


def write_history(folder: Path, data: bytes) -> None:
    (folder / store.HISTORY_FILE).write_bytes(bytes(data))


def second_record_offset(data: bytes) -> int:
    return data.find(store.RECORD_MAGIC, len(store.HISTORY_MAGIC) + 1)


def _garbage_in_the_middle(folder: Path) -> None:
    data = history_bytes(folder)
    middle = second_record_offset(data)
    write_history(folder, data[:middle] + b"\xde\xad\xbe\xef" * 8 + data[middle:])


def _flipped_byte(folder: Path) -> None:
    data = history_bytes(folder)
    data[len(store.HISTORY_MAGIC) + 40] ^= 0xFF
    write_history(folder, data)


def _torn_tail(folder: Path) -> None:
    data = history_bytes(folder)
    write_history(folder, data[:-7])


def _custom_record(names: object, count: int, points: bytes) -> bytes:
    import struct
    import zlib

    table = json.dumps(names).encode()
    payload = struct.pack("<I", len(table)) + table + struct.pack("<I", count) + points
    checked = struct.pack("<4sIII", store.RECORD_MAGIC, len(payload), 9, zlib.crc32(payload))
    return checked + struct.pack("<I", zlib.crc32(checked)) + payload


def _append(folder: Path, record: bytes) -> None:
    write_history(folder, history_bytes(folder) + record)


def _wrong_count(folder: Path) -> None:
    _append(folder, _custom_record(["x"], 5, b"\x00" * 28))


def _names_not_a_list(folder: Path) -> None:
    _append(folder, _custom_record({"x": 1}, 0, b""))


def _undefined_metric(folder: Path) -> None:
    import struct

    points = struct.pack("<q", 99) + struct.pack("<d", 1.0) + struct.pack("<I", 7)
    _append(folder, _custom_record([], 1, points + struct.pack("<d", 5.0)))


def _duplicate_id(folder: Path) -> None:
    shutil.copytree(folder, folder.parent / "bad-copy")  # the same id in the same project


# (description, damage, expected words in the warning, file named, points of `bad` still loaded)
# fmt: off
CASES: list[tuple[str, Callable[[Path], None], str, str, int | None]] = [
    ("meta not json", lambda f: (f / "run.json").write_text("{not json"), "not valid JSON", "run.json", None),
    ("meta empty", lambda f: (f / "run.json").write_text(""), "not valid JSON", "run.json", None),
    ("meta truncated", lambda f: (f / "run.json").write_bytes((f / "run.json").read_bytes()[:40]), "not valid JSON", "run.json", None),
    ("meta not utf-8", lambda f: (f / "run.json").write_bytes(b"\xff\xfe{}"), "not valid JSON", "run.json", None),
    ("meta a list", lambda f: (f / "run.json").write_text("[1, 2]"), "expected a JSON object", "run.json", None),
    ("meta without id", lambda f: edit_meta(f, id=None), "no run id", "run.json", None),
    ("meta future version", lambda f: edit_meta(f, format_version=99), "version 99", "run.json", None),
    ("meta is a folder", lambda f: ((f / "run.json").unlink(), (f / "run.json").mkdir()), "no run.json", "bad", None),
    ("tags not a list", lambda f: edit_meta(f, tags="a,b"), "tags", "run.json", 2 * STEPS),
    ("config not an object", lambda f: edit_meta(f, config=[1, 2]), "config is not an object", "run.json", 2 * STEPS),
    ("summary not an object", lambda f: edit_meta(f, summary="x"), "summary is not an object", "run.json", 2 * STEPS),
    ("unknown state", lambda f: edit_meta(f, state="exploded"), "unknown state 'exploded'", "bad", 2 * STEPS),
    ("bad created_at", lambda f: edit_meta(f, created_at="yesterday"), "not an ISO time", "run.json", 2 * STEPS),
    ("name not text", lambda f: edit_meta(f, name=12), "name 12 is not text", "run.json", 2 * STEPS),
    ("config type differs", lambda f: edit_meta(f, config={"lr": "high"}), "'config.lr' holds values of different types", "", 2 * STEPS),
    ("duplicate id", _duplicate_id, "also used by", "run.json", 2 * STEPS),
    ("history missing", lambda f: (f / store.HISTORY_FILE).unlink(), "missing", store.HISTORY_FILE, 0),
    ("history garbage file", lambda f: write_history(f, b"hello world, not a history"), "not a rungroup history file", store.HISTORY_FILE, 0),
    ("history future version", lambda f: write_history(f, b"RGHIST\x00\x09" + history_bytes(f)[8:]), "version 9", store.HISTORY_FILE, 0),
    ("history garbage in the middle", _garbage_in_the_middle, "bytes of garbage", store.HISTORY_FILE, 2 * STEPS),
    ("history flipped byte", _flipped_byte, "fails its checksum", store.HISTORY_FILE, 2 * (STEPS - STEPS // 2 - 1)),
    ("history torn tail", _torn_tail, "last record is torn", store.HISTORY_FILE, 2 * (STEPS // 2 + 1)),
    ("history wrong point count", _wrong_count, "bytes for 5 points", store.HISTORY_FILE, 2 * STEPS),
    ("history names not a list", _names_not_a_list, "not a list of strings", store.HISTORY_FILE, 2 * STEPS),
    ("history undefined metric", _undefined_metric, "undefined metric", store.HISTORY_FILE, 2 * STEPS),
    ("history as a folder", lambda f: ((f / store.HISTORY_FILE).unlink(), (f / store.HISTORY_FILE).mkdir()), "cannot be read", store.HISTORY_FILE, 0),
]
# fmt: on


@pytest.mark.parametrize(
    ("damage", "expected", "named", "bad_points"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_damage_is_reported_and_nothing_else_is_lost(
    tmp_path: Path,
    damage: Callable[[Path], None],
    expected: str,
    named: str,
    bad_points: int | None,
) -> None:
    _, bad = make_store(tmp_path)
    damage(bad)
    before = snapshot(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = rg.load(tmp_path)
    messages = [str(w.message) for w in caught if issubclass(w.category, rg.LoadWarning)]
    assert any(expected in m and named in m for m in messages), messages
    assert snapshot(tmp_path) == before  # loading never changes the store
    history = runs.history.collect()
    good_points = history.filter(pl.col("run_id") == "good")
    assert good_points.height == 2 * STEPS
    assert good_points.filter(pl.col("metric") == "loss")["value"].to_list() == [
        float(s) for s in range(STEPS)
    ]
    ids = runs.runs["id"].to_list()
    assert "good" in ids
    if bad_points is None:
        assert "bad" not in ids
    else:
        assert "bad" in ids
        assert history.filter(pl.col("run_id") == "bad").height == bad_points


def test_there_are_at_least_twenty_kinds_of_damage() -> None:
    assert len(CASES) >= 20


def test_a_folder_with_a_history_but_no_metadata_is_reported(tmp_path: Path) -> None:
    _, bad = make_store(tmp_path)
    (bad / store.META_FILE).unlink()
    with pytest.warns(rg.LoadWarning, match=f"{bad}: has a history but no run.json"):
        runs = rg.load(tmp_path)
    assert runs.runs["id"].to_list() == ["good"]


def test_the_same_id_in_two_projects_loads_both(tmp_path: Path) -> None:
    _, bad = make_store(tmp_path)
    shutil.copytree(bad, tmp_path / "q" / "bad")
    runs = rg.load(tmp_path)  # no warning: ids are unique within a project only
    assert sorted(runs.runs["id"].to_list()) == ["bad", "good", "q/bad"]
    assert runs.runs.filter(pl.col("id") == "q/bad")["project"].to_list() == ["p"]
    counts = dict(runs.history.collect().group_by("run_id").len().iter_rows())
    assert counts == {"good": 2 * STEPS, "bad": 2 * STEPS, "q/bad": 2 * STEPS}


def test_unknown_project_lists_the_projects(tmp_path: Path) -> None:
    make_store(tmp_path)
    with pytest.raises(ValueError, match=r"no project 'nope'.*projects: p"):
        rg.load(tmp_path, project="nope")


def test_a_folder_that_is_no_store_names_what_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="not a source rungroup can read; expected"):
        rg.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        rg.load(tmp_path / "missing")
    with pytest.raises(TypeError, match="cannot load runs from a int"):
        rg.load(3)
